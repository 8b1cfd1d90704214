"""The send engine: claim a batch, fill it, hand it to the transport, write the outcome.

Threads, one per transport connection, take messages from a queue; a single
ledger writer commits their outcomes in small groups. A sender thread waits for
its outcome to be committed before it takes the next message, so after a hard
kill at most one sent-but-unrecorded message per connection exists: those, and
only those, are sent twice on resume, with the same Message-ID.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery import ledger
from bulletin.delivery.ledger import Claimed, Outcome, SendStatus
from bulletin.delivery.message import ListIdentity, MessageSkeleton, OutgoingMessage, RecipientRow
from bulletin.delivery.transport import Transport
from bulletin.errors import DeliveryError
from bulletin.models import MailingList, Send, utcnow
from bulletin.render.compiled import Compiled


@dataclass
class SendOptions:
    batch: int = 500
    retry_base: float = 60.0  # first retry of a 4xx after this many seconds, doubling each time
    retry_max: float = 3600.0
    linger: float = 0.0  # wait this long for deferred retries before returning (0: leave them to a worker)
    worker: str = field(default_factory=ledger.worker_id)


@dataclass
class Tally:
    """Running figures for the progress bar and the summary."""

    total: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


ProgressFn = Callable[[Tally], None]


def skeleton_for(settings: Settings, engine: Engine, send: Send, *, test: bool = False) -> MessageSkeleton:
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
    identity = ListIdentity(id=int(mlist.id or 0), slug=mlist.slug, name=mlist.name, from_name=mlist.from_name,
                            from_address=mlist.from_address, reply_to=mlist.reply_to)
    return MessageSkeleton(settings, compiled, identity, issue_id, test=test)


class _Writer(threading.Thread):
    """The one thread that writes outcomes: groups whatever is pending into one transaction."""

    def __init__(self, engine: Engine, send: Send, options: SendOptions, tally: Tally) -> None:
        super().__init__(name="ledger-writer", daemon=True)
        self.engine, self.send, self.options, self.tally = engine, send, options, tally
        self.inbox: queue.Queue[tuple[Outcome, threading.Event] | None] = queue.Queue()
        self.error: BaseException | None = None
        self._conn: Connection | None = None

    def record(self, outcome: Outcome) -> None:
        done = threading.Event()
        self.inbox.put((outcome, done))
        done.wait()
        if self.error is not None:
            raise DeliveryError(f"cannot write the ledger: {self.error}")

    def run(self) -> None:
        # One connection for the whole run: no pool check-out per group on the hot path.
        with self.engine.connect() as conn:
            self._conn = conn
            self._serve()

    def _serve(self) -> None:
        while True:
            item = self.inbox.get()
            if item is None:
                return
            items = [item]
            while True:
                try:
                    nxt = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.inbox.put(None)
                    break
                items.append(nxt)
            self._write(items)

    def _write(self, items: list[tuple[Outcome, threading.Event]]) -> None:
        outcomes = [o for o, _ in items]
        try:
            if all(o.ok for o in outcomes):
                with self._conn.begin():
                    ledger.mark_sent(self._conn, [(o.row.delivery_id, o.code) for o in outcomes], utcnow())
            else:
                with session_scope(self.engine) as session:
                        ledger.record_outcomes(session, outcomes, issue_id=int(self.send.issue_id),
                                           list_id=int(self.send.list_id), worker=self.options.worker,
                                           retry_base=self.options.retry_base,
                                           retry_max=self.options.retry_max)
        except Exception as exc:  # noqa: BLE001 - surfaced to the sender threads, which stop
            self.error = exc
        else:
            for o in outcomes:
                if o.ok:
                    self.tally.sent += 1
                elif o.permanent or "deadline" in o.detail:
                    self.tally.failed += 1
                else:
                    self.tally.deferred += 1
        for _, done in items:
            done.set()

    def stop(self) -> None:
        self.inbox.put(None)
        self.join()


def run_send(settings: Settings, engine: Engine, send: Send, transport: Transport, *,
             options: SendOptions | None = None, stop: threading.Event | None = None,
             progress: ProgressFn | None = None, tally: Tally | None = None) -> Tally:
    """Send every open row of `send`; returns when none is left, or on stop, pause or cancel."""
    options = options or SendOptions()
    stop = stop or threading.Event()
    tally = tally or Tally()
    skeleton = skeleton_for(settings, engine, send)
    with session_scope(engine) as session:
        ledger.set_status(session, int(send.id or 0), SendStatus.SENDING, only_from=(SendStatus.QUEUED,))
        tally.total += ledger.open_count(session, int(send.id or 0))
    writer = _Writer(engine, send, options, tally)
    writer.start()
    try:
        _loop(engine, send, skeleton, transport, writer, options, stop, progress, tally)
    finally:
        writer.stop()
    return tally


def _loop(engine: Engine, send: Send, skeleton: MessageSkeleton, transport: Transport, writer: _Writer,
          options: SendOptions, stop: threading.Event, progress: ProgressFn | None, tally: Tally) -> None:
    send_id, list_id = int(send.id or 0), int(send.list_id)
    threads = max(1, int(getattr(transport, "concurrency", 1)))
    limit = max(threads, options.batch)
    deadline = time.monotonic() + options.linger
    while not stop.is_set():
        with session_scope(engine) as session:
            if ledger.send_status(session, send_id) not in SendStatus.RUNNABLE:
                return
        rows = ledger.claim(engine, send_id, list_id, options.worker, limit)
        if rows:
            _send_batch(engine, skeleton, rows, transport, writer, threads, stop, progress, tally)
            continue
        with session_scope(engine) as session:
            if ledger.open_count(session, send_id) == 0:
                ledger.set_status(session, send_id, SendStatus.DONE, only_from=SendStatus.RUNNABLE)
                return
            retry_at = ledger.next_retry_at(session, send_id)
        wait = (retry_at.timestamp() - time.time()) if retry_at else 0.5
        if time.monotonic() + max(wait, 0) > deadline:
            return
        stop.wait(min(max(wait, 0.01), 1.0))


def _send_batch(engine: Engine, skeleton: MessageSkeleton, rows: list[Claimed], transport: Transport,
                writer: _Writer, threads: int, stop: threading.Event, progress: ProgressFn | None,
                tally: Tally) -> None:
    try:
        work: list[tuple[Claimed, OutgoingMessage]] = [
            (r, skeleton.build(RecipientRow(r.subscriber_id, r.email, r.name))) for r in rows]
    except DeliveryError:
        ledger.unclaim(engine, [r.delivery_id for r in rows])
        raise
    jobs: queue.SimpleQueue[tuple[Claimed, OutgoingMessage]] = queue.SimpleQueue()
    for item in work:
        jobs.put(item)
    untouched: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sender() -> None:
        while True:
            try:
                row, msg = jobs.get_nowait()
            except queue.Empty:
                return
            if stop.is_set() or errors:
                with lock:
                    untouched.append(row.delivery_id)
                continue
            try:
                result = transport.send(msg.envelope_from, [msg.recipient], msg.data, msg.message_id)
                writer.record(Outcome(row, result.ok, result.code, result.detail, result.permanent))
            except BaseException as exc:  # noqa: BLE001 - stop the batch, re-raised below
                with lock:
                    errors.append(exc)
                return
            if progress is not None:
                progress(tally)

    pool = [threading.Thread(target=sender, name=f"sender-{i}", daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    while True:  # rows no thread got to, because every sender stopped on an error
        try:
            untouched.append(jobs.get_nowait()[0].delivery_id)
        except queue.Empty:
            break
    if untouched:
        ledger.unclaim(engine, untouched)
    if errors:
        raise errors[0]
