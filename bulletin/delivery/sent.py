"""The sent marks: the one statement a send runs per message, on a connection of its own.

Apart from the ledger's other statements because it is the hot path and is
written below SQLAlchemy (driver SQL on a raw connection, see `SentWriter`);
everything else about the ledger's rows is in `ledger`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from bulletin.delivery.counts import LOCK_CLASS
from bulletin.models import Delivery
from bulletin.statuses import DeliveryState as D

SELF_COUNTED = "self"  # bulletin.row_counts: this connection's marks count themselves (migration 0025)
COUNTED_KEY = "issue_id, send_id, coalesce(segment, '') AS segment"  # a marked row's counter, less its state
MINUTE = "CAST(EXTRACT(EPOCH FROM $1::timestamptz) AS BIGINT)"  # as migration 0019's, of the sent time


class SentWriter:
    """Commits groups of 250s on its own DBAPI connection, in driver SQL.

    This is the one statement a send runs per message, and SQLAlchemy's compile,
    bind and event layers cost about as much again as the statement itself. The
    time is bound with the column's own bind processor, so it is stored exactly
    as Core stores it (SQLite text, PostgreSQL timestamptz). Each `write` is one
    committed transaction: BEGIN IMMEDIATE on SQLite, as db.py does for Core; on
    PostgreSQL one autocommitted statement, so a group is one round trip, not
    four (BEGIN, SET LOCAL, UPDATE, COMMIT).
    """

    _SQL = "UPDATE delivery SET state = ?, sent_at = ?, smtp_code = ?, last_error = NULL WHERE id = ?"  # SQLite
    # PostgreSQL, prepared once on the writer's connection (see `_Prepared`). Each mark keeps the
    # running counts itself, in the same statement (see `_counted`); one for the usual group of one
    # row, one for a group (the whole group one statement and one round trip).
    _PG_ONE = ("UPDATE delivery SET state = 'sent', sent_at = $1::timestamptz, smtp_code = $2::integer, "
               "last_error = NULL WHERE id = $3::integer AND state = 'claimed' RETURNING id, " + COUNTED_KEY)
    _PG_SQL = ("UPDATE delivery SET state = 'sent', sent_at = $1::timestamptz, smtp_code = d.code, last_error = NULL "
               "FROM unnest($2::integer[], $3::integer[]) AS d(id, code) "
               "WHERE delivery.id = d.id AND delivery.state = 'claimed' RETURNING delivery.id, " + COUNTED_KEY)

    def __init__(self, engine: Engine, *, flush_wait: bool = True) -> None:
        dialect = engine.dialect
        self._sqlite = dialect.name == "sqlite"
        self._bind = Delivery.__table__.c.sent_at.type._cached_bind_processor(dialect)  # type: ignore[attr-defined]
        self._raw = engine.raw_connection()
        try:
            self._cursor = self._raw.cursor()
            if not self._sqlite:
                self._set_up(flush_wait)
        except BaseException:
            self._raw.invalidate()  # half set up (settings, a prepared statement): never back to the pool
            self._raw.close()
            raise

    def _set_up(self, flush_wait: bool) -> None:
        """PostgreSQL: the writer's connection settings and its two prepared marks."""
        self._raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        # Every sender waits for its group's commit before its next message, so the WAL flush
        # (an fsync) would be paid once per message per connection. Without the wait a commit
        # is still in the server when we return: a killed sender loses nothing, as on SQLite
        # with synchronous=NORMAL; only a server or OS crash can lose the last fraction of a
        # second. `close` puts the server's durable default back before the pool has it.
        if not flush_wait:
            self._cursor.execute("SET synchronous_commit = off")
        # psycopg prepares the statement after a few runs, but PostgreSQL then went on planning
        # it afresh each time (a custom plan for every array), and so did the count trigger's
        # statements: planning was most of the server's time per message. The plan does not
        # depend on the values (unnest of the ids, then the primary key), so one generic plan
        # serves every group: 2,500 -> 5,500 marks a second for one writer (bench/counts.py).
        self._cursor.execute("SET plan_cache_mode = force_generic_plan")
        # The running counts of this connection's marks come from the row trigger of migration
        # 0022 (two small upserts a row), not 0019's statement trigger, whose plan is set up
        # afresh for each statement: the larger half of the server's time per message.
        self._cursor.execute(f"SET bulletin.row_counts = {SELF_COUNTED}")
        self._pg = _Prepared(self._raw.driver_connection.pgconn, _counted(self._PG_ONE), _counted(self._PG_SQL))  # type: ignore[union-attr]

    def write(self, rows: list[tuple[int, int]], at: datetime) -> None:
        """Mark `rows` (delivery id, SMTP code) sent at `at`; committed when this returns."""
        when = self._bind(at) if self._bind is not None else at
        if not self._sqlite:
            self._write_pg(rows, _text(when))
            return
        try:
            self._cursor.execute("BEGIN IMMEDIATE")
            self._cursor.executemany(self._SQL, [(D.SENT, when, code, did) for did, code in rows])
            self._raw.commit()
        except BaseException:
            self._raw.rollback()
            raise

    def _write_pg(self, rows: list[tuple[int, int]], when: str) -> None:
        if len(rows) == 1:
            # Most groups are one row (each connection waits for its own mark), and the server runs
            # the plain one-row UPDATE in about 50 us less than the join to unnest: measured
            # 198 against 248 us a statement; one writer went from about 3,300 to 3,500-4,100 marks a
            # second (bench/counts.py --writers 1 --group 1, three rounds each).
            marked = self._pg.one(when, str(rows[0][1]), str(rows[0][0]))
        else:
            marked = self._pg.group(when, _array(did for did, _ in rows), _array(code for _, code in rows))
        if marked < len(rows):
            self._mark_the_rest(rows, when)

    def _mark_the_rest(self, rows: list[tuple[int, int]], when: str) -> None:
        """Rows no longer claimed when their mark came (given back as stale, cancelled, already marked):
        the message did go, so they are marked sent all the same, as before the counting marks, and
        counted by the row trigger of migration 0022, which sees each row's old state. Rare, so the
        values are written into the text (numbers and our own time) and the call is not prepared.
        Rows marked by the first statement are marked again, which changes no count."""
        ids, codes = _array(did for did, _ in rows), _array(code for _, code in rows)
        self._pg.simple(
            "SET LOCAL bulletin.row_counts = on; "  # this implicit transaction only (one Query, several statements)
            f"UPDATE delivery SET state = 'sent', sent_at = '{when}'::timestamptz, smtp_code = d.code, "
            f"last_error = NULL FROM unnest('{ids}'::integer[], '{codes}'::integer[]) AS d(id, code) "
            "WHERE delivery.id = d.id")

    def close(self) -> None:
        """Give the connection back as the pool handed it out; a broken one is thrown away instead."""
        try:
            if not self._sqlite:
                self._pg.release()
                self._cursor.execute("RESET synchronous_commit")
                self._cursor.execute("RESET plan_cache_mode")
                self._cursor.execute("RESET bulletin.row_counts")
                self._raw.driver_connection.autocommit = False  # type: ignore[union-attr]
            self._cursor.close()
        except Exception:  # noqa: BLE001 - the server went away: nothing to restore on this connection
            self._raw.invalidate()
        self._raw.close()


