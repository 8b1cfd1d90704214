"""The send engine: claim a batch, fill it, hand it to the transport, write the outcome.

Threads, one per transport connection, take messages from a queue; a single
ledger writer thread commits their outcomes in small groups. A sender's next
message is handed over (its final dot) only once its previous outcome is
committed, so after a hard kill at most one sent-but-unrecorded message per
connection exists: those, and only those, are sent twice on resume, with the
same Message-ID.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery import ledger
from bulletin.delivery.breaker import Breaker
from bulletin.delivery.ledger import Claimed, Outcome
from bulletin.delivery.message import ListIdentity, MessageSkeleton, OutgoingMessage, RecipientRow
from bulletin.delivery.recorder import Recorder
from bulletin.delivery.status import send_status
from bulletin.errors import DeliveryError
from bulletin.heap import long_lived_frozen
from bulletin.logs import log_event
from bulletin.messenger.transport import Transport
from bulletin.models import MailingList, Send, id_of
from bulletin.render.compiled import Compiled
from bulletin.statuses import SendStatus


@dataclass
class SendOptions:
    batch: int = 200
    retry_base: float = 60.0  # first retry of a 4xx after this many seconds, doubling each time
    retry_max: float = 3600.0
    linger: float = 0.0  # wait this long for deferred retries before returning (0: leave them to a worker)
    # Stay for rows another process holds until they are sent or given back (`send`, `resume`); a
    # worker leaves them to their holder and goes on to its other due sends instead.
    wait_for_held: bool = True
    worker: str = field(default_factory=ledger.worker_id)


@dataclass
class Tally:
    """Running figures for the progress bar and the summary."""

    total: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    unknown: int = 0
    paused: str | None = None  # why the circuit breaker paused the send, when it did
    held_elsewhere: int = 0  # rows of the send another process holds while this one waits for them
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


ProgressFn = Callable[[Tally], None]


def skeleton_for(engine: Engine, settings: Settings, send: Send, *, test: bool = False) -> MessageSkeleton:
    from bulletin.delivery.issues import compiled_of
    from bulletin.models import IssueRecord

    with session_scope(engine) as session:
        record = session.get(IssueRecord, send.issue_id)
        mlist = session.get(MailingList, send.list_id)
        if record is None or mlist is None:
            raise DeliveryError("the send refers to a missing issue or list", where=f"send #{send.id}")
        return make_skeleton(settings, compiled_of(record), mlist, int(send.issue_id), test=test)


def make_skeleton(settings: Settings, compiled: Compiled, mlist: MailingList, issue_id: int, *,
                  test: bool = False) -> MessageSkeleton:
    identity = ListIdentity(id=id_of(mlist), slug=mlist.slug, name=mlist.name, from_name=mlist.from_name,
                            from_address=mlist.from_address, reply_to=mlist.reply_to,
                            organisation=mlist.organisation or settings.organisation,
                            postal_address=mlist.postal_address or settings.postal_address)
    return MessageSkeleton(settings, compiled, identity, issue_id, test=test)


def run_send(engine: Engine, settings: Settings, send: Send, transport: Transport, *,
             options: SendOptions | None = None, stop: threading.Event | None = None,
             progress: ProgressFn | None = None, tally: Tally | None = None) -> Tally:
    """Send every open row of `send`; returns when none is left, or on stop, pause or cancel."""
    options = options or SendOptions()
    stop = stop or threading.Event()
    tally = tally or Tally()
    skeleton = skeleton_for(engine, settings, send)
    with session_scope(engine) as session:
        ledger.set_status(session, id_of(send), SendStatus.SENDING, only_from=(SendStatus.QUEUED,))
        tally.total += ledger.open_count(session, id_of(send))
    writer = Recorder(settings, engine, send, options, tally)
    breaker = Breaker(engine, id_of(send), settings.max_transport_errors)
    pipe = _Pipeline(engine, skeleton, transport, writer, stop, progress, tally, breaker)
    try:
        with long_lived_frozen():  # the collections that each message's objects set off skip the rest
            _loop(engine, send, pipe, options, stop)
    finally:
        tally.held_elsewhere = 0  # however the loop ended (the holder sent them, a stop): no longer waiting
        pipe.close()
        writer.stop()
    if breaker.reason is not None:
        tally.paused = breaker.reason
    if pipe.errors:
        raise pipe.errors[0]
    writer.raise_if_failed()  # the last outcomes' commit, which no sender waited for
    return tally


class _Pipeline:
    """Sender threads fed from a queue of claimed rows; each sends one row at a time and hands its outcome on.

    The feeding thread claims and fills the next batch while the senders are
    still sending this one, so filling overlaps the network waits; only one
    thread does the CPU-heavy fill, which keeps the GIL hand-offs few.
    """

    def __init__(self, engine: Engine, skeleton: MessageSkeleton, transport: Transport, writer: Recorder,
                 stop: threading.Event, progress: ProgressFn | None, tally: Tally, breaker: Breaker) -> None:
        self.engine, self.skeleton, self.transport, self.writer = engine, skeleton, transport, writer
        self.stop, self.progress, self.tally, self.breaker = stop, progress, tally, breaker
        # A C queue: queue.Queue's Python conditions were a few per cent of a sending process's GIL time.
        # Items: a row and its message; a barrier (see `drain`); None, for a sender to stop.
        self.jobs: queue.SimpleQueue[tuple[Claimed, OutgoingMessage] | threading.Barrier | None] = queue.SimpleQueue()
        self.untouched: list[int] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        n = max(1, int(getattr(transport, "concurrency", 1)))
        self.threads = [threading.Thread(target=self._sender, name=f"sender-{i}", daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def feed(self, rows: list[Claimed]) -> None:
        """Fill the messages here, in one thread, while the senders wait on the network."""
        readers = self._readers(rows)
        for row in rows:
            try:
                msg = self.skeleton.build(RecipientRow(row.subscriber_id, row.email, row.name, row.message_id,
                                                       readers.get(row.subscriber_id)))
            except BaseException as exc:  # noqa: BLE001 - proven impossible at queue time; stop if it happens
                with self._lock:
                    self.errors.append(exc)
                ledger.unclaim(self.engine, [r.delivery_id for r in rows[rows.index(row):]])
                return
            self.jobs.put((row, msg))

    def _readers(self, rows: list[Claimed]) -> dict[int, Any]:
        """Readers of the batch, in one query, when the issue has targeted blocks; else nothing to load."""
        if not self.skeleton.compiled.targeted:
            return {}
        from bulletin.audience.targeting import readers_for

        with session_scope(self.engine) as session:
            return readers_for(session, [r.subscriber_id for r in rows], self.skeleton.list.id)

    @property
    def waiting(self) -> int:
        return self.jobs.qsize()

    def show_held(self, rows: int) -> None:
        """Tell the progress bar this sender waits for `rows` another process holds (0: no longer):
        otherwise a send whose last rows are held elsewhere looks hung, its bar still for minutes."""
        self.tally.held_elsewhere = rows
        if self.progress is not None:
            self.progress(self.tally)

    def drain(self) -> None:
        """Wait until every fed row was sent or set aside, and its outcome committed.

        One barrier item per sender: each sender takes exactly one (it waits at the
        barrier until all have theirs), and only once it has finished the row it took
        before; the queue is first in, first out, so every row fed earlier is done.
        """
        barrier = threading.Barrier(len(self.threads) + 1)
        for _ in self.threads:
            self.jobs.put(barrier)
        try:
            barrier.wait()
        except BaseException:
            barrier.abort()  # interrupted here: the senders waiting at it go on (and `close` reaches them)
            raise
        self.writer.flush()

    def _sender(self) -> None:
        committed: Callable[[], None] | None = None  # waits for this thread's last outcome
        while True:
            item = self.jobs.get()
            if item is None:
                return
            if isinstance(item, threading.Barrier):
                try:
                    item.wait()
                except threading.BrokenBarrierError:
                    pass  # `drain` gave up waiting: nothing to hold this sender for
                continue
            if self.stop.is_set() or self.errors or self.breaker.tripped.is_set():
                with self._lock:
                    self.untouched.append(item[0].delivery_id)
                continue
            committed = self._one(*item, committed)

    def _one(self, row: Claimed, msg: OutgoingMessage,
             committed: Callable[[], None] | None) -> Callable[[], None] | None:
        """Send one message; the relay takes it only once this thread's previous outcome is committed."""
        try:
            result = self.transport.send(msg.envelope_from, [msg.recipient], msg.data, msg.message_id,
                                         before_commit=committed, dot_free=msg.dot_free)
            done = self.writer.submit(Outcome(row, result.ok, result.code, result.detail, result.permanent,
                                              result.kind, result.stage, "" if result.ok else result.reason))
            self.breaker.observe(result)
        except BaseException as exc:  # noqa: BLE001 - the row stays claimed: it may have left
            with self._lock:
                self.errors.append(exc)
            return None
        if self.progress is not None:
            try:
                self.progress(self.tally)
            except BaseException as exc:  # noqa: BLE001 - a sender must not die: `drain` waits for each one
                with self._lock:
                    self.errors.append(exc)
        return done

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()
        if self.untouched:
            ledger.unclaim(self.engine, self.untouched)
            self.untouched = []


