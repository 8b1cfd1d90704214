"""Mail nobody could match, for staff to read and attach to the right subscriber by hand.

Attaching is the human answer to invariant 9's "unverified evidence": it makes
the mail feedback of the chosen subscriber (never a bounce or an unsubscribe).
`attach_inbound` is the one way to do it, for the CLI and the console alike,
so a message attached from either ends up with the same rows: the feedback
(with `attached_by`, so a reprocess keeps it), the message marked a reply of
that subscriber and issue, and an audit entry naming who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.accounts import record_audit
from bulletin.audience.staff import resolve
from bulletin.db import Paged, page_bounds
from bulletin.errors import NotFound, StateError
from bulletin.inbound.acting.feedback import FeedbackView, record_feedback, show_feedback
from bulletin.inbound.acting.match import Match, issue_by_subject
from bulletin.inbound.reading.parse import header, parse_bytes, sender
from bulletin.models import Feedback, InboundMessage, IssueRecord, id_of, utcnow
from bulletin.statuses import FeedbackStatus

UNMATCHED = "unmatched"


@dataclass(frozen=True)
class UnmatchedMail:
    id: int
    received_at: datetime
    sender: str
    subject: str
    text: str


def list_unmatched(session: Session, *, page: int = 1, per_page: int = 50) -> Paged[UnmatchedMail]:
    """One newest-first page of stored mail classified unmatched, the page number clamped to the pages."""
    where = InboundMessage.classification == UNMATCHED
    total = int(session.exec(select(func.count()).select_from(InboundMessage).where(where)).one())
    page, pages = page_bounds(total, page, per_page)
    rows = session.exec(select(InboundMessage).where(where)
                        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())  # type: ignore[attr-defined,union-attr]
                        .offset((page - 1) * per_page).limit(per_page)).all()
    out = []
    for row in rows:
        msg = parse_bytes(row.raw)
        body = msg.get_body(("plain",)) if hasattr(msg, "get_body") else None
        text = body.get_content() if body is not None else ""
        out.append(UnmatchedMail(id_of(row), row.received_at, sender(msg)[1], header(msg, "Subject"),
                                 text[:2000]))
    return Paged(total, page, pages, out)


def attach_inbound(session: Session, inbound_id: int, *, subscriber: str, issue: str | None = None,
                   actor: str) -> FeedbackView:
    """Make unmatched mail the feedback of `subscriber` (an address or `#id`), by hand, as `actor`.

    Only `unmatched` mail: anything else either has its own owner already (a
    reply, a bounce) or, like an auto-reply, would be classified again on the
    next reprocess and lose the feedback. `issue` (a slug) is the staff's
    word; without it the issue comes from the subject, as the automatic
    sender match would take it. The row is locked first, so on PostgreSQL
    two people attaching the same message at once get one feedback and one
    refusal that says why, not a unique-key error.
    """
    row = _unmatched_row(session, inbound_id)
    msg = parse_bytes(row.raw)
    sub_id = _live_subscriber(session, inbound_id, subscriber)
    issue_id = _issue_id(session, inbound_id, issue, header(msg, "Subject"))
    fb = record_feedback(session, row, msg, Match(sub_id, issue_id, "staff"))
    fb.attached_by = actor[:200]
    session.add(fb)
    row.classification, row.subscriber_id, row.issue_id, row.processed_at = "reply", sub_id, issue_id, utcnow()
    session.add(row)
    record_audit(session, actor, "inbound.attach", f"inbound #{inbound_id} -> subscriber #{sub_id}")
    return show_feedback(session, id_of(fb))


attach_unmatched = attach_inbound  # the console's former name; same function, same rules


def _unmatched_row(session: Session, inbound_id: int) -> InboundMessage:
    """The message, locked against a second attach until this transaction ends (PostgreSQL; SQLite has one writer)."""
    stmt = (select(InboundMessage).where(InboundMessage.id == inbound_id)
            .with_for_update().execution_options(populate_existing=True))
    row = session.exec(stmt).first()
    if row is None:
        raise NotFound(f"no inbound message #{inbound_id}", where=f"inbound #{inbound_id}")
    if row.classification != UNMATCHED:
        what = row.classification or row.status
        raise StateError(f"it is {what}, not unmatched mail: only unmatched mail can be attached by hand",
                         where=f"inbound #{inbound_id}")
    return row


def _live_subscriber(session: Session, inbound_id: int, who: str) -> int:
    """An address or `#id` (read by `staff.resolve`, as every staff action reads one) to a subscriber
    who still has an address: erased people cannot send feedback."""
    who = who.strip()
    try:
        found = resolve(session, who)
    except NotFound:
        shown = who if len(who) <= 64 else who[:61] + "..."
        raise NotFound(f"no subscriber {shown!r}", where=f"inbound #{inbound_id}") from None
    if found.erased_at is not None or not found.email:
        raise StateError(f"subscriber {who!r} was erased", where=f"inbound #{inbound_id}")
    return id_of(found)


def _issue_id(session: Session, inbound_id: int, slug: str | None, subject: str) -> int | None:
    if slug is None:
        by_subject = issue_by_subject(session, subject)
        return by_subject.id if by_subject else None
    record = session.exec(select(IssueRecord).where(IssueRecord.slug == slug)).first()
    if record is None:
        raise NotFound(f"no issue {slug!r}", where=f"inbound #{inbound_id}")
    return record.id


def new_feedback_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Feedback)
                            .where(Feedback.status == FeedbackStatus.NEW)).one())
