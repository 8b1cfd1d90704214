"""Transports: where a finished message goes. One small interface, two messengers.

The send engine hands over bytes and an envelope and gets back a `SendResult`;
it never sees sockets or files. The messengers have modules of their own
(`maildir`, the embedded default, and `smtp`, the relay pool) and `SendResult`
sits below both in `result`, so nothing cycles; this module keeps the interface
and the choice between them, and re-exports the moved names for the callers
that still import them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bulletin.config import Settings
from bulletin.messenger.maildir import MaildirTransport as MaildirTransport
from bulletin.messenger.maildir import maildir_name as maildir_name
from bulletin.messenger.result import SendResult as SendResult
from bulletin.messenger.smtp import RateLimiter as RateLimiter
from bulletin.messenger.smtp import SMTPConfig as SMTPConfig
from bulletin.messenger.smtp import SMTPConnection as SMTPConnection
from bulletin.messenger.smtp import SMTPPool as SMTPPool
from bulletin.messenger.smtp import StageFailure as StageFailure
from bulletin.messenger.smtp import dot_stuff as dot_stuff
from bulletin.messenger.smtp import transaction as transaction


class Transport(Protocol):
    """What the send engine needs from a messenger. `send` must be safe to call from several threads."""

    def send(self, envelope_from: str, recipients: list[str], message: bytes, message_id: str, *,
             before_commit: Callable[[], None] | None = None, dot_free: bool = False) -> SendResult:
        """Hand one message over. `before_commit`, when given, is called just before the message
        becomes the receiver's (the final dot; the rename into new/): if it raises, the message is
        not handed over and the exception propagates. `dot_free`: no line of `message` starts with
        a dot (the bulk builder's promise), so SMTP has nothing to stuff and need not look."""
        ...

    def close(self) -> None: ...

    # Optional: `concurrency` (int) tells the engine how many threads the transport can use.


def make_transport(settings: Settings) -> Transport:
    """The transport the settings ask for: the Maildir outbox by default, else the SMTP pool."""
    if settings.transport == "smtp":
        return SMTPPool(
            SMTPConfig.from_settings(settings),
            connections=settings.smtp_connections,
            rate=settings.smtp_rate,
        )
    return MaildirTransport(settings.outbox_path)
