"""Bulk writes below the ORM, for the import: the one place with dialect-specific SQL.

SQLAlchemy's per-row bind processing (datetime and JSON types) cost more than
the database itself on 100,000 rows, so rows arrive here already in the
driver's terms (`stamp`, `dumps`) and go out through the driver: executemany
on SQLite, COPY on PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import ARRAY, String, Text, any_, bindparam, cast
from sqlalchemy.engine import Connection
from sqlalchemy.types import NullType

from bulletin import pgcopy

SQLITE_CACHE_KIB = 32_000
dumps = json.dumps


def lock_for_batch(conn: Connection) -> None:
    """Hold off concurrent signups and unsubscribes for the length of one batch.

    SQLite's BEGIN IMMEDIATE already makes the batch the only writer. On
    PostgreSQL a web signup could otherwise insert an address between our read
    and our insert (a unique violation that would sink the batch), or an
    unsubscribe could land between reading a state and confirming it.
    Readers (sends, the web archive) are not blocked.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE subscriber, subscription IN SHARE ROW EXCLUSIVE MODE")
    elif conn.dialect.name == "sqlite":
        # Index pages of random hashes thrash SQLite's default 2 MB page cache; 32 MB is a fixed
        # bound (memory stays flat however large the file) that keeps a batch's index pages hot.
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")


def bulk_insert(conn: Connection, table: Any, rows: list[dict[str, Any]], *, text: str = "",
                columns: tuple[str, ...] = ()) -> None:
    """INSERT rows already in the driver's terms; the statement is compiled once per call.

    PostgreSQL only: `text` is more rows, already in COPY's text format, in the order of
    `columns` (which the dicts then follow too), sent in the same COPY.
    """
    if not rows and not text:
        return
    keys = list(columns or rows[0])
    if conn.dialect.name == "postgresql":
        copy_rows(conn, table.name, keys, rows, text)
        return
    assert not text, "COPY text is PostgreSQL's"
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=keys)
    if compiled.positional:
        pick = _picker(list(compiled.positiontup))
        conn.exec_driver_sql(str(compiled), [pick(r) for r in rows])
    else:
        conn.exec_driver_sql(str(compiled), rows)


def copy_rows(conn: Connection, table: str, keys: list[str], rows: list[dict[str, Any]], text: str = "") -> None:
    """PostgreSQL: COPY FROM STDIN, an order of magnitude faster than row-by-row INSERT; the
    text is built a column at a time (see bulletin.pgcopy) and sent in one write, after `text`
    (rows made earlier in the same format and column order, written as they are, not copied
    into one string with the rest)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    columns = ", ".join(f'"{k}"' for k in keys)
    with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
        if text:
            copy.write(text)
        if rows:
            copy.write(pgcopy.block([[row[k] for row in rows] for k in keys]))


def _picker(keys: list[str]) -> Any:
    """Row dict -> value tuple in `keys` order (itemgetter: C speed; one key still gives a tuple)."""
    if len(keys) == 1:
        return lambda row: (row[keys[0]],)
    return itemgetter(*keys)


def member(conn: Connection, column: Any, values: list[Any]) -> Any:
    """`column IN values`; on PostgreSQL as `= ANY(array)`: one bind instead of thousands.

    The array goes as one untyped literal cast in the SQL (psycopg's list dumper cost more
    than the lookup on 5,000 hashes). Untyped matters: a typed text bind cast again to an
    array is not folded into a constant, and an unfolded array is compared element by
    element on every row of a sequential scan (minutes at 30,000 subscribers).
    """
    if conn.dialect.name == "postgresql":
        element = Text() if isinstance(column.type, String) else column.type
        literal = bindparam(None, pgcopy.array_literal(values), type_=NullType())
        return column == any_(cast(literal, ARRAY(element)))
    return column.in_(values)


def stamp(conn: Connection, now: datetime) -> Any:
    """`now` as the driver wants it: SQLite stores naive UTC text, PostgreSQL takes the aware datetime."""
    if conn.dialect.name == "sqlite":
        return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return now
