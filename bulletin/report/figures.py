"""How one issue did, counted straight from the tables every other stage writes.

The report owns no state: the ledger (Delivery), bounces, the consent log
(SubscriberEvent), feedback and raw inbound mail already hold every fact, so
the figures are recomputable at any time and cannot drift from what happened.
Ledger figures are read from its running counts (delivery.counts), which the
database's own triggers keep in the statement that changes a row.
People are counted once per figure (a complaint unsubscribes someone from every
list, which writes one event per list, but it is one complaint).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bulletin.delivery import counts
from bulletin.errors import NotFound
from bulletin.models import (
    Bounce,
    Delivery,
    Feedback,
    InboundMessage,
    IssueRecord,
    SubscriberEvent,
    utcnow,
)
from bulletin.render.compiled import Compiled
from bulletin.report.segments import SegmentFigures, figures_by_segment
from bulletin.report.sql import epoch
from bulletin.statuses import DeliveryState

NO_BLOCK = ""  # replies whose subject carried no [block] tag


@dataclass(frozen=True)
class BlockReplies:
    """Replies to one block of the issue; blocks without replies are listed with 0."""

    anchor: str
    heading: str
    replies: int


@dataclass(frozen=True)
class TimePoint:
    """Messages sent and replies received in one time bucket (see `pick_bucket`) starting at `at`."""

    at: datetime
    sent: int
    replies: int


@dataclass(frozen=True)
class IssueReport:
    """Every figure `bulletin report` shows, as one typed object for table, JSON, CSV and HTML."""

    issue_id: int
    slug: str
    title: str
    subject: str
    recipients: int
    sent: int
    deferred: int
    failed: int
    pending: int
    cancelled: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int
    replies: int
    auto_replies: int
    unknown: int = 0  # the connection broke after the final dot: perhaps delivered
    replies_by_block: tuple[BlockReplies, ...] = ()
    timeline: tuple[TimePoint, ...] = ()
    bucket: str = "hour"
    bucket_seconds: int = 3600
    generated_at: datetime = field(default_factory=utcnow)
    by_segment: tuple[SegmentFigures, ...] = ()  # empty unless a send chose recipients by segment

    @property
    def bounced(self) -> int:
        return self.hard_bounces + self.soft_bounces

    @property
    def attempted(self) -> int:
        """Recipients we tried: sent, refused (failed), retrying or of unknown fate.

        Every rate divides by this, so a recipient refused at RCPT TO is in the
        bounces and in the denominator alike (2 hard bounces of 37 sent + 2 refused
        is 2 of 39, not 2 of 37).
        """
        return self.sent + self.failed + self.deferred + self.unknown

    @property
    def hard_bounce_rate(self) -> float:
        return _rate(self.hard_bounces, self.attempted)

    @property
    def complaint_rate(self) -> float:
        return _rate(self.complaints, self.attempted)

    @property
    def unsubscribe_rate(self) -> float:
        return _rate(self.unsubscribes, self.attempted)

    @property
    def reply_rate(self) -> float:
        return _rate(self.replies, self.attempted)

    def metrics(self) -> dict[str, int | float]:
        """The flat figures in display order: one place decides the table, CSV and HTML rows."""
        return {
            "recipients": self.recipients,
            "attempted": self.attempted,
            "sent": self.sent,
            "deferred": self.deferred,
            "failed": self.failed,
            "unknown": self.unknown,
            "pending": self.pending,
            "cancelled": self.cancelled,
            "bounced": self.bounced,
            "hard_bounces": self.hard_bounces,
            "soft_bounces": self.soft_bounces,
            "complaints": self.complaints,
            "unsubscribes": self.unsubscribes,
            "replies": self.replies,
            "auto_replies": self.auto_replies,
            "hard_bounce_rate": self.hard_bounce_rate,
            "complaint_rate": self.complaint_rate,
            "unsubscribe_rate": self.unsubscribe_rate,
            "reply_rate": self.reply_rate,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(self.metrics())
        data["generated_at"] = self.generated_at.isoformat()
        data["timeline"] = [{**asdict(p), "at": p.at.isoformat()} for p in self.timeline]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def issue_report(session: Session, issue_slug: str) -> IssueReport:
    """All figures for the issue with this slug; NotFound when it was never published."""
    issue = session.exec(select(IssueRecord).where(IssueRecord.slug == issue_slug)).first()
    if issue is None or issue.id is None:
        raise NotFound(f"no published issue with slug {issue_slug!r} (an issue is published when "
                       "`bulletin send` queues it)", where="issue")
    states = _delivery_states(session, issue.id)
    hard, soft = _bounces(session, issue.id)
    by_block = _replies_by_block(session, issue)
    bucket, bucket_seconds, timeline = _timeline(session, issue.id)
    return IssueReport(
        issue_id=issue.id,
        slug=issue.slug,
        title=issue.title,
        subject=issue.subject,
        recipients=sum(states.values()),
        sent=states[DeliveryState.SENT],
        deferred=states[DeliveryState.DEFERRED],
        failed=states[DeliveryState.FAILED],
        unknown=states[DeliveryState.UNKNOWN],
        pending=states[DeliveryState.QUEUED] + states[DeliveryState.CLAIMED],
        cancelled=states[DeliveryState.CANCELLED],
        hard_bounces=hard,
        soft_bounces=soft,
        complaints=_people_with_event(session, issue.id, "complaint"),
        unsubscribes=_people_with_event(session, issue.id, "unsubscribe"),
        replies=sum(b.replies for b in by_block),
        auto_replies=_count(session, InboundMessage.id, InboundMessage.issue_id == issue.id,
                            InboundMessage.classification == "auto_reply"),
        replies_by_block=by_block,
        timeline=timeline,
        bucket=bucket,
        bucket_seconds=bucket_seconds,
        by_segment=figures_by_segment(session, issue.id),
    )


def _count(session: Session, column: Any, *where: Any) -> int:
    return int(session.exec(select(func.count(column)).where(*where)).one())


def _delivery_states(session: Session, issue_id: int) -> dict[str, int]:
    """Rows per state, every state present: what `status` reads (running counts plus compacted tallies)."""
    from bulletin.delivery.status import issue_counts

    return issue_counts(session, issue_id)


def _bounces(session: Session, issue_id: int) -> tuple[int, int]:
    """(hard, soft) bouncing people; someone who bounced hard is not also counted soft."""
    rows = session.exec(
        select(Bounce.subscriber_id, Bounce.permanent).where(Bounce.issue_id == issue_id)
    ).all()
    hard = {sid for sid, permanent in rows if permanent}
    soft = {sid for sid, permanent in rows if not permanent} - hard
    return len(hard), len(soft)


def _people_with_event(session: Session, issue_id: int, kind: str) -> int:
    return _count(session, func.distinct(SubscriberEvent.subscriber_id),
                  SubscriberEvent.issue_id == issue_id, SubscriberEvent.kind == kind)


def _replies_by_block(session: Session, issue: IssueRecord) -> tuple[BlockReplies, ...]:
    """Replies per block in the issue's own block order, then unknown anchors, then untagged."""
    counts = Counter({anchor or NO_BLOCK: int(n) for anchor, n in session.exec(
        select(Feedback.block_anchor, func.count(col(Feedback.id)))
        .where(Feedback.issue_id == issue.id).group_by(Feedback.block_anchor)
    ).all()})
    out = [BlockReplies(b.anchor, b.heading, counts.pop(b.anchor, 0)) for b in _blocks(issue)]
    untagged = counts.pop(NO_BLOCK, 0)
    out += [BlockReplies(anchor, "", n) for anchor, n in sorted(counts.items())]
    if untagged:
        out.append(BlockReplies(NO_BLOCK, "(no block named)", untagged))
    return tuple(out)