class _Prepared:
    """The two marks prepared on the writer's connection and run through libpq itself.

    psycopg's `execute` is a pipeline of Python generators (query conversion,
    the prepared-statement cache, the result's row maker) around one libpq call:
    about 40 us of CPU a statement and a fifth of a sending process's GIL time
    (`py-spy --gil`), for a statement whose parameters are three numbers and a
    time. libpq releases the GIL while it waits, as psycopg does. The names are
    this writer's own, and `release` deallocates them before the connection goes
    back to the pool.
    """

    def __init__(self, pgconn: Any, one: str, group: str) -> None:
        from psycopg import pq  # here, not at the top: a SQLite workspace never loads the driver

        self._pgconn, self._ok, self._rows = pgconn, pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK
        self._one, self._group = (f"bulletin_mark_{kind}_{id(self):x}".encode() for kind in ("one", "group"))
        self._run(pgconn.prepare(self._one, one.encode()))
        self._run(pgconn.prepare(self._group, group.encode()))

    def one(self, *params: str) -> int:
        """Run the one-row mark; returns the number of rows it marked (its one result value)."""
        return self._count(self._pgconn.exec_prepared(self._one, [p.encode() for p in params]))

    def group(self, *params: str) -> int:
        return self._count(self._pgconn.exec_prepared(self._group, [p.encode() for p in params]))

    def simple(self, sql: str) -> None:
        self._run(self._pgconn.exec_(sql.encode()))

    def _count(self, result: Any) -> int:
        self._run(result, self._rows)
        return int(result.get_value(0, 0))

    def release(self) -> None:
        for name in (self._one, self._group):
            self._run(self._pgconn.exec_(b"DEALLOCATE " + name))

    def _run(self, result: Any, ok: Any = None) -> None:
        """Raise what psycopg would have raised for a failed statement (a killed backend: OperationalError)."""
        if result.status == (ok or self._ok):
            return
        from psycopg import errors, pq

        pgconn = self._pgconn
        if pgconn.status == pq.ConnStatus.BAD:
            raise errors.OperationalError(f"the connection is lost: {pq.error_message(pgconn) or 'no reason given'}")
        encoding = pgconn.parameter_status(b"client_encoding").decode() or "utf-8"
        raise errors.error_from_result(result, encoding=encoding)


