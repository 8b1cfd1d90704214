"""What a bounce or complaint report carries of bulletin's own identity, so evidence can be authenticated.

A report names addresses, and anyone can write one. What a stranger cannot
write is one of our signed values: the Message-ID `<b.<token>@sending-domain>`
of an issue mail, its VERP envelope sender `bounces+<token>@`, a
`reply+<token>@` address, or the List-Unsubscribe `bounces+u-<token>@`. This
module finds every such value inside a report (the returned original or its
headers, ARF and DSN fields, SES's record of the mail, text a server pasted)
and checks its signature. It only reads: whether a report is trusted, and
whether its recipient is that message's subscriber, is for the acting layer.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message

from bulletin.audience.links import Links
from bulletin.audience.tokens import local_part_token
from bulletin.errors import TokenError
from bulletin.inbound.reading.bounce_forms import report_text
from bulletin.inbound.reading.classify import BOUNCE, COMPLAINT, Classification
from bulletin.inbound.reading.parse import decode_value, part_text
from bulletin.inbound.reading.reports import (
    ARF_TYPE,
    DSN_TYPES,
    ORIGINAL_TYPES,
    BounceRecipient,
    field_blocks,
    report_parts,
)
from bulletin.inbound.reading.ses import ses_notice

MESSAGE_ID, BOUNCE_TOKEN, REPLY_TOKEN, UNSUBSCRIBE_TOKEN = "message_id", "bounce", "reply", "unsubscribe"
_ID_HEADERS = ("Message-ID", "In-Reply-To", "References", "Resent-Message-ID")
_ADDRESS_HEADERS = ("Return-Path", "From", "Sender", "Reply-To", "To", "Cc", "Errors-To", "List-Unsubscribe",
                    "X-Original-To", "Delivered-To", "Envelope-To")
_ADDR_RE = re.compile(r"[A-Za-z0-9._%+=-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ANGLE_RE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


@dataclass(frozen=True)
class OurMark:
    """One of bulletin's own values found in a report, with where it was and whether its signature holds.

    `where` is `original:<Header>` (returned message or its headers),
    `arf:<Field>`, `dsn:<Field>`, `ses:<path>`, `text` (a copy pasted as text)
    or `report:<Header>` / `envelope` (the report's own addressing).
    `subscriber_id`/`issue_id` come from the token (`list_id` instead of
    `issue_id` for an unsubscribe token); they are None when it does not verify.
    """

    kind: str  # message_id, bounce, reply, unsubscribe
    value: str
    where: str
    verified: bool
    subscriber_id: int | None = None
    issue_id: int | None = None
    list_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "value": self.value, "where": self.where, "verified": self.verified,
                "subscriber_id": self.subscriber_id, "issue_id": self.issue_id, "list_id": self.list_id}


@dataclass(frozen=True)
class ReportIdentity:
    """A bounce or complaint report as evidence: who it names, and what of ours is inside it."""

    kind: str  # bounce, complaint
    reason: str  # the classifier's reason: dsn, arf, ses, heuristic, verp+dsn, ...
    recipients: tuple[BounceRecipient, ...]  # complaints: permanent=True, status ''
    marks: tuple[OurMark, ...]
    original_found: bool  # a returned original (or its headers) was attached

    @property
    def verified_marks(self) -> tuple[OurMark, ...]:
        return tuple(m for m in self.marks if m.verified)

    @property
    def forged(self) -> bool:
        """A value of our shape whose signature does not hold: someone imitated us."""
        return any(not m.verified for m in self.marks)

    @property
    def has_our_mark(self) -> bool:
        """Something signed by us is inside; the acting layer still checks the recipient is that subscriber."""
        return bool(self.verified_marks)

    def sent_to(self) -> set[tuple[int, int]]:
        """(subscriber_id, issue_id) of the issue mails the verified marks point at."""
        return {(m.subscriber_id, m.issue_id) for m in self.verified_marks
                if m.subscriber_id is not None and m.issue_id is not None}

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "reason": self.reason, "recipients": [r.as_dict() for r in self.recipients],
                "marks": [m.as_dict() for m in self.marks], "original_found": self.original_found,
                "has_our_mark": self.has_our_mark, "forged": self.forged}


def read_report_identity(msg: Message, links: Links, cls: Classification,
                         envelope_to: list[str] | tuple[str, ...] = ()) -> ReportIdentity | None:
    """The evidence view of a bounce or complaint (also an unverified SES complaint); None for other mail."""
    if cls.kind == COMPLAINT or cls.complaint_addresses:
        kind = "complaint"
        recipients = tuple(BounceRecipient(a, True) for a in cls.complaint_addresses)
    elif cls.kind == BOUNCE:
        kind, recipients = "bounce", cls.bounces
    else:
        return None
    marks: list[OurMark] = []
    originals = embedded_originals(msg)
    for original in originals:
        marks += header_marks(original, links, "original")
    marks += report_field_marks(msg, links)
    marks += ses_marks(msg, links)
    marks += text_marks(report_text(msg), links, "text")
    for addr in envelope_to:
        marks += address_marks(addr, links, "envelope")
    for name in ("To", "Cc", "Delivered-To", "X-Original-To"):
        for value in msg.get_all(name, []):
            marks += address_marks(decode_value(value), links, f"report:{name}")
    return ReportIdentity(kind, cls.reason, tuple(recipients), _unique(marks), bool(originals))


def embedded_originals(msg: Message) -> list[Message]:
    """Every returned original (message/rfc822) or header block (text/rfc822-headers) of the report itself."""
    out: list[Message] = []
    for part in report_parts(msg, ORIGINAL_TYPES):
        payload = part.get_payload()
        if isinstance(payload, list):
            out += [p for p in payload if isinstance(p, Message)]
        else:
            text = part_text(part).lstrip()
            if text:
                out.append(email.message_from_string(text))
    return out


def header_marks(headers: Message, links: Links, where: str) -> list[OurMark]:
    """Our Message-IDs and token addresses in a header block."""
    marks: list[OurMark] = []
    for name in _ID_HEADERS:
        for value in headers.get_all(name, []):
            text = decode_value(value)
            if not _may_hold_ours(text, links):
                continue
            for mid in _ANGLE_RE.findall(text):
                mark = message_id_mark(mid, links, f"{where}:{name}")
                if mark:
                    marks.append(mark)
    for name in _ADDRESS_HEADERS:
        for value in headers.get_all(name, []):
            marks += address_marks(decode_value(value), links, f"{where}:{name}")
    return marks


def report_field_marks(msg: Message, links: Links) -> list[OurMark]:
    """ARF `Original-Mail-From` (our VERP sender), DSN `X-Postfix-Sender`, `Original-Envelope-Id` and the like."""
    marks: list[OurMark] = []
    for types, label in ((DSN_TYPES, "dsn"), ((ARF_TYPE,), "arf")):
        for part in report_parts(msg, types):
            for block in field_blocks(part):
                for name, value in block.items():
                    text = decode_value(value)
                    if not _may_hold_ours(text, links):
                        continue
                    marks += address_marks(text, links, f"{label}:{name}")
                    for mid in _ANGLE_RE.findall(text) + ([text.strip()] if "@" in text and " " not in text else []):
                        mark = message_id_mark(mid, links, f"{label}:{name}")
                        if mark:
                            marks.append(mark)
    return marks


def ses_marks(msg: Message, links: Links) -> list[OurMark]:
    """SES keeps the envelope sender (`mail.source`) and the original headers of what it sent."""
    notice = ses_notice(msg)
    if notice is None or not notice.mail:
        return []
    marks = address_marks(str(notice.mail.get("source", "")), links, "ses:mail.source")
    for row in notice.mail.get("headers") or []:  # type: ignore[union-attr]
        if isinstance(row, dict):
            marks += text_marks(f"{row.get('name', '')}: {row.get('value', '')}", links, f"ses:header:{row.get('name')}")
    common = notice.mail.get("commonHeaders")
    if isinstance(common, dict):
        for mid in _ANGLE_RE.findall(str(common.get("messageId", ""))):
            mark = message_id_mark(mid, links, "ses:commonHeaders.messageId")
            if mark:
                marks.append(mark)
    return marks


def text_marks(text: str, links: Links, where: str) -> list[OurMark]:
    """Our values anywhere in free text: a server that pastes the original's headers into its notice."""
    marks: list[OurMark] = []
    if not _may_hold_ours(text, links):
        return marks
    for mid in _ANGLE_RE.findall(text):
        mark = message_id_mark(mid, links, where)
        if mark:
            marks.append(mark)
    marks += address_marks(text, links, where)
    return marks


def message_id_mark(message_id: str, links: Links, where: str) -> OurMark | None:
    """`<b.<token>@sending-domain>` checked against our keys; None when it is not of our shape."""
    mid = message_id.strip().strip("<>")
    local, _, domain = mid.rpartition("@")
    if not local.lower().startswith("b.") or domain.lower() != links.settings.sending_domain.lower():
        return None
    pair = links.parse_message_id(mid)
    if pair is None:
        return OurMark(MESSAGE_ID, f"<{mid}>", where, False)
    return OurMark(MESSAGE_ID, f"<{mid}>", where, True, pair[0], pair[1])


def address_marks(text: str, links: Links, where: str) -> list[OurMark]:
    """Every reply, VERP bounce or unsubscribe token address at our sending domain in a text."""
    marks: list[OurMark] = []
    if not _may_hold_ours(text, links):
        return marks
    domain = "@" + links.settings.sending_domain.lower()
    for addr in _ADDR_RE.findall(text):
        addr = addr.lower()
        if not addr.endswith(domain):
            continue
        mark = _token_mark(addr, links, where)
        if mark:
            marks.append(mark)
    return marks


def _may_hold_ours(text: str, links: Links) -> bool:
    """Each value of ours (Message-ID or token address) ends in the sending domain: text without it holds none.

    One substring test instead of the address and Message-ID patterns over every header and notice.
    """
    return links.settings.sending_domain.lower() in text.lower()


def _token_mark(addr: str, links: Links, where: str) -> OurMark | None:
    settings = links.settings
    reply = local_part_token(addr, settings.reply_local)
    bounce = local_part_token(addr, settings.bounce_local)
    try:
        if reply is not None:
            sid, iid = links.parse_reply_address(addr) or (None, None)
            return OurMark(REPLY_TOKEN, addr, where, True, sid, iid)
        if bounce is not None and bounce.startswith("u-"):
            numbers = links.signer.parse_address_token("unsubscribe", bounce[2:])
            if len(numbers) != 2:
                raise TokenError("address token has the wrong shape")
            return OurMark(UNSUBSCRIBE_TOKEN, addr, where, True, numbers[0], None, numbers[1])
        if bounce is not None:
            sid, iid = links.parse_bounce_address(addr) or (None, None)
            return OurMark(BOUNCE_TOKEN, addr, where, True, sid, iid)
    except TokenError:
        kind = REPLY_TOKEN if reply is not None else UNSUBSCRIBE_TOKEN if bounce and bounce.startswith("u-") else BOUNCE_TOKEN
        return OurMark(kind, addr, where, False)
    return None


def _unique(marks: list[OurMark]) -> tuple[OurMark, ...]:
    """Each value once per place: the same VERP address as Return-Path and as ARF Original-Mail-From is two."""
    seen: dict[tuple[str, str, str], OurMark] = {}
    for mark in marks:
        seen.setdefault((mark.kind, mark.value, mark.where), mark)
    return tuple(seen.values())
