"""How one issue did, counted straight from the tables every other stage writes.

The report owns no state: the ledger (Delivery), bounces, the consent log
(SubscriberEvent), feedback and raw inbound mail already hold every fact, so
the figures are recomputable at any time and cannot drift from what happened.
Ledger figures are read from its running counts (delivery.counts), which the
database's own triggers keep in the statement that changes a row.
People are counted once per figure (a complaint unsubscribes someone from every
list, which writes one event per list, but it is one complaint).

The queries are driver SQL on a `sqlread.Reader`, so that `bulletin report`
can run them without SQLAlchemy and the models; `issue_report` takes a session
too (the console, the demo) and reads the same text through it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bulletin.delivery import readout
from bulletin.errors import NotFound
from bulletin.render.compiled import Compiled
from bulletin.report.segments import SegmentFigures, figures_by_segment
from bulletin.sqlread import Reader, epoch, reader_of
from bulletin.statuses import DeliveryState

if TYPE_CHECKING:
    from sqlmodel import Session

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
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
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


def issue_report(source: Session | Reader, issue_slug: str) -> IssueReport:
    """All figures for the issue with this slug; NotFound when it was never published."""
    reader = reader_of(source)
    issue = readout.find_issue(reader, issue_slug)
    if issue is None:
        raise NotFound(f"no published issue with slug {issue_slug!r} (an issue is published when "
                       "`bulletin send` queues it)", where="issue")
    states = readout.issue_counts(reader, issue.id)
    hard, soft = _bounces(reader, issue.id)
    by_block = _replies_by_block(reader, issue)
    bucket, bucket_seconds, timeline = _timeline(reader, issue.id)
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
        complaints=_people_with_event(reader, issue.id, "complaint"),
        unsubscribes=_people_with_event(reader, issue.id, "unsubscribe"),
        replies=sum(b.replies for b in by_block),
        auto_replies=_one_count(reader, "SELECT count(id) FROM inbound_message WHERE issue_id = :issue "
                                "AND classification = 'auto_reply'", issue.id),
        replies_by_block=by_block,
        timeline=timeline,
        bucket=bucket,
        bucket_seconds=bucket_seconds,
        by_segment=figures_by_segment(reader, issue.id),
    )


def _one_count(reader: Reader, sql: str, issue_id: int, **params: object) -> int:
    ((n,),) = reader.rows(sql, issue=issue_id, **params)
    return int(n or 0)


def _bounces(reader: Reader, issue_id: int) -> tuple[int, int]:
    """(hard, soft) bouncing people; someone who bounced hard is not also counted soft."""
    rows = reader.rows("SELECT subscriber_id, permanent FROM bounce WHERE issue_id = :issue", issue=issue_id)
    hard = {sid for sid, permanent in rows if permanent}
    soft = {sid for sid, permanent in rows if not permanent} - hard
    return len(hard), len(soft)


def _people_with_event(reader: Reader, issue_id: int, kind: str) -> int:
    return _one_count(reader, "SELECT count(DISTINCT subscriber_id) FROM subscriber_event "
                      "WHERE issue_id = :issue AND kind = :kind", issue_id, kind=kind)


def _replies_by_block(reader: Reader, issue: readout.IssueRow) -> tuple[BlockReplies, ...]:
    """Replies per block in the issue's own block order, then unknown anchors, then untagged."""
    counts = Counter({anchor or NO_BLOCK: int(n) for anchor, n in reader.rows(
        "SELECT block_anchor, count(id) FROM feedback WHERE issue_id = :issue GROUP BY block_anchor",
        issue=issue.id)})
    out = [BlockReplies(b.anchor, b.heading, counts.pop(b.anchor, 0)) for b in _blocks(issue)]
    untagged = counts.pop(NO_BLOCK, 0)
    out += [BlockReplies(anchor, "", n) for anchor, n in sorted(counts.items())]
    if untagged:
        out.append(BlockReplies(NO_BLOCK, "(no block named)", untagged))
    return tuple(out)


def _blocks(issue: readout.IssueRow) -> tuple[Any, ...]:
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


def _timeline(reader: Reader, issue_id: int) -> tuple[str, int, tuple[TimePoint, ...]]:
    """Sent and replies per bucket: sent from the ledger's per-minute counts, replies counted by the database.

    The first and last second sent come from the ends of ix_delivery_issue_state_sent
    (two index probes), so the bucket is picked from the exact span as before.
    """
    compacted = _compacted_seconds(reader, issue_id)
    spans = [readout.sent_span(reader, issue_id), _reply_span(reader, issue_id),
             (min(compacted), max(compacted)) if compacted else None]
    known = [s for s in spans if s is not None]
    if not known:
        return "hour", 3600, ()
    start, end = min(s[0] for s in known), max(s[1] for s in known)
    label, seconds = pick_bucket(timedelta(seconds=end - start))
    sent_n, reply_n = readout.sent_per_bucket(reader, issue_id, seconds), _replies_per_bucket(reader, issue_id, seconds)
    for at, n in compacted.items():
        sent_n[at - at % seconds] = sent_n.get(at - at % seconds, 0) + n
    points = [TimePoint(datetime.fromtimestamp(at, UTC), sent_n.get(at, 0), reply_n.get(at, 0))
              for at in range(start - start % seconds, end + 1, seconds)]
    return label, seconds, tuple(points)


def _compacted_seconds(reader: Reader, issue_id: int) -> dict[int, int]:
    """Sent messages per second from the compacted ledger (`bulletin db compact`)."""
    out: dict[int, int] = {}
    for second, n in readout.tally_sent_seconds(reader, issue_id):
        out[second] = out.get(second, 0) + n
    return out


def _reply_span(reader: Reader, issue_id: int) -> tuple[int, int] | None:
    at = epoch("received_at", reader.dialect)
    ((first, last),) = reader.rows(f"SELECT min({at}), max({at}) FROM feedback WHERE issue_id = :issue "
                                   "AND received_at IS NOT NULL", issue=issue_id)
    return None if first is None else (int(first), int(last))


def _replies_per_bucket(reader: Reader, issue_id: int, seconds: int) -> dict[int, int]:
    at = epoch("received_at", reader.dialect)
    rows = reader.rows(f"SELECT {at} - {at} % :seconds AS bucket, count(*) FROM feedback WHERE issue_id = :issue "
                       "AND received_at IS NOT NULL GROUP BY 1", issue=issue_id, seconds=seconds)
    return {int(at): int(n) for at, n in rows}
