"""Driver SQL for the read-only figures: one text per query, run on a session or straight on the driver.

`bulletin status` and `bulletin report` are what people run over and over while
an issue goes out, and importing SQLAlchemy, SQLModel and the models costs far
more than their queries (at 1,000,000 recipients the queries take 11-17 ms;
the imports about 400 ms). So the readers of the running counts, the sends and
the report's figures are written as plain SQL against a `Reader`: the console
and the tests hand them a `SessionReader` (the caller's SQLAlchemy session and
transaction), the two commands a `DriverReader` on a bare sqlite3 or psycopg
connection. Either way the same text reaches the same driver with the same
parameters, so the two paths cannot disagree.

Only standard SQL that both databases read alike goes here, written with
`:name` parameters; `epoch` is the one construct they spell differently.
Results are the driver's own values: a time is text on SQLite and a
`datetime` on PostgreSQL, which `as_datetime` makes one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

if TYPE_CHECKING:
    from sqlmodel import Session

SQLITE, POSTGRESQL = "sqlite", "postgresql"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime stores a time on SQLite


class Reader(Protocol):
    """Runs one read-only statement and returns its rows as tuples."""

    dialect: str

    def rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]: ...


@lru_cache(maxsize=256)
def driver_sql(sql: str, dialect: str) -> str:
    """`:name` parameters in the driver's own style (sqlite3 reads them as they are; psycopg wants %(name)s)."""
    if dialect == SQLITE:
        return sql
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def driver_params(params: dict[str, object], dialect: str) -> dict[str, object]:
    """Times as the column holds them: naive UTC text on SQLite (as SQLAlchemy writes it), as they are on PostgreSQL."""
    if dialect != SQLITE:
        return params
    return {k: _sqlite_time(v) if isinstance(v, datetime) else v for k, v in params.items()}


def _sqlite_time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(_SQLITE_TIME)


def epoch(expr: str, dialect: str) -> str:
    """Seconds since 1970-01-01 UTC of a stored time, as an integer: the one spelling (report.sql.epoch compiles to it)."""
    if dialect == SQLITE:
        return f"CAST(strftime('%s', {expr}) AS INTEGER)"
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS BIGINT)"


def as_datetime(value: object) -> datetime | None:
    """A stored time as an aware UTC datetime, whichever driver read it."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a stored time: {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def reader_of(source: Session | Reader) -> Reader:
    """A session's reader, or the reader given: the figures take either."""
    return source if hasattr(source, "rows") else SessionReader(source)  # type: ignore[arg-type,return-value]


class SessionReader:
    """The caller's SQLAlchemy session: its connection and transaction, the driver's own SQL."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.dialect = session.get_bind().dialect.name

    def rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        self._session.flush()  # driver SQL does not autoflush: let it see what the caller has added
        result = self._session.connection().exec_driver_sql(driver_sql(sql, self.dialect),
                                                            driver_params(params, self.dialect))
        return [tuple(r) for r in result.all()]


class DriverReader:
    """A bare DB-API connection (sqlite3 or psycopg), for the commands that must start fast."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self._connection, self.dialect = connection, dialect

    def rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(driver_sql(sql, self.dialect), driver_params(params, self.dialect))
            return [tuple(r) for r in cursor.fetchall()]
        finally:
            cursor.close()


class NoFastPath(Exception):
    """This database cannot be read on the driver alone (unknown URL, missing file, old schema): use the full path."""


@contextmanager
def driver_reader(url: str, newest_revision: str | None) -> Iterator[DriverReader]:
    """A read-only reader on `url`, only when the schema is stamped with `newest_revision`.

    Anything unusual raises NoFastPath before a row is read, and the caller goes
    the ordinary way (which creates, upgrades or explains): the fast path never
    decides anything the full one would decide differently.
    """
    if newest_revision is None:
        raise NoFastPath("the newest migration is not known")
    conn, dialect = _connect(url)
    try:
        reader = DriverReader(conn, dialect)
        try:
            stamped = [r[0] for r in reader.rows("SELECT version_num FROM alembic_version")]
        except Exception as exc:  # noqa: BLE001 - no version table, or any driver error: the full path explains
            raise NoFastPath(f"cannot read the schema version: {exc}") from None
        if stamped != [newest_revision]:
            raise NoFastPath(f"schema at {stamped}, newest is {newest_revision}")
        if dialect == SQLITE:
            conn.execute("BEGIN")  # one snapshot for every query, as the session's transaction gives
        yield reader
    finally:
        conn.close()


def _connect(url: str) -> tuple[Any, str]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise NoFastPath(f"not a database URL: {url!r}")
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return _connect_sqlite(rest), SQLITE
    if scheme in ("postgresql", "postgresql+psycopg"):
        if "?" in rest:  # query options are SQLAlchemy's to interpret
            raise NoFastPath("a PostgreSQL URL with options")
        import psycopg

        try:
            return psycopg.connect(f"postgresql://{rest}"), POSTGRESQL  # a transaction, never committed
        except psycopg.Error as exc:
            raise NoFastPath(str(exc)) from None
    raise NoFastPath(f"no fast path for {scheme}")


def _connect_sqlite(rest: str) -> Any:
    import sqlite3

    # sqlite:///relative and sqlite:////absolute, as SQLAlchemy reads them; nothing else.
    if not rest.startswith("/") or "?" in rest or rest in ("/", "/:memory:"):
        raise NoFastPath("an unusual SQLite URL")
    path = Path(unquote(rest[1:]))
    if not path.is_file():
        raise NoFastPath(f"{path} does not exist")
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")  # this path only reads, whatever a bug might ask
    return conn
