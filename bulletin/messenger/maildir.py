"""The Maildir outbox: the embedded default transport.

A local folder an MTA, a test or a person can pick up: no relay, no network,
and a file per message named from its Message-ID, so an erasure can find a
person's copies again (`delivery.outbox`).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from bulletin.errors import DeliveryError
from bulletin.messenger import faults
from bulletin.messenger.result import SendResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@-]")


def maildir_name(message_id: str) -> str:
    """File name from the Message-ID, so a resend of the same message replaces instead of duplicating."""
    name = _UNSAFE.sub("_", message_id.strip().strip("<>"))
    if name.startswith("."):  # Maildir readers skip dot files
        name = "_" + name[1:]
    if not name:
        raise DeliveryError(f"cannot derive a Maildir file name from Message-ID {message_id!r}")
    return name[:200]


def _or_discard(before_commit: Callable[[], None], tmp: Path) -> None:
    try:
        before_commit()
    except BaseException:
        tmp.unlink(missing_ok=True)  # never delivered: leave no half-message in tmp/
        raise


class MaildirTransport:
    """Writes each message to `tmp/`, then renames it into `new/` (atomic on one file system)."""

    concurrency = 4

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        for sub in ("tmp", "new", "cur"):  # messages hold addresses and personal links: owner only
            (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def send(self, envelope_from: str, recipients: list[str], message: bytes, message_id: str, *,
             before_commit: Callable[[], None] | None = None, dot_free: bool = False) -> SendResult:
        name = maildir_name(message_id)
        # Unique tmp name per writer: two threads writing the same id must not share a tmp file.
        tmp = self.path / "tmp" / f"{name}.{os.getpid()}.{threading.get_ident()}"
        envelope = f"Return-Path: <{envelope_from}>\r\nX-Original-To: {', '.join(recipients)}\r\n".encode()
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                fh.write(envelope)
                fh.write(message)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            if before_commit is not None:
                _or_discard(before_commit, tmp)
            os.replace(tmp, self.path / "new" / name)
        except OSError as exc:
            return SendResult(ok=False, code=451, detail=f"{self.path}: {exc}", permanent=False,
                              stage=faults.OUTBOX, kind=faults.TRANSPORT)
        return SendResult.sent(250, f"maildir {name}")

    def close(self) -> None:
        return None
