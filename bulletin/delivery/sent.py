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

from bulletin.models import Delivery
from bulletin.statuses import DeliveryState as D


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
    # PostgreSQL, prepared once on the writer's connection (see `_Prepared`); the whole group is one
    # statement and one round trip (executemany is one per row).
    _PG_ONE = (f"UPDATE delivery SET state = '{D.SENT.value}', sent_at = $1::timestamptz, smtp_code = $2::integer, "
               "last_error = NULL WHERE id = $3::integer")
    _PG_SQL = (f"UPDATE delivery SET state = '{D.SENT.value}', sent_at = $1::timestamptz, smtp_code = d.code, "
               "last_error = NULL FROM unnest($2::integer[], $3::integer[]) AS d(id, code) WHERE delivery.id = d.id")

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
        self._cursor.execute("SET bulletin.row_counts = on")
        self._pg = _Prepared(self._raw.driver_connection.pgconn, self._PG_ONE, self._PG_SQL)  # type: ignore[union-attr]

    def write(self, rows: list[tuple[int, int]], at: datetime) -> None:
        """Mark `rows` (delivery id, SMTP code) sent at `at`; committed when this returns."""
        when = self._bind(at) if self._bind is not None else at
        if not self._sqlite:
            if len(rows) == 1:
                # Most groups are one row (each connection waits for its own mark), and the server runs
                # the plain one-row UPDATE in about 50 us less than the join to unnest: measured
                # 198 against 248 us a statement; one writer went from about 3,300 to 3,500-4,100 marks a
                # second (bench/counts.py --writers 1 --group 1, three rounds each).
                self._pg.one(_text(when), str(rows[0][1]), str(rows[0][0]))
                return
            self._pg.group(_text(when), _array(did for did, _ in rows), _array(code for _, code in rows))
            return
        try:
            self._cursor.execute("BEGIN IMMEDIATE")
            self._cursor.executemany(self._SQL, [(D.SENT, when, code, did) for did, code in rows])
            self._raw.commit()
        except BaseException:
            self._raw.rollback()
            raise

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

        self._pgconn, self._ok = pgconn, pq.ExecStatus.COMMAND_OK
        self._one, self._group = (f"bulletin_mark_{kind}_{id(self):x}".encode() for kind in ("one", "group"))
        self._run(pgconn.prepare(self._one, one.encode()))
        self._run(pgconn.prepare(self._group, group.encode()))

    def one(self, *params: str) -> None:
        self._run(self._pgconn.exec_prepared(self._one, [p.encode() for p in params]))

    def group(self, *params: str) -> None:
        self._run(self._pgconn.exec_prepared(self._group, [p.encode() for p in params]))

    def release(self) -> None:
        for name in (self._one, self._group):
            self._run(self._pgconn.exec_(b"DEALLOCATE " + name))

    def _run(self, result: Any) -> None:
        """Raise what psycopg would have raised for a failed statement (a killed backend: OperationalError)."""
        if result.status == self._ok:
            return
        from psycopg import errors, pq

        pgconn = self._pgconn
        if pgconn.status == pq.ConnStatus.BAD:
            raise errors.OperationalError(f"the connection is lost: {pq.error_message(pgconn) or 'no reason given'}")
        encoding = pgconn.parameter_status(b"client_encoding").decode() or "utf-8"
        raise errors.error_from_result(result, encoding=encoding)


def _text(at: Any) -> str:
    """A time as PostgreSQL's text input reads it (the bind processor has made it aware UTC)."""
    return at.isoformat(sep=" ")


def _array(numbers: Iterable[int]) -> str:
    return "{" + ",".join(str(n) for n in numbers) + "}"
