"""Claims: how a worker takes rows of the ledger to send, and gives back what it did not send.

Apart from `ledger` (the other statements on sends and deliveries) because the
claim is a subject of its own: `FOR UPDATE SKIP LOCKED` on PostgreSQL and the
write lock on SQLite, the forward scan past rows already taken, the recipients
read with each claim (and whether each may still be mailed), and the stale
claims of dead workers. A row is committed as claimed before its SMTP
transaction, so after any stop the rows still open are exactly the ones left
to send. `ledger` re-exports every public name here.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Integer, and_, any_, bindparam, case, func, literal, or_, true, update
from sqlalchemy.engine import Engine
from sqlmodel import select

from bulletin.audience.subscribers import sendable
from bulletin.db import session_scope
from bulletin.models import Delivery, Subscriber, Subscription, utcnow
from bulletin.statuses import DeliveryState

D = DeliveryState
LEASE = timedelta(minutes=10)  # a claim older than this is taken to belong to a dead worker


@dataclass(frozen=True)
class Claimed:
    """One claimed row with what the message needs."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    message_id: str
    attempts: int
    deadline: datetime | None


def worker_id(pid: int | None = None) -> str:
    """host:pid:start (the process's start time in clock ticks, from /proc), so a later process that
    gets the same pid (a restarted container's PID 1, or pid reuse) can tell the earlier one's claims
    from its own. Claims written as host:pid (before stop 27) are still read."""
    pid = os.getpid() if pid is None else pid
    start = _start_time(pid)
    return f"{socket.gethostname()}:{pid}" + (f":{start}" if start is not None else "")


def release_stale_claims(engine: Engine, send_id: int, *, everything: bool = False, mine: str | None = None) -> int:
    """Put back claims of dead workers; returns how many.

    On this host a claimant is dead when its process is gone, a zombie, or a
    later process with the same pid; a live one keeps its claims however long
    its batch takes (a slow relay, a low `smtp_rate`): the lease would hand them
    to a second sender while it still sends them. On another host, where we
    cannot look, a claim older than the lease is dead: a live worker renews its
    claims well within it (`renew_claims`). `mine` (this sender's id) releases
    this process's own leftovers too: called after the sender's pipeline is
    drained, none of them is in flight. `everything` is for a single-process
    `send`/`resume` on SQLite, where no other process can hold a live claim.
    """
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery.id, Delivery.claimed_by, Delivery.claimed_at).where(
            Delivery.send_id == send_id, Delivery.state == D.CLAIMED)).all()
        verdicts: dict[str | None, bool] = {}  # one look per claimant, not per row
        oldest = utcnow() - LEASE
        stale = []
        for i, by, at in rows:
            if by not in verdicts:
                verdicts[by] = everything or by == mine or _is_dead(by)
            dead = verdicts[by]
            if dead or (dead is None and at is not None and at < oldest):
                stale.append(i)
        for chunk in _chunks(stale, 500):
            session.execute(update(Delivery).where(Delivery.id.in_(chunk), Delivery.state == D.CLAIMED)
                            .values(state=D.QUEUED, claimed_by=None))
        return len(stale)


def renew_claims(engine: Engine, send_id: int, worker: str) -> None:
    """Stamp this worker's claims afresh, so a worker on another host never takes them for a dead one's."""
    with session_scope(engine) as session:
        session.execute(update(Delivery).where(Delivery.send_id == send_id, Delivery.state == D.CLAIMED,
                                               Delivery.claimed_by == worker).values(claimed_at=utcnow()))


def _is_dead(claimed_by: str | None) -> bool | None:
    """True or False for a claimant on this host; None for one elsewhere (only the lease can tell)."""
    parts = (claimed_by or "").split(":")
    if len(parts) >= 3 and parts[-1].isdigit() and parts[-2].isdigit():
        host, pid, start = ":".join(parts[:-2]), int(parts[-2]), int(parts[-1])
    elif len(parts) >= 2 and parts[-1].isdigit():
        host, pid, start = ":".join(parts[:-1]), int(parts[-1]), None
    else:
        return None
    if host != socket.gethostname():
        return None
    if pid == os.getpid() and start in (None, _start_time(pid)):
        return False  # this very process: its own claims are in flight (see `mine`)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    state, started = _proc_stat(pid)
    return state == "Z" or (start is not None and started is not None and started != start)


def _start_time(pid: int) -> int | None:
    return _proc_stat(pid)[1]


