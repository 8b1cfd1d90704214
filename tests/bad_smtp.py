"""A misbehaving SMTP relay for the tests: plain asyncio on 127.0.0.1, one rule per failure mode.

aiosmtpd is a correct server and will not, for instance, hang up after the
final dot; this one is a few dozen lines of protocol that does exactly what a
test asks:

- `greeting`: the banner ("554 5.7.1 blocked" refuses every connection);
- `mail_reply`: the answer to every MAIL FROM ("530 5.7.0 Authentication required");
- `rcpt_replies[address]` / `rcpt_reply`: the answer to RCPT TO for one address / for all;
- `dot_reply`: the answer to the final dot ("552 5.3.4 Message too big");
- `dot_delay`: seconds before answering the final dot;
- `drop_after_dot`: hang up instead of answering the final dot (1 = every message, N = every Nth);
- `fail_every`: answer "421 4.3.2 try again later" to every Nth final dot and hang up.

`copies()` counts, per recipient, the messages whose data the server received
and did not refuse (a hang-up after the dot counts: the relay has the message).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.smtp_sink import free_port


@dataclass
class BadRelay:
    greeting: str = "220 bad-relay.test ESMTP"
    mail_reply: str = "250 2.1.0 ok"
    rcpt_reply: str = "250 2.1.5 ok"
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    dot_reply: str = "250 2.0.0 queued"
    dot_delay: float = 0.0
    drop_after_dot: int = 0
    fail_every: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    accepted: list[tuple[str, bytes]] = field(default_factory=list)  # (recipient, data)
    messages: int = 0  # final dots seen
    connections: int = 0
    mail_commands: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def copies(self) -> Counter[str]:
        with self._lock:
            return Counter(rcpt for rcpt, _ in self.accepted)

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.connections += 1
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await say(self.greeting)
        if not self.greeting.startswith("2"):
            # RFC 5321 3.1: after a 554 greeting the server waits for QUIT; this one just leaves.
            return
        rcpts: list[str] = []
        while True:
            line = await reader.readline()
            if not line:
                return
            verb = line[:4].decode("ascii", "replace").upper()
            arg = line.decode("utf-8", "replace").strip()
            if verb in ("EHLO", "HELO"):
                await say("250-bad-relay.test\r\n250-PIPELINING\r\n250 8BITMIME" if verb == "EHLO" else "250 ok")
            elif verb == "MAIL":
                with self._lock:
                    self.mail_commands += 1
                rcpts = []
                await say(self.mail_reply)
            elif verb == "RCPT":
                address = arg.partition("<")[2].partition(">")[0].lower()
                reply = self.rcpt_replies.get(address, self.rcpt_reply)
                if reply.startswith("2") and self.mail_reply.startswith("2"):
                    rcpts.append(address)
                await say(reply)
            elif verb == "DATA":
                if not rcpts:
                    await say("554 5.5.1 no valid recipients")
                    continue
                await say("354 go ahead")
                data = await reader.readuntil(b"\r\n.\r\n")
                if not await self._end_of_data(rcpts, data, say):
                    return
                rcpts = []
            elif verb == "RSET":
                rcpts = []
                await say("250 ok")
            elif verb == "QUIT":
                await say("221 bye")
                return
            else:
                await say("250 ok")

    async def _end_of_data(self, rcpts: list[str], data: bytes, say) -> bool:  # type: ignore[no-untyped-def]
        """Answer the final dot; False means the connection is to be closed."""
        with self._lock:
            self.messages += 1
            n = self.messages
        if self.fail_every and n % self.fail_every == 0:
            await say("421 4.3.2 try again later (test rule)")
            return False
        if self.drop_after_dot and n % self.drop_after_dot == 0:
            with self._lock:
                self.accepted.extend((r, data) for r in rcpts)
            return False
        if self.dot_delay:
            await asyncio.sleep(self.dot_delay)
        if self.dot_reply.startswith("2"):
            with self._lock:
                self.accepted.extend((r, data) for r in rcpts)
        await say(self.dot_reply)
        return True


@contextmanager
def bad_relay(**rules: object) -> Iterator[BadRelay]:
    """Run a BadRelay on a free port of 127.0.0.1 in its own thread for the duration of the block."""
    relay = BadRelay(**rules)  # type: ignore[arg-type]
    relay.port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, asyncio.AbstractServer] = {}

    async def start() -> None:
        holder["server"] = await asyncio.start_server(relay.session, relay.host, relay.port, limit=2**24)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="bad-relay", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the bad relay did not start")
    try:
        yield relay
    finally:
        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
