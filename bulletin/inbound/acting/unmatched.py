"""Mail nobody could match, for staff to read and attach to the right subscriber by hand.

Attaching is the human answer to invariant 9's "unverified evidence": it makes
the mail feedback of the chosen subscriber (never a bounce or an unsubscribe),
and the caller records who did it in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.errors import NotFound, StateError
from bulletin.inbound.acting.feedback import FeedbackView, record_feedback, show_feedback
from bulletin.inbound.acting.match import Match, issue_by_subject
from bulletin.inbound.reading.parse import header, parse_bytes, sender
from bulletin.models import Feedback, InboundMessage, Subscriber, id_of
from bulletin.statuses import FeedbackStatus

UNMATCHED = "unmatched"


@dataclass(frozen=True)
class UnmatchedMail:
    id: int
    received_at: datetime
    sender: str
    subject: str
    text: str


def list_unmatched(session: Session, *, page: int = 1, per_page: int = 50) -> tuple[int, list[UnmatchedMail]]:
    """(total, newest-first page) of stored mail classified unmatched."""
    where = InboundMessage.classification == UNMATCHED
    total = int(session.exec(select(func.count()).select_from(InboundMessage).where(where)).one())
    rows = session.exec(select(InboundMessage).where(where)
                        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())  # type: ignore[attr-defined,union-attr]
                        .offset((max(page, 1) - 1) * per_page).limit(per_page)).all()
    out = []
    for row in rows:
        msg = parse_bytes(row.raw)
        body = msg.get_body(("plain",)) if hasattr(msg, "get_body") else None
        text = body.get_content() if body is not None else ""
        out.append(UnmatchedMail(id_of(row), row.received_at, sender(msg)[1], header(msg, "Subject"),
                                 text[:2000]))
    return total, out


def attach_unmatched(session: Session, inbound_id: int, subscriber_id: int) -> FeedbackView:
    """Make unmatched mail the feedback of one subscriber (issue found from the subject when it can be)."""
    row = session.get(InboundMessage, inbound_id)
    if row is None or row.classification != UNMATCHED:
        raise NotFound(f"no unmatched mail #{inbound_id}")
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.erased_at is not None:
        raise StateError("no such subscriber", where=f"subscriber #{subscriber_id}")
    msg = parse_bytes(row.raw)
    issue = issue_by_subject(session, header(msg, "Subject"))
    found = Match(subscriber_id=subscriber_id, issue_id=issue.id if issue else None, method="staff")
    fb = record_feedback(session, row, msg, found)
    row.classification, row.subscriber_id, row.issue_id = "reply", subscriber_id, found.issue_id
    session.add(row)
    session.flush()
    return show_feedback(session, id_of(fb))


def new_feedback_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Feedback)
                            .where(Feedback.status == FeedbackStatus.NEW)).one())
