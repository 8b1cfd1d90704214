"""Queueing an issue for a list: one streamed pass, whatever the size of the list.

The recipients are read in id order, each is checked (`check_recipient`), and
the rows go straight into the ledger. No Message-ID is stored: it is derived
from (subscriber, list, issue) when the message is built (see
`Delivery.message_id`), so the queue signs nothing. PostgreSQL: a
read-ahead thread reads the next chunk on a second connection (server-side
cursor) and checks it while this one is COPYed in the caller's transaction.
SQLite: a lazy cursor and batched INSERTs on the session's own connection. Nothing holds the whole list, so memory stays flat
at a million recipients. It is all one transaction, so a bad address found at
row 900,000 still leaves nothing written (the caller's session rolls back).
Subscribers who already have a row for the issue (from any list) are left out
by the query itself. The rows are counted into delivery_count once, at the end
(see counts.count_later), not chunk by chunk by the insert trigger.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin import pgcopy
from bulletin.audience.bulk import bulk_insert, stamp
from bulletin.delivery import counts
from bulletin.delivery.message import RecipientRow, check_recipient
from bulletin.models import (
    DERIVED_MESSAGE_ID as DERIVED,
)
from bulletin.models import Delivery, Subscriber, Subscription, utcnow
from bulletin.readahead import prefetched, reading_ahead
from bulletin.statuses import DeliveryState, SubscriptionState

CHUNK = 5000
DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
ANALYZE_AFTER = 10_000
_COPY = ("COPY delivery (issue_id, subscriber_id, send_id, state, message_id, attempts, deadline, created_at) "
         "FROM STDIN")


@dataclass(frozen=True)
class QueueCount:
    new_rows: int
    already: int


def _audience(list_id: int):  # type: ignore[no-untyped-def]
    return (Subscription.list_id == list_id, Subscription.state == SubscriptionState.CONFIRMED,
            Subscriber.suppressed.is_(False), Subscriber.email.is_not(None))


def _has_row(issue_id: int):  # type: ignore[no-untyped-def]
    return exists().where(and_(Delivery.issue_id == issue_id, Delivery.subscriber_id == Subscriber.id))


def already_count(session: Session, list_id: int, issue_id: int) -> int:
    """Confirmed subscribers of the list who already have a row for the issue."""
    stmt = (select(func.count()).select_from(Subscriber)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .where(*_audience(list_id), _has_row(issue_id)))
    return int(session.exec(stmt).one())


def _new_recipients_query(list_id: int, issue_id: int):  # type: ignore[no-untyped-def]
    return (select(Subscriber.id, Subscriber.email, Subscriber.name)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .where(*_audience(list_id), ~_has_row(issue_id))
            .order_by(Subscriber.id))


def new_recipients(session: Session, list_id: int, issue_id: int) -> Iterator[RecipientRow]:
    """Confirmed, unsuppressed subscribers with no row for the issue, in id order, streamed."""
    stmt = _new_recipients_query(list_id, issue_id)
    # Statement-level options: Connection.execution_options() would turn every later statement of
    # the session's connection into a server-side cursor too.
    result = session.connection().execute(stmt.execution_options(stream_results=True, max_row_buffer=CHUNK))
    for sid, email, name in result:
        yield RecipientRow(int(sid), str(email), str(name or ""))


def first_recipient(session: Session, list_id: int, issue_id: int) -> RecipientRow | None:
    stmt = (select(Subscriber.id, Subscriber.email, Subscriber.name)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .where(*_audience(list_id), ~_has_row(issue_id)).order_by(Subscriber.id).limit(1))
    row = session.exec(stmt).first()
    return None if row is None else RecipientRow(int(row[0]), str(row[1]), str(row[2] or ""))


def queue_rows(session: Session, *, send_id: int, list_id: int, issue_id: int,
               deadline: datetime) -> int:
    """Insert one queued row per new recipient; returns how many. Raises on the first bad address."""
    if session.get_bind().dialect.name == "postgresql":
        counts.count_later(session)  # one count at the end, not the issue's counter lock for the whole COPY
        with reading_ahead():
            chunks = prefetched(_read_chunks(session.get_bind(), list_id, issue_id))
            count = _copy_rows(session, chunks, send_id, issue_id, deadline)
        if count >= ANALYZE_AFTER:
            # Fresh statistics before the first claim: on stale ones the planner sorts every open row
            # (0.5 s a claim at 200,000) instead of walking ix_delivery_open in id order.
            session.connection().exec_driver_sql("ANALYZE delivery")
        counts.add(session, issue_id, send_id, DeliveryState.QUEUED, count)
        return count
    rows = _checked(new_recipients(session, list_id, issue_id))
    return _insert_rows(session, rows, send_id, issue_id, deadline)


def _read_chunks(bind: Engine, list_id: int, issue_id: int) -> Iterator[list[int]]:
    """PostgreSQL: the recipients in chunks, read and checked on a second connection.

    Run by the read-ahead thread, so the server's join and the checks of the next
    chunk overlap the COPY of this one on the session's connection. The second
    connection sees what was committed when it started (after the caller's
    transaction began): the rows this transaction writes are for this issue, which
    the query leaves out anyway, and a uq_delivery conflict would still fail the COPY.
    """
    query = _new_recipients_query(list_id, issue_id).compile(dialect=bind.dialect)
    with bind.connect() as conn:
        # The driver's own server-side cursor: SQLAlchemy's row objects cost more than the
        # fetch itself at a million rows.
        raw = conn.connection.driver_connection
        with raw.cursor(name="bulletin_recipients") as cursor:  # type: ignore[union-attr]
            cursor.itersize = CHUNK
            cursor.execute(str(query), query.params)
            while part := cursor.fetchmany(CHUNK):
                yield list(_checked(RecipientRow(sid, email, name or "") for sid, email, name in part))


def _checked(rows: Iterable[RecipientRow]) -> Iterator[int]:
    """The subscriber ids of `rows`, each once its address has passed `check_recipient`."""
    for row in rows:
        check_recipient(row)
        yield row.subscriber_id


def _insert_rows(session: Session, rows: Iterator[int], send_id: int, issue_id: int, deadline: datetime) -> int:
    """SQLite: executemany of rows already in the driver's terms (`bulk_insert`), a chunk at a time.

    SQLite reads the recipients lazily; fetch a chunk, then write it, so the read cursor never
    sees rows it is inserting (they are for this issue, which the query excludes anyway).
    Through the ORM's bulk insert the per-row bind processing of the two times was most of the
    queue (1.9 s of a 20,000-row queue, `py-spy --gil`).
    """
    conn = session.connection()
    fixed = {"issue_id": issue_id, "send_id": send_id, "state": DeliveryState.QUEUED.value, "message_id": DERIVED,
             "attempts": 0, "deadline": stamp(conn, deadline), "created_at": stamp(conn, utcnow())}
    count, batch = 0, []
    for sid in rows:
        batch.append({**fixed, "subscriber_id": sid})
        if len(batch) >= CHUNK:
            bulk_insert(conn, DELIVERY, batch)
            count, batch = count + len(batch), []
    if batch:
        bulk_insert(conn, DELIVERY, batch)
        count += len(batch)
    return count


def _copy_rows(session: Session, chunks: Iterator[list[int]], send_id: int, issue_id: int,
               deadline: datetime) -> int:
    """COPY each chunk through the session's own psycopg connection, in the session's transaction."""
    raw = session.connection().connection.driver_connection
    now = utcnow()
    return sum(_copy_chunk(raw, chunk, send_id, issue_id, deadline, now) for chunk in chunks if chunk)


def _copy_chunk(raw, ids: list[int], send_id: int, issue_id: int,  # type: ignore[no-untyped-def]
                deadline: datetime, now: datetime) -> int:
    n = len(ids)
    columns = [[issue_id] * n, ids, [send_id] * n, [str(DeliveryState.QUEUED)] * n, [DERIVED] * n, [0] * n,
               [deadline] * n, [now] * n]
    with raw.cursor() as cur, cur.copy(_COPY) as copy:
        copy.write(pgcopy.block(columns))
    return n
