"""The SMTP transport: a pool of persistent connections to a relay.

The pool keeps N connections open because connection set-up, not the message,
is what limits throughput to a relay. Every failure is reported with the stage
of the session it came at (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, the
final dot), because the stage decides whose fault it is and whether a retry
could send a second copy.
"""

from __future__ import annotations

import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bulletin.config import Settings
from bulletin.messenger import faults
from bulletin.messenger.result import SendResult


@dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    security: str = "none"  # none, starttls, tls
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    local_hostname: str | None = None
    data_done_timeout: float = 600.0  # the wait for the reply to the final dot (RFC 5321 4.5.3.2.6)

    @classmethod
    def from_settings(cls, settings: Settings) -> SMTPConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
            local_hostname=settings.sending_domain,
            data_done_timeout=settings.smtp_data_done_timeout,
        )


class StageFailure(Exception):
    """A refusal or a broken connection at a known stage of the SMTP session."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.reason)
        self.result = result


class RateLimiter:
    """Spaces messages evenly at `rate` per second across all threads; 0 disables it."""

    def __init__(self, rate: float, *, clock=time.monotonic, sleep=time.sleep) -> None:  # type: ignore[no-untyped-def]
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = clock()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


class SMTPConnection:
    """One persistent connection; reopened after a 421 or a dropped socket."""

    def __init__(self, config: SMTPConfig) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        """Connect, greet, EHLO, STARTTLS and AUTH; StageFailure names the stage that failed."""
        c = self.config
        stage = faults.CONNECT
        try:
            if c.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, c.port, local_hostname=c.local_hostname, timeout=c.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(c.host, c.port, local_hostname=c.local_hostname, timeout=c.timeout)
            # Every write is a whole command group, a body or the final dot; the dot may follow the body
            # as a write of its own (`before_commit`), and Nagle would hold it for the body's ACK.
            smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stage = faults.EHLO
            _greet(smtp)
            if c.security == "starttls":
                stage = faults.STARTTLS
                smtp.starttls(context=ssl.create_default_context())
                stage = faults.EHLO
                _greet(smtp)
            if c.username:
                stage = faults.AUTH
                _login(smtp, c.username, c.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            refused = SendResult.from_code(exc.smtp_code, f"{_text(exc.smtp_error)} (login as {c.username!r})",
                                           faults.AUTH)
            raise StageFailure(replace(refused, fatal=True)) from None
        except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS or no AUTH: settings, not weather
            raise StageFailure(SendResult.broken(stage, f"{exc} (check smtp_security and smtp_username)",
                                                 fatal=True)) from None
        except smtplib.SMTPConnectError as exc:
            raise StageFailure(SendResult.from_code(exc.smtp_code, _text(exc.smtp_error), faults.GREETING)) from None
        except smtplib.SMTPResponseException as exc:
            raise StageFailure(SendResult.from_code(exc.smtp_code, _text(exc.smtp_error), stage)) from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            if stage == faults.CONNECT and isinstance(exc, smtplib.SMTPServerDisconnected):
                stage = faults.GREETING
            raise StageFailure(SendResult.broken(stage, f"{c.host}:{c.port}: {exc or 'connection closed'}")) from None
        return smtp

    def send(self, envelope_from: str, recipients: list[str], message: bytes, *,
             before_commit: Callable[[], None] | None = None, dot_free: bool = False) -> SendResult:
        """Send once; on a dropped connection or 421 before the final dot, reconnect and try once more.

        A drop or a timeout after the final dot is never retried here: the relay may
        have accepted the message, and a second copy is worse than a late one.
        """
        result = self._attempt(envelope_from, recipients, message, before_commit, dot_free)
        if _retry_once(result):
            self.reset()
            result = self._attempt(envelope_from, recipients, message, before_commit, dot_free)
        if not result.ok and (result.code in (0, 421)):
            self.reset()
        return result

    def _attempt(self, envelope_from: str, recipients: list[str], message: bytes,
                 before_commit: Callable[[], None] | None, dot_free: bool = False) -> SendResult:
        try:
            if self._smtp is None:
                self._smtp = self._open()
            return transaction(self._smtp, envelope_from, recipients, message,
                               data_done_timeout=self.config.data_done_timeout,
                               timeout=self.config.timeout, before_commit=before_commit, dot_free=dot_free)
        except StageFailure as exc:
            self.reset()
            return exc.result
        except BaseException:
            self.reset()  # `before_commit` refused mid-DATA: dropping the connection discards the message
            raise

    def reset(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _retry_once(result: SendResult) -> bool:
    """A drop or a 421 before the message was handed over: the relay has nothing, try again now."""
    if result.ok or result.fatal or result.kind == faults.UNKNOWN:
        return False
    return result.code == 0 or result.code == 421


def _greet(smtp: smtplib.SMTP) -> None:
    """EHLO, falling back to HELO; a refusal of both is the relay refusing us."""
    code, msg = smtp.ehlo()
    if code == 250:
        return
    if code == -1:
        raise smtplib.SMTPServerDisconnected("connection closed after EHLO")
    code2, msg2 = smtp.helo()
    if code2 != 250:
        raise smtplib.SMTPResponseException(code, msg)


def transaction(smtp: smtplib.SMTP, envelope_from: str, recipients: list[str], message: bytes, *,
                data_done_timeout: float = 600.0, timeout: float | None = None,
                before_commit: Callable[[], None] | None = None, dot_free: bool = False) -> SendResult:
    """One SMTP transaction for bytes that are already CRLF (so no `sendmail` regex passes).

    With PIPELINING, MAIL, RCPT and DATA go out in one write (RFC 2920), which
    saves two round trips a message. Addresses were checked when the list was
    queued, so they are written as they are. All or nothing: if any recipient is
    refused the message is not sent (the engine sends one recipient a message).
    The reply to the final dot gets its own long timeout; a connection lost while
    waiting for it leaves the outcome unknown (StageFailure of kind UNKNOWN).
    `before_commit` runs between the body and the final dot; if it raises, the
    dot is never sent and the caller must drop the connection. `dot_free`: the
    caller built the message so that no line starts with a dot (see `dot_stuff`).
    """
    data = message if dot_free else dot_stuff(message)
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    commands = [f"MAIL FROM:<{envelope_from}>"] + [f"RCPT TO:<{r}>" for r in recipients] + ["DATA"]
    stages = [faults.MAIL] + [faults.RCPT] * len(recipients) + [faults.DATA]
    try:
        if smtp.has_extn("pipelining"):
            smtp.send("".join(c + "\r\n" for c in commands).encode("ascii"))
            replies = [smtp.getreply() for _ in commands]
        else:
            replies = []
            for c in commands:
                replies.append(smtp.docmd(c))
                if replies[-1][0] >= 400:
                    break
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise StageFailure(SendResult.broken(faults.MAIL, f"connection lost before the message: {exc}")) from None
    failed = next((i for i, (code, _) in enumerate(replies[:-1]) if code >= 300), None)
    if failed is None and len(replies) < len(commands):  # sequential mode stopped at the last reply
        failed = len(replies) - 1
    if failed is None and replies[-1][0] != 354:
        failed = len(replies) - 1
    if failed is not None:
        code, msg = replies[failed]
        try:
            if replies[-1][0] == 354 and len(replies) == len(commands):
                smtp.send(b".\r\n")  # RFC 2920: DATA was accepted without recipients; end it empty
                smtp.getreply()
            if code != 421:
                smtp.rset()
        except (smtplib.SMTPServerDisconnected, OSError):
            smtp.close()
        if code == -1:
            raise StageFailure(SendResult.broken(stages[failed], "connection closed"))
        return SendResult.from_code(code, _text(msg), stages[failed])
    try:
        if before_commit is None:
            smtp.send(data + b".\r\n")
        else:
            smtp.send(data)
            before_commit()
            smtp.send(b".\r\n")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:  # the dot did not leave: nothing was accepted
        raise StageFailure(SendResult.broken(faults.DATA, f"connection lost while sending: {exc}")) from None
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(data_done_timeout)
        code, msg = smtp.getreply()
        if smtp.sock is not None and timeout is not None:
            smtp.sock.settimeout(timeout)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise StageFailure(SendResult.broken(faults.DOT, f"no reply to the final dot: {exc or 'connection closed'}")) from None
    if code == -1:
        raise StageFailure(SendResult.broken(faults.DOT, "no reply to the final dot: connection closed"))
    return SendResult.from_code(code, _text(msg), faults.DOT)


_LEADING_DOT = re.compile(rb"\r\n\.")


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency: double a dot at the start of a line.

    Rendered mail rarely has a line starting with a dot, so look first and rewrite
    only when there is one. Looking costs more than it seems: with a line break
    every 76 octets, the search walks 62 KB three octets at a time, about 56 us a
    message here, 5 % of a sending process; so bulk messages, which have no such
    line by construction, skip it (`transaction(dot_free=True)`).
    """
    if b"\r\n." not in data:
        return data
    return _LEADING_DOT.sub(b"\r\n..", data)


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN when offered (one round trip, one clear answer), else smtplib's own choice.

    `SMTP.login` falls through every mechanism after a refusal, and some servers
    never answer the second attempt; a wrong password should fail fast and clearly.
    """
    mechanisms = (smtp.esmtp_features.get("auth") or "").upper().split()
    if "PLAIN" not in mechanisms:
        smtp.login(username, password)
        return
    smtp.user, smtp.password = username, password
    code, resp = smtp.auth("PLAIN", smtp.auth_plain)
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, resp)


class SMTPPool:
    """N persistent connections shared by the sending threads; `send` borrows one per message."""

    def __init__(self, config: SMTPConfig, *, connections: int = 4, rate: float = 0.0) -> None:
        self.config = config
        self.concurrency = connections
        self._idle: queue.LifoQueue[SMTPConnection] = queue.LifoQueue()
        for _ in range(connections):
            self._idle.put(SMTPConnection(config))
        self._limiter = RateLimiter(rate)
        self._all: list[SMTPConnection] = list(self._idle.queue)

    def send(self, envelope_from: str, recipients: list[str], message: bytes, message_id: str, *,
             before_commit: Callable[[], None] | None = None, dot_free: bool = False) -> SendResult:
        self._limiter.wait()
        conn = self._idle.get()
        try:
            return conn.send(envelope_from, recipients, message, before_commit=before_commit, dot_free=dot_free)
        finally:
            self._idle.put(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()


def _text(msg: bytes | str) -> str:
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
