"""The ledger writer of a send: one thread that commits the senders' outcomes in groups.

Apart from the engine because it is a subject of its own: the group commit, the
hand-over that lets a mark's round trip overlap the next message while keeping
at most one sent-but-unrecorded message per connection, and the renewal of
the sender's claims (which must run even while the claim loop is in its last
drain). `engine.run_send` starts one per send.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery import ledger
from bulletin.delivery.ledger import Outcome
from bulletin.delivery.sent import SentWriter
from bulletin.errors import DeliveryError
from bulletin.logs import log_event
from bulletin.messenger import faults
from bulletin.models import Send, id_of, utcnow

if TYPE_CHECKING:
    from bulletin.delivery.engine import SendOptions, Tally

RENEW_EVERY = 60.0  # seconds between renewals of this sender's claims (the lease is ten minutes)


class Recorder:
    """The ledger writer: a thread that commits every outcome pending when it looks, as one group.

    A sender hands its outcome over (`submit`) and goes on to its next message at
    once; it waits for that outcome's commit only just before the relay takes the
    next message (the transport's `before_commit`, called before the final dot).
    So the mark's round trip to the database overlaps the next message's envelope
    and body, yet at a hard kill there is still at most one sent-but-unrecorded
    message per connection, as when every sender waited for its own commit.

    The hand-over is a `queue.SimpleQueue` and each outcome's commit a lock the
    sender holds until the writer lets it go: both are C, with nothing to wake
    but the one thread that waits. `threading.Condition` (Python code around a
    list of waiter locks) did the same in about a seventh of a sending process's
    GIL time (`py-spy --gil`: notify, notify_all, wait and the lock's enter).
    """

    def __init__(self, settings: Settings, engine: Engine, send: Send, options: SendOptions, tally: Tally) -> None:
        self.settings, self.engine, self.send, self.options, self.tally = settings, engine, send, options, tally
        self.error: BaseException | None = None
        # (outcome, its commit lock), or (None, lock) to be let go once all before it are committed
        self._queue: queue.SimpleQueue[tuple[Outcome | None, threading.Lock | None]] = queue.SimpleQueue()
        self._sent = SentWriter(engine, flush_wait=settings.ledger_flush_wait)  # used by the writer thread only
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, outcome: Outcome) -> Callable[[], None]:
        """Hand `outcome` to the writer; the returned call blocks until it is committed (or raises)."""
        self.raise_if_failed()
        return self._handed(outcome)

    def flush(self) -> None:
        """Wait until everything handed over so far is committed."""
        self._handed(None)()

    def _handed(self, outcome: Outcome | None) -> Callable[[], None]:
        committed = threading.Lock()
        committed.acquire()  # held until the writer has committed `outcome` and all before it
        self._queue.put((outcome, committed))

        def wait() -> None:
            with committed:  # and let go again: a transport may call this more than once
                pass
            self.raise_if_failed()

        return wait

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise DeliveryError(f"cannot write the ledger: {self.error}")

    def _run(self) -> None:
        renewed = time.monotonic()
        closing = False
        while not closing:
            try:
                batch = [self._queue.get(timeout=RENEW_EVERY)]
            except queue.Empty:
                batch = []
            while True:  # everything handed over meanwhile goes in the same commit
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if time.monotonic() - renewed >= RENEW_EVERY:
                self._renew()
                renewed = time.monotonic()
            outcomes = [o for o, _ in batch if o is not None]
            if outcomes and self.error is None:  # after a failure nothing more is written, but every
                self._write(outcomes)  # waiter is still let go (to raise), until `stop`
            for _, committed in batch:
                if committed is None:
                    closing = True
                else:
                    committed.release()

    def _renew(self) -> None:
        """Renew this sender's claims: here, not in the claim loop, because a slow relay can hold the
        loop in its last drain for longer than the lease, and another machine would take the rows."""
        try:
            ledger.renew_claims(self.engine, id_of(self.send), self.options.worker)
        except Exception as exc:  # noqa: BLE001 - the next renewal tries again; the marks matter more
            log_event("bulletin.delivery", "claims.renew_failed", level=logging.WARNING, error=str(exc))

    def _write(self, outcomes: list[Outcome]) -> None:
        try:
            if all(o.ok for o in outcomes):
                self._sent.write([(o.row.delivery_id, o.code) for o in outcomes], utcnow())
            else:
                with session_scope(self.engine) as session:
                    ledger.record_outcomes(session, outcomes, issue_id=int(self.send.issue_id),
                                           list_id=int(self.send.list_id), worker=self.options.worker,
                                           retry_base=self.options.retry_base,
                                           retry_max=self.options.retry_max, settings=self.settings)
        except Exception as exc:  # noqa: BLE001 - surfaced to the sender threads, which stop
            self.error = exc
            return
        for o in outcomes:
            if o.ok:
                self.tally.sent += 1
            elif o.kind == faults.UNKNOWN:
                self.tally.unknown += 1
            elif o.kind == faults.TRANSPORT:
                continue  # back in the queue
            elif o.kind == faults.RECIPIENT or "deadline" in o.detail:
                self.tally.failed += 1
            else:
                self.tally.deferred += 1

    def stop(self) -> None:
        """Commit what is pending, then stop the thread and give its connection back."""
        self._queue.put((None, None))
        self._thread.join()
        self._sent.close()
