"""What staff see of inbound mail nobody could match or trust (attaching it by hand is `unmatched`).

Shells (the CLI, the staff console) call these with a Session and get
dataclasses back. `unmatched` is human mail with no token, none of our
Message-IDs and a sender who is not a subscriber (a question sent to the
list's own address lands here); `unverified` is bounce/complaint evidence that
named addresses with nothing of ours inside; `quarantined` is mail a parser
choked on, kept with the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import exists
from sqlmodel import Session, select

from bulletin.audience.links import Links
from bulletin.errors import NotFound, StateError
from bulletin.inbound.acting.actions import evidence_dict
from bulletin.inbound.reading.addresses import read_tokens
from bulletin.inbound.reading.clean import visible_text
from bulletin.inbound.reading.parse import (
    addresses,
    body_text,
    decode_value,
    header,
    message_ids,
    parse_bytes,
    sender,
)
from bulletin.models import Evidence, Feedback, InboundMessage, MailingList, Subscriber
from bulletin.statuses import InboundStatus, ReviewClass

CLASSES = ReviewClass.ALL  # ("unmatched", "unverified", "quarantined")


@dataclass(frozen=True)
class InboundSummary:
    """One stored message as a row of `inbound list`."""

    id: int
    received_at: str
    message_id: str
    status: str
    classification: str
    sender: str
    subject: str
    to_list: str  # slug of the list whose own address it was sent to, if any
    subscriber: str
    verified: bool | None  # bounce/complaint evidence: any of it authenticated; None without evidence
    why: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class InboundDetail:
    """`inbound show`: the summary, the headers, the visible text and the evidence."""

    summary: InboundSummary
    headers: list[tuple[str, str]]
    visible_text: str
    envelope_from: str
    envelope_to: str
    evidence: list[dict[str, object]] = field(default_factory=list)
    feedback_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {**self.summary.as_dict(), "headers": [list(h) for h in self.headers],
                "visible_text": self.visible_text, "envelope_from": self.envelope_from,
                "envelope_to": self.envelope_to, "evidence": self.evidence, "feedback_id": self.feedback_id}


def list_inbound(session: Session, *, kind: str | None = None, limit: int = 200) -> list[InboundSummary]:
    """Newest first; `kind` one of unmatched, unverified, quarantined (None: every message)."""
    stmt = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit)  # type: ignore[union-attr]
    if kind is not None:
        if kind not in CLASSES:
            raise StateError(f"unknown class {kind!r} (expected one of {', '.join(CLASSES)})", where="--class")
        stmt = stmt.where(_class_clause(kind))
    lists = _list_addresses(session)
    return [_summary(session, row, lists) for row in session.exec(stmt).all()]


def _class_clause(kind: str):  # type: ignore[no-untyped-def]
    if kind == "quarantined":
        return InboundMessage.status == InboundStatus.QUARANTINED
    if kind == "unmatched":
        return InboundMessage.classification == "unmatched"
    has_unverified = exists().where(Evidence.inbound_id == InboundMessage.id, Evidence.verified == False)  # noqa: E712
    has_verified = exists().where(Evidence.inbound_id == InboundMessage.id, Evidence.verified == True)  # noqa: E712
    return has_unverified & ~has_verified


def show_inbound(session: Session, links: Links, inbound_id: int) -> InboundDetail:
    """Everything staff need to decide: headers, visible text, evidence, and why it was not matched or trusted."""
    row = _get(session, inbound_id)
    msg = parse_bytes(row.raw)
    summary = _summary(session, row, _list_addresses(session), why=_why(session, links, row))
    evidence = [evidence_dict(e) for e in _evidence(session, row)]
    fb = session.exec(select(Feedback.id).where(Feedback.inbound_id == row.id)).first()
    headers = [(k, decode_value(v)[:2000]) for k, v in msg.items()]
    return InboundDetail(summary, headers, visible_text(body_text(msg)), row.envelope_from or "",
                         row.envelope_to or "", evidence, fb)


def _get(session: Session, inbound_id: int) -> InboundMessage:
    row = session.get(InboundMessage, inbound_id)
    if row is None:
        raise NotFound(f"no inbound message #{inbound_id}")
    return row


def _evidence(session: Session, row: InboundMessage) -> list[Evidence]:
    return list(session.exec(select(Evidence).where(Evidence.inbound_id == row.id).order_by(Evidence.id)).all())


def _list_addresses(session: Session) -> dict[str, str]:
    return {m.from_address.lower(): m.slug for m in session.exec(select(MailingList)).all() if m.from_address}


def _summary(session: Session, row: InboundMessage, lists: dict[str, str], why: str | None = None) -> InboundSummary:
    assert row.id is not None
    msg = parse_bytes(row.raw[:65536]) if row.raw else None
    rcpts = [a.strip().lower() for a in (row.envelope_to or "").split(",") if a.strip()]
    rcpts += addresses(msg, "To", "Cc") if msg is not None else []
    to_list = next((lists[a] for a in rcpts if a in lists), "")
    evidence = _evidence(session, row)
    sub = session.get(Subscriber, row.subscriber_id) if row.subscriber_id else None
    return InboundSummary(
        id=row.id, received_at=row.received_at.isoformat(timespec="seconds"), message_id=row.message_id,
        status=row.status, classification=row.classification or "", sender=sender(msg)[1] if msg is not None else "",
        subject=header(msg, "Subject")[:300] if msg is not None else "", to_list=to_list,
        subscriber=(sub.email or "") if sub else "", verified=any(e.verified for e in evidence) if evidence else None,
        why=why if why is not None else _short_why(row, evidence))


def _short_why(row: InboundMessage, evidence: list[Evidence]) -> str:
    if row.status == InboundStatus.QUARANTINED:
        return (row.error or "quarantined")[:200]
    if evidence and not any(e.verified for e in evidence):
        return ", ".join(dict.fromkeys(e.auth for e in evidence))
    if row.classification == "unmatched":
        return "no token, none of our Message-IDs, sender not a subscriber"
    return ""


def _why(session: Session, links: Links, row: InboundMessage) -> str:
    """The long reason, recomputed from the raw mail."""
    evidence = _evidence(session, row)
    if row.status == InboundStatus.QUARANTINED or evidence or row.classification != "unmatched":
        return _short_why(row, evidence)
    msg = parse_bytes(row.raw)
    tokens = read_tokens(msg, links, [a.strip() for a in (row.envelope_to or "").split(",") if a.strip()])
    if tokens.forged:
        return "a reply or bounce address of our shape whose signature does not verify (forged or from an old key)"
    ours = [m for m in message_ids(header(msg, "In-Reply-To") + " " + header(msg, "References"))
            if links.parse_message_id(m) is not None]
    parts = ["no reply token in the recipient addresses"]
    parts.append("a Message-ID of ours names a subscriber since erased" if ours
                 else "none of our Message-IDs in In-Reply-To/References")
    who = sender(msg)[1]
    parts.append(f"sender {who or '(none)'} is not a subscriber")
    return "; ".join(parts)

