"""An issue's figures split by the segment that chose each recipient.

The ledger row of each recipient names the segment that queued it (None for a
send to a whole list), and every response joins back to that row by
(issue, subscriber), so the split is as recomputable as the totals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, case, func
from sqlmodel import Session, select

from bulletin.models import Bounce, Delivery, DeliveryState, Feedback, SubscriberEvent

WHOLE_LIST = "(whole list)"


@dataclass(frozen=True)
class SegmentFigures:
    """Recipients and responses of the people one segment chose."""

    segment: str
    recipients: int
    sent: int
    failed: int
    bounced: int
    unsubscribes: int
    replies: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _by_segment(session: Session, stmt: Any) -> dict[str | None, int]:
    return {seg: int(n) for seg, n in session.exec(stmt).all()}


def figures_by_segment(session: Session, issue_id: int) -> tuple[SegmentFigures, ...]:
    """One row per segment that chose anyone for this issue; empty when no send used a segment."""
    seg = Delivery.segment
    states = session.exec(select(seg, func.count(), func.sum(case((Delivery.state == DeliveryState.SENT, 1), else_=0)),
                                 func.sum(case((Delivery.state == DeliveryState.FAILED, 1), else_=0)))
                          .where(Delivery.issue_id == issue_id).group_by(seg)).all()
    if all(s is None for s, *_ in states):
        return ()
    joined = and_(Delivery.issue_id == issue_id)

    def people(model: Any, *where: Any) -> dict[str | None, int]:
        return _by_segment(session, select(seg, func.count(func.distinct(model.subscriber_id)))
                           .join(Delivery, and_(Delivery.subscriber_id == model.subscriber_id, joined))
                           .where(model.issue_id == issue_id, *where).group_by(seg))

    bounced = people(Bounce)
    unsubscribed = people(SubscriberEvent, SubscriberEvent.kind == "unsubscribe")
    replies = _by_segment(session, select(seg, func.count(Feedback.id))
                          .join(Delivery, and_(Delivery.subscriber_id == Feedback.subscriber_id, joined))
                          .where(Feedback.issue_id == issue_id).group_by(seg))
    rows = [SegmentFigures(s or WHOLE_LIST, int(total), int(sent or 0), int(failed or 0), bounced.get(s, 0),
                           unsubscribed.get(s, 0), replies.get(s, 0)) for s, total, sent, failed in states]
    return tuple(sorted(rows, key=lambda r: (r.segment == WHOLE_LIST, r.segment)))
