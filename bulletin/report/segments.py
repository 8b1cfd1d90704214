"""An issue's figures split by the segment that chose each recipient.

The ledger row of each recipient names the segment that queued it (None for a
send to a whole list), and every response joins back to that row by
(issue, subscriber), so the split is as recomputable as the totals. Rows and
states per segment come from the ledger's running counts (delivery.counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import and_, func
from sqlmodel import Session, select

from bulletin.delivery import counts
from bulletin.models import Bounce, Delivery, Feedback, SubscriberEvent

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
    states = counts.segment_states(session, issue_id)  # running counts: no pass over the ledger
    if all(s.segment is None for s in states):
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
    rows = [SegmentFigures(s.segment or WHOLE_LIST, s.rows, s.sent, s.failed, bounced.get(s.segment, 0),
                           unsubscribed.get(s.segment, 0), replies.get(s.segment, 0)) for s in states]
    return tuple(sorted(rows, key=lambda r: (r.segment == WHOLE_LIST, r.segment)))
