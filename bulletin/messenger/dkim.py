"""DKIM signing for every message that leaves: bulk deliveries, notices and proofs alike."""

from __future__ import annotations

from pathlib import Path

from bulletin.config import Settings
from bulletin.errors import ConfigError

DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)


def load_dkim_key(settings: Settings) -> bytes | None:
    if settings.dkim_key_path is None:
        return None
    path = settings.path(settings.dkim_key_path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"setting 'dkim_key_path': cannot read {path}: {exc.strerror}") from None


def dkim_sign(settings: Settings, data: bytes, domain: str, key: bytes | None = None) -> bytes:
    """Prepend a DKIM-Signature when a key is configured; the message is returned unchanged otherwise."""
    key = key if key is not None else load_dkim_key(settings)
    if key is None:
        return data
    import dkim

    try:
        sig = dkim.sign(data, settings.dkim_selector.encode(), domain.encode(), key,
                        include_headers=[h for h in DKIM_HEADERS if _has_header(data, h)])
    except dkim.DKIMException as exc:
        raise ConfigError(f"setting 'dkim_key_path': cannot sign for {domain}: {exc}") from None
    return sig + data


def _has_header(data: bytes, name: bytes) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name + b":") or (b"\r\n" + name + b":") in head