def _loop(engine: Engine, send: Send, pipe: _Pipeline, options: SendOptions, stop: threading.Event) -> None:
    send_id, list_id = id_of(send), int(send.list_id)
    limit = max(len(pipe.threads), options.batch)
    deadline = time.monotonic() + options.linger
    forward = _Forward()
    waiting = False  # for rows another process holds (logged once)
    while not stop.is_set() and not pipe.errors and not pipe.breaker.tripped.is_set():
        if pipe.waiting > limit // 2:
            stop.wait(0.005)  # the next claim goes in while half a batch is still queued
            continue
        with session_scope(engine) as session:
            if send_status(session, send_id) not in SendStatus.RUNNABLE:
                return
        rows = forward.claim(engine, send_id, list_id, options.worker, limit)
        if rows:
            t = pipe.tally
            log_event("bulletin.delivery", "send.batch", send_id=send_id, issue_id=send.issue_id,
                      worker=options.worker, claimed=len(rows), sent_so_far=t.sent,
                      deferred_so_far=t.deferred, failed_so_far=t.failed)
            pipe.feed(rows)
            if t.held_elsewhere:
                pipe.show_held(0)  # after the feed: a progress callback that fails leaves no batch unfed
            continue
        pipe.drain()  # outcomes of rows in flight decide whether anything is left
        with session_scope(engine) as session:
            if ledger.open_count(session, send_id) == 0:
                ledger.set_status(session, send_id, SendStatus.DONE, only_from=SendStatus.RUNNABLE)
                return
            if ledger.queued_count(session, send_id):
                continue  # put back after a relay's refusal: claimable now; the breaker bounds this
            held = ledger.claimants(session, send_id)  # ours are drained: these are other processes' (or leftovers)
            retry_at = ledger.next_retry_at(session, send_id)
        if held and options.wait_for_held:
            if not waiting:
                log_event("bulletin.delivery", "send.waiting", send_id=send_id, worker=options.worker,
                          held_elsewhere=sum(held.values()), held_by=held)
                waiting = True
            pipe.show_held(sum(held.values()))
            _wait_for_claims(engine, send_id, options.worker, stop)
            continue
        wait = (retry_at.timestamp() - time.time()) if retry_at else 0.5
        if time.monotonic() + max(wait, 0) > deadline:
            return
        stop.wait(min(max(wait, 0.01), 1.0))


