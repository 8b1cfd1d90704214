"""Running counts of the ledger: what `status` and `report` read instead of counting every row.

Triggers on `delivery` (migration 0019) keep `delivery_count` (rows per issue,
send, segment and state) and `delivery_minute` (sent rows per minute of
sent_at) in the statement that changes a row, so the counts commit or roll
back with the ledger itself and no writer can forget them. `readout` reads
them, in driver SQL; this module keeps the one case where a writer counts for
itself: the streamed queueing on PostgreSQL, which would otherwise hold the issue's counter lock
for the whole of a long COPY while workers sending the same issue wait on it.

Each transaction writes its own shard of the counter rows (its transaction id
modulo 32), so two workers never wait for each other's commit; every reader
in `readout` adds the shards up. Rows folded into `delivery_tally` by `bulletin db
compact` leave these counts with the rows (the delete trigger); readers add
the tallies back as before.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from bulletin.delivery.readout import NO_SEGMENT
from bulletin.statuses import DeliveryState

D = DeliveryState
LOCK_CLASS = 7301  # pg_advisory_xact_lock(LOCK_CLASS + shard, issue_id): the triggers of migration 0019 take the same


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
