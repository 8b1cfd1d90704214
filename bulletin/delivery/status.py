"""What `bulletin status` reads: an issue's sends, its counts by state, the last minute's rate, its errors.

Its own module, apart from `service`, because `status` is a read-only command
people run often (and the web console on every issue page): importing
`service` loads the send engine, the message builder, the messenger
(transports, DKIM), the compiled render and the audience, none of which a
read needs, and that import was most of what `status` cost. This module loads
only the database layer, the models and other light readers of the delivery
stage (`issues`, `counts`, `retention`); keep it that way (tests/test_cli_startup.py
checks). `service` re-exports `issue_status` and `IssueStatus`, and `ledger`
the send readers, so their callers are unchanged.

Every function takes the caller's Session and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.delivery import counts
from bulletin.delivery.issues import get_issue
from bulletin.delivery.retention import tally_counts
from bulletin.errors import NotFound, StateError
from bulletin.models import Delivery, Send, id_of, utcnow
from bulletin.statuses import DeliveryState


@dataclass
class IssueStatus:
    issue: str
    sends: list[dict[str, object]]
    counts: dict[str, int]
    rate_per_minute: float
    errors: list[dict[str, object]] = field(default_factory=list)


def sends_of(session: Session, issue_id: int) -> list[Send]:
    return list(session.exec(select(Send).where(Send.issue_id == issue_id).order_by(Send.id)).all())


def require_send(session: Session, issue_id: int) -> list[Send]:
    sends = sends_of(session, issue_id)
    if not sends:
        raise StateError("this issue has not been sent to any list yet", where=f"issue #{issue_id}")
    return sends


def send_status(session: Session, send_id: int) -> str:
    send = session.get(Send, send_id)
    if send is None:
        raise NotFound("no such send", where=f"send #{send_id}")
    session.refresh(send)
    return send.status


def issue_sends(session: Session, slug: str) -> tuple[int, list[Send]]:
    """The published issue's id and its sends, oldest first; a StateError when it was never sent."""
    record = get_issue(session, slug)
    return id_of(record), require_send(session, id_of(record))


def issue_counts(session: Session, issue_id: int) -> dict[str, int]:
    """Rows per state (every state present), the running counts plus what compaction folded into tallies."""
    result = counts.state_counts(session, issue_id)
    for state, n in tally_counts(session, issue_id).items():
        result[state] = result.get(state, 0) + n
    return result


def sent_last_minute(session: Session, issue_id: int) -> int:
    """Rows of the issue sent in the last minute: the end of ix_delivery_issue_state_sent, not a scan."""
    since = utcnow() - timedelta(minutes=1)
    return int(session.exec(select(func.count()).select_from(Delivery).where(
        Delivery.issue_id == issue_id, Delivery.state == DeliveryState.SENT, Delivery.sent_at >= since)).one())


def top_errors(session: Session, issue_id: int, limit: int = 10) -> list[dict[str, object]]:
    """The commonest (SMTP code, error) pairs, most first; reads only the rows with an error (ix_delivery_errors)."""
    rows = session.exec(select(Delivery.smtp_code, Delivery.last_error, func.count()).where(
        Delivery.issue_id == issue_id, Delivery.last_error.is_not(None)).group_by(
        Delivery.smtp_code, Delivery.last_error).order_by(func.count().desc()).limit(limit)).all()
    return [{"code": c, "error": e, "count": int(n)} for c, e, n in rows]


def issue_status(session: Session, slug: str) -> IssueStatus:
    """Counts by state, sent in the last minute, each send's state and the commonest errors of one issue."""
    issue_id, sends = issue_sends(session, slug)
    state_counts = issue_counts(session, issue_id)
    recent = sent_last_minute(session, issue_id)
    errors = top_errors(session, issue_id)
    listing = [{"send": s.id, "list_id": s.list_id, "status": send_status(session, id_of(s)),
                "scheduled_at": s.scheduled_at.isoformat() if s.scheduled_at else None,
                "pause_reason": s.pause_reason, "pause_stage": s.pause_stage} for s in sends]
    return IssueStatus(slug, listing, state_counts, float(recent), errors)
