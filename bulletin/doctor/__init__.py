"""`bulletin doctor`: is this workspace ready to send, and if not, what to change.

Each check answers pass, warn or fail, and every warn or fail says the fix in
the words of the setting to change, because a doctor that only says "broken"
sends people to the logs. Checks never change anything: no schema upgrade, no
message sent, no subscriber touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail"]
PASS: Status = "pass"
WARN: Status = "warn"
FAIL: Status = "fail"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was looked at, what was found, and the fix when not passing."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


from bulletin.doctor.run import run_checks  # noqa: E402  (Check must exist before the checks import it)

__all__ = ["FAIL", "PASS", "WARN", "Check", "Status", "run_checks"]