def _proc_stat(pid: int) -> tuple[str | None, int | None]:
    """(state, start time in clock ticks) of a process from /proc; (None, None) where there is none.

    A process that exited but was not reaped still answers signal 0 (state Z):
    it sends nothing more. A sender orphaned in a container whose first process
    does not reap stays so for good.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return fields[0].decode(), int(fields[19])
    except (OSError, IndexError, ValueError):
        return None, None


def claim(engine: Engine, send_id: int, list_id: int, worker: str, limit: int, *, after: int = 0) -> list[Claimed]:
    """Claim up to `limit` due rows and commit the claim before anything is sent.

    Rows of people who unsubscribed, bounced or were suppressed since the send was
    queued are cancelled here instead of sent. `after` (the highest id this worker
    claimed last time) starts the index scan past the rows already taken, whose
    dead index entries would otherwise be walked by every claim: with it a claim
    costs the same at 1 % and at 99 % of a million rows. Only an `after=0` claim
    that finds nothing means nothing is left (see engine._loop).
    """
    return _claim_in_driver_sql(engine, send_id, list_id, worker, limit, after)


_CANCELLED = dict(state=D.CANCELLED, last_error="no longer subscribed", claimed_by=None)


def _due(send_id: Any, after: Any, now: Any, limit: Any):  # type: ignore[no-untyped-def]
    """The ids of the send's due rows past `after`, in order, locked (skipping rows another claim holds)."""
    return (select(Delivery.id).where(
        Delivery.send_id == send_id,
        Delivery.id > after,
        Delivery.state.in_((D.QUEUED, D.DEFERRED)),  # the partial index's predicate, spelled out
        or_(Delivery.state == D.QUEUED, Delivery.next_attempt_at <= now),
    ).order_by(Delivery.id).limit(limit).with_for_update(skip_locked=True))


def _split(rows: Iterable[Any]) -> tuple[list[Claimed], list[int]]:
    """(the claimed rows that may still be mailed, the ids of those that may not)."""
    claimed, gone = [], []
    for did, sid, email, name, mid, attempts, deadline, ok in rows:
        if not ok:
            gone.append(did)
        else:
            claimed.append(Claimed(did, sid, email, name or "", mid, attempts, deadline))
    return claimed, gone


@dataclass(frozen=True)
class _DriverSql:
    """A statement compiled once for one driver, with the values of its constant binds."""

    text: str
    constants: dict[str, Any]

    @classmethod
    def of(cls, statement: Any, dialect: Any) -> _DriverSql:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        constants = {k: getattr(v, "value", v) for k, v in compiled.params.items()}  # enums as their text
        return cls(str(compiled), constants)

    def run(self, cursor: Any, **values: Any) -> Any:
        return cursor.execute(self.text, {**self.constants, **values})


@dataclass(frozen=True)
class _ClaimSql:
    """One database's claim, recipient read and cancel, and how it binds a list of ids."""

    taken: _DriverSql
    read: _DriverSql
    cancel: _DriverSql
    ids: Callable[[list[int]], Any]


@functools.cache
def _claim_statements(database: str) -> _ClaimSql:
    """The claim's statements, built from the same expressions as ever (`sendable`, the partial
    index's predicate) and compiled once per process. Each bind is given a stand-in value only so
    the statement compiles; `run` always binds the real one. PostgreSQL takes the ids as an array
    (`= ANY`), SQLite as JSON text (`IN (SELECT value FROM json_each(...))`), and SQLite has no
    row locks to skip: its claim holds the database's write lock (BEGIN IMMEDIATE)."""
    now = bindparam("b_now", utcnow(), type_=Delivery.claimed_at.type)
    due = _due(bindparam("b_send", 0), bindparam("b_after", 0), now, bindparam("b_limit", 0))
    values = dict(state=D.CLAIMED, claimed_by=bindparam("b_worker", ""), claimed_at=now, attempts=Delivery.attempts + 1)
    returning = (Delivery.id, Delivery.subscriber_id, Delivery.message_id, Delivery.attempts, Delivery.deadline)
    if database == "postgresql":
        from sqlalchemy.dialects.postgresql.psycopg import dialect

        taken = update(Delivery).where(Delivery.id == any_(func.array(due.scalar_subquery())))
        cancel = update(Delivery).where(Delivery.id == any_(bindparam("b_ids", [0], type_=ARRAY(Integer))))
        read, ids = recipients(bindparam("b_list", 0)), list
        pg = dialect()
        return _ClaimSql(_DriverSql.of(taken.values(**values).returning(*returning), pg), _DriverSql.of(read, pg),
                         _DriverSql.of(cancel.values(**_CANCELLED), pg), ids)
    from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

    lite = sqlite_dialect(paramstyle="named")
    taken = update(Delivery).where(Delivery.id.in_(due.scalar_subquery())).values(**values).returning(*returning)
    cancel = update(Delivery).where(Delivery.id.in_(_json_ids("b_ids"))).values(**_CANCELLED)
    listed = bindparam("b_list", 0)
    read = (select(Subscriber.id, Subscriber.email, Subscriber.name, case((sendable(listed), True), else_=False))
            .outerjoin(Subscription, and_(Subscription.subscriber_id == Subscriber.id, Subscription.list_id == listed))
            .where(Subscriber.id.in_(_json_ids("ids"))))
    return _ClaimSql(_DriverSql.of(taken, lite), _DriverSql.of(read, lite), _DriverSql.of(cancel, lite), json.dumps)