def _wait_for_claims(engine: Engine, send_id: int, worker: str, stop: threading.Event) -> None:
    """Rows another process claimed are waited for, never left: it sends them, or gives them back
    as it stops, or dies and its claims are released here (at once on this host, after the lease
    elsewhere). Returning instead let a `resume` started while the killed run's second process was
    still stopping (or hung: see bulletin/signals.py) exit 0 with that process's batch of 181 rows
    still claimed, and nobody left to send them. This sender's own claims are all drained by
    now, so any left under its id are an earlier failed run's in this process: released too."""
    if not ledger.release_stale_claims(engine, send_id, mine=worker):
        stop.wait(0.25)


class _Forward:
    """Claims move forward through the ledger from the last id claimed, and go back to the start
    when that finds nothing or every `rescan` seconds, so rows given back (a stopped worker's
    unsent rows, stale claims) and deferred rows coming due are never left behind."""

    def __init__(self, rescan: float = 30.0) -> None:
        self.after, self.rescan, self.scanned = 0, rescan, time.monotonic()

    def claim(self, engine: Engine, send_id: int, list_id: int, worker: str, limit: int) -> list[Claimed]:
        if self.after and time.monotonic() - self.scanned > self.rescan:
            self.after = 0
        rows = ledger.claim(engine, send_id, list_id, worker, limit, after=self.after)
        if not rows and self.after:
            self.after = 0
            rows = ledger.claim(engine, send_id, list_id, worker, limit)
        if self.after == 0:
            self.scanned = time.monotonic()
        self.after = rows[-1].delivery_id if rows else 0
        return rows
