"""Amazon SES notifications delivered by email through SNS: JSON instead of a DSN or ARF.

An organisation that relays through SES and subscribes an address to its
bounce/complaint topic gets these; reading them directly gives the recipient and
the permanence SES already decided, instead of guessing from prose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import Message

from bulletin.inbound.reading.parse import body_text
from bulletin.inbound.reading.reports import BounceRecipient, bare_address, status_code


@dataclass(frozen=True)
class SesNotice:
    kind: str  # bounce, complaint, delivery
    bounces: tuple[BounceRecipient, ...] = ()
    complained: tuple[str, ...] = ()
    feedback_type: str = ""


def ses_notice(msg: Message) -> SesNotice | None:
    """The SES notification in an SNS email, None for any other message or unreadable JSON."""
    if msg.get("x-amz-sns-message-id") is None:
        return None
    data = _json(body_text(msg))
    if isinstance(data.get("Message"), str):  # raw SNS envelope around the SES message
        data = _json(data["Message"])
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "bounce":
        bounce = data.get("bounce") or {}
        permanent = str(bounce.get("bounceType", "")).lower() == "permanent"
        rows = []
        for r in bounce.get("bouncedRecipients") or []:
            addr = bare_address(str(r.get("emailAddress", "")))
            if addr:
                code = str(r.get("status") or "") or status_code(str(r.get("diagnosticCode") or ""))
                perm = code.startswith("5") if code else permanent
                rows.append(BounceRecipient(addr, perm, code, str(r.get("diagnosticCode") or "")[:500]))
        return SesNotice("bounce", bounces=tuple(rows))
    if kind == "complaint":
        complaint = data.get("complaint") or {}
        addrs = [bare_address(str(r.get("emailAddress", ""))) for r in complaint.get("complainedRecipients") or []]
        return SesNotice("complaint", complained=tuple(a for a in addrs if a),
                         feedback_type=str(complaint.get("complaintFeedbackType") or "abuse"))
    return SesNotice("delivery") if kind else None


def _json(text: str) -> dict:  # type: ignore[type-arg]
    start = text.find("{")
    if start < 0:
        return {}
    try:
        # SNS folds long JSON lines and appends a footer: decode the first object, allow raw newlines.
        value, _ = json.JSONDecoder(strict=False).raw_decode(text[start:])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
