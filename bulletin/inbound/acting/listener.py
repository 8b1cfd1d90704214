"""`bulletin inbound serve`: an LMTP (or SMTP) listener a Postfix can hand mail to.

The message is stored before the server answers 250; if storing fails the
answer is 451 so the MTA keeps the message and retries. Database work runs in
a thread so one slow commit does not stall other connections.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.inbound.acting.pipeline import IngestResult, ingest

MAX_SIZE = 50 * 1024 * 1024


class InboundHandler:
    """aiosmtpd handler: every accepted message goes through `ingest`."""

    def __init__(self, engine: Engine, settings: Settings, *, lmtp: bool,
                 on_result: Callable[[IngestResult], None] | None = None) -> None:
        self.engine, self.settings, self.lmtp, self.on_result = engine, settings, lmtp, on_result

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        job = functools.partial(ingest, self.engine, self.settings, raw, source="lmtp" if self.lmtp else "smtp",
                                envelope_from=envelope.mail_from, envelope_to=list(envelope.rcpt_tos))
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, job)
        except Exception:  # noqa: BLE001 - not stored: make the MTA keep it and retry
            return self._status("451 4.3.0 could not store the message, try again later", envelope)
        if self.on_result is not None:
            self.on_result(result)
        return self._status(f"250 2.0.0 stored as #{result.inbound_id}", envelope)

    def _status(self, line: str, envelope: Envelope) -> str:
        """LMTP answers once per recipient (RFC 2033); SMTP once per message."""
        if not self.lmtp:
            return line
        return "\r\n".join([line] * max(1, len(envelope.rcpt_tos)))


class _LMTPController(Controller):
    def factory(self) -> SMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


def start_listener(engine: Engine, settings: Settings, *, host: str = "127.0.0.1", port: int = 2424,
                   lmtp: bool = True, on_result: Callable[[IngestResult], None] | None = None) -> Controller:
    """Start the listener in a background thread; call `.stop()` on the result to end it."""
    handler = InboundHandler(engine, settings, lmtp=lmtp, on_result=on_result)
    cls = _LMTPController if lmtp else Controller
    controller = cls(handler, hostname=host, port=port, data_size_limit=MAX_SIZE)
    controller.start()
    return controller
