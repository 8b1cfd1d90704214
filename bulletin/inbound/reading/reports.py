"""Machine-written reports inside a message: RFC 3464 delivery status and RFC 5965 ARF.

Both are MIME parts of header blocks. compat32 parses them into a list of
`Message` objects, except when the part is malformed, so both shapes are read.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from weakref import WeakKeyDictionary

from bulletin.inbound.reading.parse import decode_value, header, part_text

DSN_TYPES = ("message/delivery-status", "message/global-delivery-status", "text/delivery-status")
ARF_TYPE = "message/feedback-report"
ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers")
_PLAIN_ADDR_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{}~.-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.I)
_STATUS_RE = re.compile(r"([245])(?<=\b[245])\.(\d{1,3})\.(\d{1,3})\b")  # \b after the digit: see bounce_forms


@dataclass(frozen=True)
class BounceRecipient:
    """One recipient a report says failed: permanent for 5.x.x, temporary for 4.x.x."""

    address: str
    permanent: bool
    status: str = ""
    diagnostic: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"address": self.address, "permanent": self.permanent, "status": self.status,
                "diagnostic": self.diagnostic}


def field_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part_text(part) if isinstance(payload, str) else ""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return [email.message_from_string(b.strip() + "\n") for b in blocks if b.strip()]


TypedParts = tuple[tuple[Message, str], ...]
# message -> (its content type, every part below it, the report's own parts below it), each with its content
# type. The message itself is kept out of the value: a value that refers to its key keeps it alive for ever.
_PARTS: WeakKeyDictionary[Message, tuple[str, TypedParts, TypedParts]] = WeakKeyDictionary()


def typed_parts(msg: Message) -> TypedParts:
    """Every part in `walk()` order, with its content type."""
    ctype, below, _ = _typed(msg)
    return ((msg, ctype), *below)


def find_parts(msg: Message, types: tuple[str, ...]) -> list[Message]:
    ctype, below, _ = _typed(msg)
    return [msg] * (ctype in types) + [part for part, c in below if c in types]


def report_parts(msg: Message, types: tuple[str, ...]) -> list[Message]:
    """Parts of the report itself: a returned original may be a report too (a bounce of a bounce), not ours."""
    ctype, _, below = _typed(msg)
    return [msg] * (ctype in types) + [part for part, c in below if c in types]


def _typed(msg: Message) -> tuple[str, TypedParts, TypedParts]:
    """The parts of a message and their content types, worked out once per message object.

    Reading one message asks for its parts a dozen ways (ARF, DSN, returned
    originals, the bounce heuristics, the report's identity), and each ask used to
    walk the tree and work out every content type again. The readers never modify
    a message, so the answer holds for as long as the message object lives.
    """
    found = _PARTS.get(msg)
    if found is None:
        every = [(p, p.get_content_type()) for p in msg.walk()]
        report = _report_walk(msg, {id(p): ctype for p, ctype in every})
        found = _PARTS[msg] = (every[0][1], tuple(every[1:]), tuple(report[1:]))  # both walks start at msg
    return found


def _report_walk(msg: Message, ctypes: dict[int, str]) -> list[tuple[Message, str]]:
    """Breadth first, not into a returned original (other than the message itself) nor into report fields."""
    out: list[tuple[Message, str]] = []
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = ctypes.get(id(part)) or part.get_content_type()
        out.append((part, ctype))
        if ctype in ORIGINAL_TYPES and part is not msg:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and ctype not in DSN_TYPES + (ARF_TYPE,):
            stack.extend(p for p in payload if isinstance(p, Message))
    return out


def _address_field(value: str) -> str:
    """`rfc822; user@example.org` -> `user@example.org`."""
    value = decode_value(value)
    if ";" in value:
        value = value.split(";", 1)[1]
    return bare_address(value)


def bare_address(value: str) -> str:
    """The address in a report field or a detector's output, '' when there is none."""
    value = value.strip().strip("<>").strip().lower()
    if _PLAIN_ADDR_RE.fullmatch(value):
        return value
    found = _PLAIN_ADDR_RE.search(value)
    return found.group(0).strip(".") if found else ""


def status_code(text: str) -> str:
    """The first RFC 3463 enhanced status code in a text, '' when none."""
    found = _STATUS_RE.search(text or "")
    return found.group(0) if found else ""


def dsn_recipients(msg: Message) -> list[BounceRecipient] | None:
    """Failed or delayed recipients of an RFC 3464 report; None when the message has no such part."""
    parts = report_parts(msg, DSN_TYPES)
    if not parts:
        return None
    out: list[BounceRecipient] = []
    for part in parts:
        for block in field_blocks(part):
            rcpt = _address_field(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            if "@" not in rcpt:
                continue
            action = (block.get("Action") or "").strip().lower()
            diagnostic = decode_value(block.get("Diagnostic-Code") or "")
            status = status_code(block.get("Status") or "") or status_code(diagnostic)
            if action in ("delivered", "relayed", "expanded") or status.startswith("2") or (not action and not status):
                continue
            if status:
                permanent = status.startswith("5")
            else:
                permanent = action == "failed"
            out.append(BounceRecipient(rcpt, permanent, status, diagnostic[:500]))
    return out


def dsn_success_only(msg: Message) -> bool:
    """True for a delivery report whose every recipient was delivered or relayed (a success notice)."""
    blocks = [b for part in report_parts(msg, DSN_TYPES) for b in field_blocks(part)
              if b.get("Final-Recipient") or b.get("Original-Recipient")]
    return bool(blocks) and all(
        (b.get("Action") or "").strip().lower() in ("delivered", "relayed", "expanded", "deliverable")
        or status_code(b.get("Status") or "").startswith("2") for b in blocks)


# RFC 5965 and its registry: the feedback types that mean "the recipient did not want this".
# `not-spam` (RFC 6430) is the opposite, `auth-failure` (RFC 6591) is a DMARC/DKIM failure
# report about the message, and `other` is anything else: none of them is a complaint, so
# none may unsubscribe or suppress anyone. They are kept as evidence. `opt-out` (early ARF
# drafts, still sent by some providers) is the recipient asking to stop: acted on like abuse.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "opt-out"})


@dataclass(frozen=True)
class Complaint:
    """What an ARF report says about who complained and about which message."""

    feedback_type: str
    addresses: tuple[str, ...]
    original_mail_from: str


def arf_complaint(msg: Message) -> Complaint | None:
    """The ARF feedback report of a message, or None when it has none.

    Only a `message/feedback-report` part with a `Feedback-Type` field makes a
    complaint. Words never do: a reader may well reply "Feedback report: ..."
    with the bulletin attached, and that is feedback, not a spam complaint.
    """
    fields: dict[str, list[str]] = {}
    for part in report_parts(msg, (ARF_TYPE,)):
        for block in field_blocks(part):
            for name, value in block.items():
                fields.setdefault(name.lower(), []).append(decode_value(value))
    if not any(v.strip() for v in fields.get("feedback-type", [])):
        return None
    addrs = [_address_field(v) for k in ("original-rcpt-to", "removal-recipient") for v in fields.get(k, [])]
    original = original_headers(msg)
    if original is not None:
        addrs += [a for a in _plain_addresses(header(original, "To")) if a not in addrs]
    ftype = fields["feedback-type"][0].strip().lower()
    mail_from = _address_field((fields.get("original-mail-from") or [""])[0])
    return Complaint(ftype, tuple(a for a in addrs if "@" in a), mail_from)


def original_headers(msg: Message) -> Message | None:
    """The returned original message (or its headers) inside a report, when present."""
    for part in find_parts(msg, ORIGINAL_TYPES):
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        text = part_text(part) if isinstance(payload, str) else ""
        if text.strip():
            return email.message_from_string(text.lstrip())
    return None


def _plain_addresses(value: str) -> list[str]:
    from email.utils import getaddresses

    return [a.lower() for _, a in getaddresses([value]) if "@" in a]
