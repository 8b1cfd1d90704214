"""A send's outcome: what the server answered, at which stage, and whose fault a failure is.

Both transports return it and the send engine, the breaker and `deliver` read
it, so it sits below all of them in a module of its own: the transports import
it without importing each other or `transport` (which imports both).
"""

from __future__ import annotations

from dataclasses import dataclass

from bulletin.messenger import faults


@dataclass(frozen=True)
class SendResult:
    """The server's answer for one message, with the stage it came at and whose fault a failure is.

    `kind` is one of `faults.RECIPIENT` (bounce evidence), `TRANSPORT` (the relay's
    refusal: pause, never bounce), `TEMPORARY` (retry later) or `UNKNOWN` (the
    connection broke after the final dot: the message may have been accepted).
    `fatal` marks a refusal no retry can cure (login refused, STARTTLS missing).
    """

    ok: bool
    code: int
    detail: str
    permanent: bool = False
    stage: str = faults.DOT
    kind: str = ""
    fatal: bool = False

    @classmethod
    def sent(cls, code: int = 250, detail: str = "ok") -> SendResult:
        return cls(ok=True, code=code, detail=detail, permanent=False)

    @classmethod
    def from_code(cls, code: int, detail: str, stage: str = faults.DOT) -> SendResult:
        ok = 200 <= code < 300
        return cls(ok=ok, code=code, detail=detail, permanent=500 <= code < 600, stage=stage,
                   kind="" if ok else faults.classify(stage, code, detail))

    @classmethod
    def broken(cls, stage: str, detail: str, *, fatal: bool = False) -> SendResult:
        """No reply: the connection failed or dropped at `stage`."""
        return cls(ok=False, code=0, detail=detail, permanent=False, stage=stage,
                   kind=faults.classify(stage, 0, detail), fatal=fatal)

    @property
    def reason(self) -> str:
        return faults.reason(self.stage, self.code, self.detail)