def _counted(mark: str) -> str:
    """`mark` (an UPDATE of claimed rows to sent, RETURNING their ids and counter keys) as one statement
    that also moves the running counts and the minute, as the triggers of migration 0019 would: the
    issue's counter lock in issue order, then one upsert per table, each row's old state known to be
    'claimed' from the UPDATE's own condition. Returns how many rows it marked.

    The row trigger this replaces (0022) cost a third of the server's time per message under
    `perf`; a row-level trigger is queued, fired and set up as four small statements for every row.
    The writer's connection sets bulletin.row_counts to `SELF_COUNTED`, for which neither trigger fires.
    """
    return f"""
    WITH m AS ({mark}),
    s AS MATERIALIZED (SELECT delivery_counts_shard() AS shard),
    locked AS MATERIALIZED (
        SELECT count(*) AS issues FROM (
            SELECT pg_advisory_xact_lock({LOCK_CLASS} + s.shard, i.issue_id)
              FROM s, (SELECT DISTINCT issue_id FROM m ORDER BY issue_id) i) l),
    counted AS (
        INSERT INTO delivery_count AS t (issue_id, send_id, segment, state, shard, n)
        SELECT issue_id, send_id, segment, v.state, s.shard, sum(v.d) FROM m, s, locked,
               (VALUES ('{D.CLAIMED.value}', -1), ('{D.SENT.value}', 1)) AS v(state, d)
         GROUP BY issue_id, send_id, segment, v.state, s.shard ORDER BY issue_id, send_id, segment, v.state
            ON CONFLICT (issue_id, send_id, segment, state, shard) DO UPDATE SET n = t.n + excluded.n),
    minutes AS (
        INSERT INTO delivery_minute AS t (issue_id, minute, shard, n)
        SELECT issue_id, {MINUTE} - {MINUTE} % 60, s.shard, count(*) FROM m, s, locked
         GROUP BY issue_id, s.shard ORDER BY issue_id
            ON CONFLICT (issue_id, minute, shard) DO UPDATE SET n = t.n + excluded.n)
    SELECT count(*) FROM m"""


def _text(at: Any) -> str:
    """A time as PostgreSQL's text input reads it (the bind processor has made it aware UTC)."""
    return at.isoformat(sep=" ")


def _array(numbers: Iterable[int]) -> str:
    return "{" + ",".join(str(n) for n in numbers) + "}"
