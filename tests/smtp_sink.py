"""A real SMTP server on 127.0.0.1 (aiosmtpd) that records what it accepts and misbehaves on request.

Rules, per recipient: `always_fail[rcpt] = 550` (or any code) answers RCPT with
that code every time; `temp_fail[rcpt] = n` answers 450 the first n times.
`drop_every = N` closes the connection without a word on every Nth MAIL FROM,
before any message data, so a drop never leaves the client unsure whether a
message was accepted. Other engineers may import `smtp_sink()` and `SmtpSink`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

_MID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.I | re.M)


@dataclass
class Received:
    mail_from: str
    rcpt: str
    message_id: str
    data: bytes | None


@dataclass
class SmtpSink:
    """The handler and the record of everything accepted (thread-safe)."""

    keep_data: bool = True
    always_fail: dict[str, int] = field(default_factory=dict)
    temp_fail: dict[str, int] = field(default_factory=dict)
    drop_every: int = 0
    delay: float = 0.0  # seconds each DATA is held before its reply: a relay that is slow, not idle
    received: list[Received] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    drops: int = 0
    connections: int = 0  # EHLOs seen, i.e. SMTP sessions the client opened
    host: str = "127.0.0.1"
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        with self._lock:
            self.transactions += 1
            drop = bool(self.drop_every) and self.transactions % self.drop_every == 0
            if drop:
                self.drops += 1
        if drop:
            server.transport.close()
            return "421 4.3.0 closing (test drop)"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        rcpt = address.lower()
        with self._lock:
            if rcpt in self.always_fail:
                self.refused[rcpt] += 1
                code = self.always_fail[rcpt]
                return f"{code} 5.1.1 <{rcpt}>: refused (test rule)"
            if self.temp_fail.get(rcpt, 0) > 0:
                self.temp_fail[rcpt] -= 1
                self.refused[rcpt] += 1
                return f"450 4.2.0 <{rcpt}>: try again later (test rule)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        data = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        head = data.split(b"\r\n\r\n", 1)[0]
        found = _MID.search(head)
        mid = found.group(1).decode() if found else ""
        if self.delay:
            await asyncio.sleep(self.delay)  # this connection's only: the others go on meanwhile
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append(Received(envelope.mail_from, rcpt.lower(), mid,
                                              data if self.keep_data else None))
        return "250 2.0.0 queued"

    # Views ------------------------------------------------------------------------------------
    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def copies(self) -> Counter[str]:
        with self._lock:
            return Counter(r.rcpt for r in self.received)

    def ids_by_rcpt(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        with self._lock:
            for r in self.received:
                out.setdefault(r.rcpt, set()).add(r.message_id)
        return out

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(r.message_id for r in self.received)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago, for a server that can only be told a port.

    The one copy every test uses. Between closing it here and the server binding it, another
    xdist worker could take it: unlikely, and the test would then fail with "address in use",
    never pass wrongly.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def closed_port() -> Iterator[int]:
    """A TCP port of 127.0.0.1 where nothing listens, held for the block.

    Bound but not listening, so a connection is refused at once, and no other
    test (another pytest-xdist worker) can start a server on it meanwhile, as it
    could on a port that `free_port` found free and gave up.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@contextmanager
def smtp_sink(server_options: dict[str, object] | None = None, **rules: object) -> Iterator[SmtpSink]:
    """Run a sink on a free port of 127.0.0.1 for the duration of the block.

    `server_options` go to aiosmtpd's Controller/SMTP (ssl_context for implicit TLS,
    tls_context + require_starttls, authenticator + auth_required, ...).
    """
    # aiosmtpd logs every command at INFO from its own thread; under pytest's log capture
    # that stalled TLS sessions here, and the lines help nobody.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    sink = SmtpSink(**rules)  # type: ignore[arg-type]
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, decode_data=False,
                            data_size_limit=0, ready_timeout=10, **(server_options or {}))
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
