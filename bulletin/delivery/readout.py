"""The ledger's figures in driver SQL: what `status`, `report` and the console read about an issue.

Counts per state (the running counts of migration 0019 plus the tallies that
`bulletin db compact` folded away), per segment and per time bucket, the last
minute's sends, the commonest errors and each send's state. Written against a
`sqlread.Reader` so that `bulletin status` and `bulletin report` can run them
on the bare driver, without importing SQLAlchemy, SQLModel or the models (see
`bulletin.sqlread`); sessions read the same text through `SessionReader`.
Keep this module free of those imports (tests/test_cli_startup.py checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bulletin.errors import NotFound, StateError
from bulletin.sqlread import Reader, as_datetime, epoch
from bulletin.statuses import DeliveryState

D = DeliveryState
NO_SEGMENT = ""  # delivery_count.segment of rows that no segment chose (Delivery.segment is NULL)


@dataclass(frozen=True)
class IssueRow:
    """The published issue as the figures need it (not the ORM row: this side loads no models)."""

    id: int
    slug: str
    title: str
    subject: str
    compiled: str


@dataclass(frozen=True)
class SegmentStates:
    """Ledger rows one segment chose (None: a send to the whole list), and how many were sent or failed."""

    segment: str | None
    rows: int
    sent: int
    failed: int


@dataclass
class IssueStatus:
    issue: str
    sends: list[dict[str, object]]
    counts: dict[str, int]
    rate_per_minute: float
    errors: list[dict[str, object]] = field(default_factory=list)


def find_issue(reader: Reader, slug: str) -> IssueRow | None:
    rows = reader.rows("SELECT id, slug, title, subject, compiled FROM issue WHERE slug = :slug", slug=slug)
    return IssueRow(int(rows[0][0]), *rows[0][1:]) if rows else None


def state_counts(reader: Reader, issue_id: int, send_id: int | None = None) -> dict[str, int]:
    """Ledger rows of the issue (or of one of its sends) per state, every state present, 0 when none."""
    one_send = " AND send_id = :send" if send_id is not None else ""
    counts = {s: 0 for s in D.ALL}
    for state, n in reader.rows(f"SELECT state, sum(n) FROM delivery_count WHERE issue_id = :issue{one_send} "
                                "GROUP BY state", issue=issue_id, send=send_id):
        counts[state] = counts.get(state, 0) + int(n or 0)
    return counts


def tally_counts(reader: Reader, issue_id: int) -> dict[str, int]:
    """Compacted rows per state for the issue (empty when never compacted)."""
    return {str(state): int(n) for state, n in reader.rows(
        "SELECT state, sum(count) FROM delivery_tally WHERE issue_id = :issue GROUP BY state", issue=issue_id)}


def tally_sent_seconds(reader: Reader, issue_id: int) -> list[tuple[int, int]]:
    """(second, messages) of the issue's compacted sent rows."""
    return [(int(s), int(n)) for s, n in reader.rows(
        "SELECT sent_second, count FROM delivery_tally WHERE issue_id = :issue AND state = :sent "
        "AND sent_second IS NOT NULL", issue=issue_id, sent=D.SENT)]


def issue_counts(reader: Reader, issue_id: int) -> dict[str, int]:
    """Rows per state (every state present), the running counts plus what compaction folded into tallies."""
    result = state_counts(reader, issue_id)
    for state, n in tally_counts(reader, issue_id).items():
        result[state] = result.get(state, 0) + n
    return result


def segment_states(reader: Reader, issue_id: int) -> list[SegmentStates]:
    """Per segment that has ledger rows of the issue: rows, sent and failed (what GROUP BY segment gave)."""
    rows = reader.rows(
        "SELECT segment, sum(n), sum(CASE WHEN state = :sent THEN n ELSE 0 END), "
        "sum(CASE WHEN state = :failed THEN n ELSE 0 END) FROM delivery_count WHERE issue_id = :issue "
        "GROUP BY segment HAVING sum(n) > 0", issue=issue_id, sent=D.SENT, failed=D.FAILED)
    return [SegmentStates(seg or None, int(n), int(sent or 0), int(failed or 0)) for seg, n, sent, failed in rows]


