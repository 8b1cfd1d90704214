"""`bulletin doctor`: is this workspace ready to send, and if not, what to change.

Each check answers pass, warn or fail, and every warn or fail says the fix in
the words of the setting to change, because a doctor that only says "broken"
sends people to the logs. Checks never change anything: no schema upgrade, no
message sent, no subscriber touched.
"""

from __future__ import annotations

from bulletin.doctor.result import FAIL, PASS, WARN, Check, Status
from bulletin.doctor.run import run_checks

__all__ = ["FAIL", "PASS", "WARN", "Check", "Status", "run_checks"]