def _json_ids(name: str):  # type: ignore[no-untyped-def]
    """SQLite: the ids bound as one JSON array, as a subquery (one bind however many ids)."""
    return select(func.json_each(bindparam(name, "[]")).table_valued("value").c.value)


def recipients(list_id: Any):  # type: ignore[no-untyped-def]
    """Email, name and `sendable` of the subscribers whose ids are bound as `ids` (PostgreSQL).

    `sendable` is asked per person in a LATERAL subquery with LIMIT 1, which
    PostgreSQL can only run as one probe of uq_subscription (subscriber, list)
    per person, whatever its statistics or a generic plan estimate. Planned from
    statistics, the same question went wrong three ways: an outer join that also
    repeated `subscriber_id = ANY(:ids)` became a bitmap scan of every
    subscription of the list (44 ms a claim at 1 % of 300,000, 11 ms at 99 %);
    without the repeat, a hash join over the whole list on a small one; and a
    correlated EXISTS, once psycopg prepared it, a hashed subplan that read all
    1,000,000 subscriptions for every claim (seconds, with the issue's counter
    lock held: the marks waited).
    """
    ok = (select(literal(True).label("ok")).where(Subscription.subscriber_id == Subscriber.id, sendable(list_id))
          .limit(1).correlate(Subscriber).lateral("recipient_ok"))
    return (select(Subscriber.id, Subscriber.email, Subscriber.name, func.coalesce(ok.c.ok, False))
            .outerjoin(ok, true()).where(Subscriber.id == any_(bindparam("ids", [0], type_=ARRAY(Integer)))))


def _claim_in_driver_sql(engine: Engine, send_id: int, list_id: int, worker: str, limit: int,
                         after: int) -> list[Claimed]:
    """Claim in one UPDATE ... RETURNING, then read the recipients by their ids, in driver SQL on a
    pooled connection, in one transaction.

    Through the ORM the same statements cost about four times their own execution
    in SQLAlchemy's layers (the bulk update's session synchronisation, cache keys,
    result processing): 13 % of a sending process's GIL time on PostgreSQL and 21 %
    on SQLite (`py-spy --gil`), for one claim in 200 messages. PostgreSQL: the old
    way (the ids fetched, then spelled out as 200 binds in the UPDATE and the read)
    cost about 20 ms a claim of 200; SQL that long is past psycopg's query cache, so
    it was split and planned afresh each time. Here the texts never change.
    `= ANY(ARRAY(...))` and `= ANY(:ids)` keep both on the indexes: a join to a CTE
    of 200 rows was planned as hash joins over whole tables on a list of 20,000 (15 ms).
    """
    sql = _claim_statements(engine.dialect.name)
    column = Delivery.__table__.c  # type: ignore[attr-defined]
    bind_time = column.claimed_at.type._cached_bind_processor(engine.dialect) or (lambda value: value)
    read_time = column.deadline.type._cached_result_processor(engine.dialect, None) or (lambda value: value)
    sqlite = engine.dialect.name == "sqlite"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")  # the write lock first, as db.py's Core transactions take it
        sql.taken.run(cursor, b_send=send_id, b_after=after, b_now=bind_time(utcnow()), b_limit=limit, b_worker=worker)
        claimed = cursor.fetchall()
        rows = []
        if claimed:
            sql.read.run(cursor, b_list=list_id, ids=sql.ids([sid for _, sid, *_ in claimed]))
            who = {sid: (email, name, ok) for sid, email, name, ok in cursor.fetchall()}
            gone = (None, None, False)  # a subscriber deleted by hand (no foreign key here): cancelled, not stuck
            for did, sid, mid, attempts, deadline in sorted(claimed):
                email, name, ok = who.get(sid, gone)
                rows.append((did, sid, email, name, mid, attempts, read_time(deadline), ok))
        mailed, stale = _split(rows)
        if stale:
            sql.cancel.run(cursor, b_ids=sql.ids(stale))
        raw.commit()
        return mailed
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


def unclaim(engine: Engine, delivery_ids: list[int]) -> None:
    """Give back rows that were claimed but never handed to the transport (graceful stop)."""
    with session_scope(engine) as session:
        for chunk in _chunks(delivery_ids, 500):
            session.execute(update(Delivery).where(Delivery.id.in_(chunk), Delivery.state == D.CLAIMED)
                            .values(state=D.QUEUED, claimed_by=None, attempts=Delivery.attempts - 1))


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# Outcomes -----------------------------------------------------------------------------------------