def sent_per_bucket(reader: Reader, issue_id: int, seconds: int) -> dict[int, int]:
    """Sent rows per bucket of `seconds` (a whole number of minutes), keyed by the bucket's epoch second.

    The minutes were taken with epoch(), so a bucket holds exactly the rows whose
    epoch(sent_at) falls in it, as counting the ledger did.
    """
    if seconds % 60:
        raise ValueError(f"a timeline bucket is whole minutes, not {seconds} s")
    rows = reader.rows("SELECT minute - minute % :seconds AS bucket, sum(n) FROM delivery_minute "
                       "WHERE issue_id = :issue GROUP BY 1", issue=issue_id, seconds=seconds)
    return {int(at): int(n) for at, n in rows if n}


def sent_span(reader: Reader, issue_id: int) -> tuple[int, int] | None:
    """epoch() of the first and last sent_at: epoch of min/max, which equals min/max of epoch
    (epoch never decreases) and lets the database read just the two ends of ix_delivery_issue_state_sent."""
    d = reader.dialect
    ((first, last),) = reader.rows(
        f"SELECT {epoch('min(sent_at)', d)}, {epoch('max(sent_at)', d)} FROM delivery "
        "WHERE issue_id = :issue AND state = :sent AND sent_at IS NOT NULL", issue=issue_id, sent=D.SENT)
    return None if first is None else (int(first), int(last))


def sent_last_minute(reader: Reader, issue_id: int, now: datetime) -> int:
    """Rows of the issue sent in the last minute: the end of ix_delivery_issue_state_sent, not a scan."""
    ((n,),) = reader.rows("SELECT count(*) FROM delivery WHERE issue_id = :issue AND state = :sent "
                          "AND sent_at >= :since", issue=issue_id, sent=D.SENT, since=now - timedelta(minutes=1))
    return int(n)


def top_errors(reader: Reader, issue_id: int, limit: int = 10) -> list[dict[str, object]]:
    """The commonest (SMTP code, error) pairs, most first; reads only the rows with an error (ix_delivery_errors)."""
    rows = reader.rows("SELECT smtp_code, last_error, count(*) FROM delivery WHERE issue_id = :issue "
                       "AND last_error IS NOT NULL GROUP BY smtp_code, last_error ORDER BY count(*) DESC "
                       "LIMIT :limit", issue=issue_id, limit=limit)
    return [{"code": c, "error": e, "count": int(n)} for c, e, n in rows]


def send_listing(reader: Reader, issue_id: int) -> list[dict[str, object]]:
    """Each send of the issue, oldest first, as `status` shows it."""
    rows = reader.rows("SELECT id, list_id, status, scheduled_at, pause_reason, pause_stage FROM send "
                       "WHERE issue_id = :issue ORDER BY id", issue=issue_id)
    return [{"send": sid, "list_id": list_id, "status": status,
             "scheduled_at": _naive_utc(as_datetime(when)),
             "pause_reason": reason, "pause_stage": stage}
            for sid, list_id, status, when, reason, stage in rows]


def _naive_utc(at: datetime | None) -> str | None:
    """ISO text of a stored time as `status --json` has always shown it: UTC, without an offset."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat() if at else None


def read_status(reader: Reader, slug: str, now: datetime) -> IssueStatus:
    """Counts by state, sent in the last minute, each send's state and the commonest errors of one issue."""
    issue = find_issue(reader, slug)
    if issue is None:
        raise NotFound("no such issue has been published (run `bulletin send` first)", where=f"issue {slug!r}")
    listing = send_listing(reader, issue.id)
    if not listing:
        raise StateError("this issue has not been sent to any list yet", where=f"issue #{issue.id}")
    return IssueStatus(slug, listing, issue_counts(reader, issue.id), float(sent_last_minute(reader, issue.id, now)),
                       top_errors(reader, issue.id))