def _blocks(issue: IssueRecord) -> tuple[Any, ...]:
    """The issue's blocks from its compiled render; an unreadable render just means no headings."""
    try:
        return Compiled.from_json(issue.compiled).blocks
    except (ValueError, KeyError, TypeError):
        return ()


BUCKETS: tuple[tuple[str, int], ...] = (
    ("minute", 60), ("5 minutes", 300), ("15 minutes", 900), ("hour", 3600), ("6 hours", 21600),
    ("day", 86400), ("week", 604800),
)
MAX_POINTS = 72


def pick_bucket(span: timedelta) -> tuple[str, int]:
    """The finest bucket that keeps the chart under MAX_POINTS bars: minutes for a demo, days for a month."""
    for label, seconds in BUCKETS:
        if span.total_seconds() / seconds < MAX_POINTS:
            return label, seconds
    return BUCKETS[-1]


def _timeline(session: Session, issue_id: int) -> tuple[str, int, tuple[TimePoint, ...]]:
    """Sent and replies per bucket: sent from the ledger's per-minute counts, replies counted by the database.

    The first and last second sent come from the ends of ix_delivery_issue_state_sent
    (two index probes), so the bucket is picked from the exact span as before.
    """
    replies = (Feedback.received_at, Feedback.issue_id == issue_id)
    compacted = _compacted_seconds(session, issue_id)
    spans = [_sent_span(session, issue_id), _span(session, *replies),
             (min(compacted), max(compacted)) if compacted else None]
    known = [s for s in spans if s is not None]
    if not known:
        return "hour", 3600, ()
    start, end = min(s[0] for s in known), max(s[1] for s in known)
    label, seconds = pick_bucket(timedelta(seconds=end - start))
    sent_n, reply_n = counts.sent_per_bucket(session, issue_id, seconds), _per_bucket(session, seconds, *replies)
    for at, n in compacted.items():
        sent_n[at - at % seconds] = sent_n.get(at - at % seconds, 0) + n
    points = [TimePoint(datetime.fromtimestamp(at, UTC), sent_n.get(at, 0), reply_n.get(at, 0))
              for at in range(start - start % seconds, end + 1, seconds)]
    return label, seconds, tuple(points)


def _compacted_seconds(session: Session, issue_id: int) -> dict[int, int]:
    """Sent messages per second from the compacted ledger (`bulletin db compact`)."""
    from bulletin.delivery.retention import tally_sent_seconds

    out: dict[int, int] = {}
    for second, n in tally_sent_seconds(session, issue_id):
        out[second] = out.get(second, 0) + n
    return out


def _sent_span(session: Session, issue_id: int) -> tuple[int, int] | None:
    """epoch() of the first and last sent_at: epoch of min/max, which equals min/max of epoch
    (epoch never decreases) and lets the database read just the two ends of the index."""
    at = Delivery.sent_at
    first, last = session.exec(select(epoch(func.min(at)), epoch(func.max(at))).where(
        Delivery.issue_id == issue_id, Delivery.state == DeliveryState.SENT, at.is_not(None))).one()
    return None if first is None else (int(first), int(last))


def _span(session: Session, column: Any, *where: Any) -> tuple[int, int] | None:
    first, last = session.exec(select(func.min(epoch(column)), func.max(epoch(column)))
                               .where(*where, column.is_not(None))).one()
    return None if first is None else (int(first), int(last))


def _per_bucket(session: Session, seconds: int, column: Any, *where: Any) -> dict[int, int]:
    bucket = (epoch(column) - epoch(column) % seconds).label("bucket")
    rows = session.exec(select(bucket, func.count()).where(*where, column.is_not(None)).group_by(bucket)).all()
    return {int(at): int(n) for at, n in rows}
