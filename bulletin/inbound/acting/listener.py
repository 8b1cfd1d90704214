"""`bulletin inbound serve`: an LMTP (or SMTP) listener a Postfix can hand mail to.

The message is stored before the server answers 250; if storing fails the
answer is 451 so the MTA keeps the message and retries. Concurrent sessions
are group-committed: messages that arrive while a batch is being written wait
and go together in the next one (`ingest_batch`: one transaction to store
them, one to process them), and each session gets its 250 only after the
commit that holds its message. Database work runs in a thread so the event
loop keeps taking connections meanwhile.
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
from bulletin.inbound.acting.batch import RawMail, ingest_batch
from bulletin.inbound.acting.pipeline import IngestResult

MAX_SIZE = 50 * 1024 * 1024


class GroupCommitter:
    """Collects the messages of concurrent sessions and stores each group in one transaction."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.pending: list[tuple[RawMail, asyncio.Future[IngestResult]]] = []
        self.running = False

    async def submit(self, mail: RawMail) -> IngestResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self.pending.append((mail, future))
        if not self.running:
            self.running = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        size = self.settings.inbound_batch_size
        try:
            while self.pending:
                batch, self.pending = self.pending[:size], self.pending[size:]
                job = functools.partial(ingest_batch, self.engine, self.settings, [m for m, _ in batch])
                try:
                    results = await loop.run_in_executor(None, job)
                except Exception as exc:  # noqa: BLE001 - nothing of this group is stored: every session gets 451
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self.running = False


class InboundHandler:
    """aiosmtpd handler: every accepted message goes through the group committer."""

    def __init__(self, engine: Engine, settings: Settings, *, lmtp: bool,
                 on_result: Callable[[IngestResult], None] | None = None) -> None:
        self.engine, self.settings, self.lmtp, self.on_result = engine, settings, lmtp, on_result
        self.committer = GroupCommitter(engine, settings)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail = RawMail(raw, "lmtp" if self.lmtp else "smtp", envelope.mail_from, tuple(envelope.rcpt_tos))
        try:
            result = await self.committer.submit(mail)
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
