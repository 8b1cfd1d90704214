"""DKIM signing for every message that leaves: bulk deliveries, notices and proofs alike."""

from __future__ import annotations

from pathlib import Path

from bulletin.config import Settings
from bulletin.errors import ConfigError

# Each listed twice: the second, unmatched entry signs "no further such header" (RFC 6376 section 8.15), so
# a Subject or List-Unsubscribe added above the signed one breaks the signature.
DKIM_OVERSIGNED = (
    b"from", b"to", b"subject", b"date", b"reply-to", b"message-id", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post",
)
DKIM_SIGNED_IF_PRESENT = (b"feedback-id", b"mime-version", b"content-type")


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

    headers = [*DKIM_OVERSIGNED, *DKIM_OVERSIGNED, *(h for h in DKIM_SIGNED_IF_PRESENT if _has_header(data, h))]
    try:
        sig = dkim.sign(data, settings.dkim_selector.encode(), domain.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"), include_headers=headers)
    except dkim.DKIMException as exc:
        raise ConfigError(f"setting 'dkim_key_path': cannot sign for {domain}: {exc}") from None
    return sig + data


def _has_header(data: bytes, name: bytes) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name + b":") or (b"\r\n" + name + b":") in head
