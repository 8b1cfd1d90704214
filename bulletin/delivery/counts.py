"""Running counts of the ledger: what `status` and `report` read instead of counting every row.

Triggers on `delivery` (migration 0019) keep `delivery_count` (rows per issue,
send, segment and state) and `delivery_minute` (sent rows per minute of
sent_at) in the statement that changes a row, so the counts commit or roll
back with the ledger itself and no writer can forget them. This module only
reads them, plus the one case where a writer counts for itself: the streamed
queueing on PostgreSQL, which would otherwise hold the issue's counter lock
for the whole of a long COPY while workers sending the same issue wait on it.

Each transaction writes its own shard of the counter rows (its transaction id
modulo 32), so two workers never wait for each other's commit; every reader
here adds the shards up. Rows folded into `delivery_tally` by `bulletin db
compact` leave these counts with the rows (the delete trigger); readers add
the tallies back as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, text
from sqlmodel import Session, select

from bulletin.models import DeliveryCount, DeliveryMinute
from bulletin.statuses import DeliveryState

D = DeliveryState
LOCK_CLASS = 7301  # pg_advisory_xact_lock(LOCK_CLASS + shard, issue_id): the triggers of migration 0019 take the same
NO_SEGMENT = ""  # delivery_count.segment of rows that no segment chose (Delivery.segment is NULL)


@dataclass(frozen=True)
class SegmentStates:
    """Ledger rows one segment chose (None: a send to the whole list), and how many were sent or failed."""

    segment: str | None
    rows: int
    sent: int
    failed: int


def state_counts(session: Session, issue_id: int, send_id: int | None = None) -> dict[str, int]:
    """Ledger rows of the issue (or of one of its sends) per state, every state present, 0 when none."""
    stmt = select(DeliveryCount.state, func.sum(DeliveryCount.n)).where(DeliveryCount.issue_id == issue_id)
    if send_id is not None:
        stmt = stmt.where(DeliveryCount.send_id == send_id)
    counts = {s: 0 for s in D.ALL}
    for state, n in session.exec(stmt.group_by(DeliveryCount.state)).all():
        counts[state] = counts.get(state, 0) + int(n or 0)
    return counts


def segment_states(session: Session, issue_id: int) -> list[SegmentStates]:
    """Per segment that has ledger rows of the issue: rows, sent and failed (what GROUP BY segment gave)."""
    n = DeliveryCount.n
    stmt = (select(DeliveryCount.segment, func.sum(n), func.sum(case((DeliveryCount.state == D.SENT, n), else_=0)),
                   func.sum(case((DeliveryCount.state == D.FAILED, n), else_=0)))
            .where(DeliveryCount.issue_id == issue_id).group_by(DeliveryCount.segment)
            .having(func.sum(n) > 0))
    return [SegmentStates(seg or None, int(rows), int(sent or 0), int(failed or 0))
            for seg, rows, sent, failed in session.exec(stmt).all()]


def sent_per_bucket(session: Session, issue_id: int, seconds: int) -> dict[int, int]:
    """Sent rows per bucket of `seconds` (a whole number of minutes), keyed by the bucket's epoch second.

    The minutes were taken with report.sql.epoch, so a bucket holds exactly the
    rows whose epoch(sent_at) falls in it, as counting the ledger did.
    """
    if seconds % 60:
        raise ValueError(f"a timeline bucket is whole minutes, not {seconds} s")
    bucket = (DeliveryMinute.minute - DeliveryMinute.minute % seconds).label("bucket")
    rows = session.exec(select(bucket, func.sum(DeliveryMinute.n)).where(DeliveryMinute.issue_id == issue_id)
                        .group_by(bucket)).all()
    return {int(at): int(n) for at, n in rows if n}


def count_later(session: Session) -> bool:
    """PostgreSQL: the insert trigger skips the rest of this transaction; the caller must `add` what it inserts.

    Returns False (nothing changed, the triggers count) on SQLite, whose one
    writer at a time makes a long transaction's counts cost nobody a wait.
    """
    if session.get_bind().dialect.name != "postgresql":
        return False
    session.connection().exec_driver_sql("SET LOCAL bulletin.count_later = on")
    return True


def add(session: Session, issue_id: int, send_id: int, state: str, n: int, *, segment: str | None = None) -> None:
    """Count `n` rows the insert trigger skipped (see `count_later`), and let the trigger count again.

    Meant as the transaction's last write: it takes the issue's counter lock as
    the triggers do, held until commit.
    """
    conn = session.connection()
    conn.exec_driver_sql("SET LOCAL bulletin.count_later = off")
    if not n:
        return
    shard = conn.execute(text("SELECT delivery_counts_shard()")).scalar_one()  # the triggers' own
    conn.execute(text("SELECT pg_advisory_xact_lock(:k, :issue)"), {"k": LOCK_CLASS + shard, "issue": issue_id})
    conn.execute(text("INSERT INTO delivery_count AS t (issue_id, send_id, segment, state, shard, n) "
                      "VALUES (:issue, :send, :segment, :state, :shard, :n) "
                      "ON CONFLICT (issue_id, send_id, segment, state, shard) DO UPDATE SET n = t.n + excluded.n"),
                 {"issue": issue_id, "send": send_id, "segment": segment or NO_SEGMENT, "state": state, "shard": shard,
                  "n": n})
