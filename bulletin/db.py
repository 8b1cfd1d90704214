"""Engine and sessions: SQLite (WAL, foreign keys) by default, PostgreSQL at scale.

Both run the same code and the same Alembic migrations. SQLite is upgraded on
first use so the embedded default needs no set-up step; PostgreSQL is upgraded
the same way unless the caller asks not to (production runs `bulletin db upgrade`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from bulletin.errors import ConfigError
from bulletin.schema import MIGRATIONS
from bulletin.schema import newest_revision as _newest_revision

if TYPE_CHECKING:
    from alembic.config import Config

Row = TypeVar("Row")


def make_engine(url: str, *, upgrade: bool = True, address_key: str | None = None) -> Engine:
    """Create the engine for `url`; creates the SQLite file and upgrades the schema on first use.

    `address_key` (the workspace's `Settings.address_key`) keys the suppression hashes;
    an engine without one refuses to read or write suppressions (`address_key_of`).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types here
        raise ConfigError(f"setting 'database_url': cannot parse {url!r}: {exc}") from None
    if parsed.drivername.startswith("postgresql") and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        engine = _sqlite_engine(parsed)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
    if address_key:
        use_address_key(engine, address_key)
    if upgrade:
        upgrade_schema(engine)
    return engine


ADDRESS_KEY = "bulletin.address_key"


def use_address_key(engine: Engine, key: str) -> None:
    """Hand the suppression-hash key to every connection this engine checks out.

    The key lives in the secrets folder, never in the database; it rides on the
    pooled connection's `info` so stage functions that take only a session or a
    connection can reach it without a process-wide global.
    """
    raw = key.encode("utf-8")

    @event.listens_for(engine, "checkout")
    def _key(_dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        record.info[ADDRESS_KEY] = raw


def address_key_of(bind: Session | Connection) -> bytes:
    """The suppression-hash key of this session's or connection's engine; refuses when there is none."""
    conn = bind.connection() if isinstance(bind, Session) else bind
    key = conn.info.get(ADDRESS_KEY)
    if not key:
        raise ConfigError("this database connection has no address key (setting 'address_key'), "
                          "so it cannot read or write suppressions; open it through the workspace")
    return bytes(key)


def _sqlite_engine(url) -> Engine:  # type: ignore[no-untyped-def]
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created private before SQLite opens it: SQLite gives the -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Take control of transactions ourselves so BEGIN IMMEDIATE works for claims.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        # Erasure must reach the file: deleted and overwritten rows are zeroed, not left in free pages.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front: no deadlock between two writers that both read first.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def database_exists(url: str) -> bool:
    """False only for a SQLite file not created yet; servers are assumed to exist (connecting tells)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return True
    return Path(parsed.database).exists()


# Alembic is imported where it is used: a command that only reads the schema's revision loads
# its migration context, and only an upgrade loads `alembic.command` and the migration scripts.


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    try:
        if _stamped_newest(engine) or current_revision(engine) == head_revision():
            return
        from alembic import command

        command.upgrade(alembic_config(engine), "head")
    except OperationalError as exc:
        raise ConfigError(f"setting 'database_url': cannot reach the database: {exc.orig}") from None


VERSION_TABLE = "alembic_version"


def _stamped_newest(engine: Engine) -> bool:
    """True when the database is stamped with the newest migration, told without importing Alembic.

    Every command that opens the database asks; Alembic's answer costs a third of a second of
    imports and script loading. Only a certain yes is taken from here (one stamped row, equal to
    the one head of the version files); anything else goes the Alembic way, which upgrades.
    """
    newest = _newest_revision()
    if newest is None:
        return False
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        stamped = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return stamped == [newest]


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


# What a URL or a form may ask for ------------------------------------------------------------------
# The largest integer both databases bind (SQLite INTEGER, PostgreSQL BIGINT). A bigger id names no row,
# but binding it raises (SQLite: OverflowError) instead of finding none, so the edge refuses it first.
MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True)
class Paged(Generic[Row]):
    """One page of a listing: the rows, `page` as shown (clamped by `page_bounds`) and how many `pages`.

    The stage that counts the rows clamps the page once and says which page it read, so a shell
    shows exactly that page number and never clamps a second time (and never disagrees).
    """

    total: int
    page: int
    pages: int
    rows: list[Row]


def refresh_statistics(engine: Engine, *tables: str) -> None:
    """PostgreSQL: ANALYZE the tables a bulk write just filled, before anyone plans a query on them.

    Autovacuum analyzes a table only after its naptime and thresholds, and not at
    all where it is turned off. Until then the planner has no statistics for a
    table a million-row import or queue just filled, and guesses: the claim's
    recipient read combined the (subscriber, list) key with a scan of the
    subscription state index, a million entries for each of 200 people (3.4 s a
    claim; a send of 1,000,000 ran at 59 messages a second). ANALYZE samples
    30,000 rows whatever the size (a fraction of a second at a million) and
    blocks no reader or writer. SQLite plans without statistics of its own.
    """
    if engine.dialect.name != "postgresql" or not tables:
        return
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{t}"' for t in tables))


def settle_bulk_rows(engine: Engine, table: str) -> None:
    """PostgreSQL: VACUUM (and ANALYZE, as `refresh_statistics` would) a table a bulk COPY just filled,
    so its first readers find it settled.

    Until a page has been vacuumed, its first reader after the COPY sets the
    rows' commit hint bits and dirties it, and autovacuum comes round once the
    insert threshold is passed (20 % of the table), scanning the whole new part
    while the send that follows is under way: the claims of the first minutes
    paid both. At 1,000,000 the claim of 200 rows at 1 % of the send took 1.3-1.9
    times the one at 99 % in four runs (bench/scale.py). VACUUM skips the pages
    already all-visible, blocks no reader or writer of the rows, and must run
    outside a transaction; an autovacuum of the table in progress gives way to it.
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'VACUUM (ANALYZE) "{table}"')


def page_bounds(total: int, page: int, per_page: int) -> tuple[int, int]:
    """(page, pages): the page asked for, clamped to 1..pages, for `total` rows `per_page` to a page.

    A page number from a URL past the last page becomes an OFFSET too large to bind
    (a 500 on both databases); past the end, the last page is the useful answer.
    """
    pages = max((total + per_page - 1) // per_page, 1)
    return min(max(page, 1), pages), pages


def forget_old_pages(engine: Engine) -> None:
    """After an erasure: SQLite's WAL still holds the old pages until a checkpoint; fold it in and truncate.

    With secure_delete on, the checkpointed file has the old rows zeroed; PostgreSQL
    needs nothing here (a dump never shows dead tuples).
    """
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def scratch_database(base_url: str | None, folder: Path, prefix: str = "bulletin_scratch") -> Iterator[str]:
    """A new empty database: a SQLite file in `folder`, or a PostgreSQL one beside `base_url`, dropped after.

    Tests and benchmarks need a database nobody else writes to; creating one per
    run is cheaper than cleaning a shared one and cannot touch real data.
    """
    import uuid

    from sqlalchemy import create_engine as sa_create_engine

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if not base_url:
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    base = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = sa_create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
