"""The ledger writer of a send: one thread that commits the senders' outcomes in groups.

Apart from the engine because it is a subject of its own: the group commit, the
hand-over that lets a mark's round trip overlap the next message while keeping
at most one sent-but-unrecorded message per connection, and the renewal of
the sender's claims (which must run even while the claim loop is in its last
drain). `engine.run_send` starts one per send.
"""

from __future__ import annotations

import logging
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
    """

    def __init__(self, settings: Settings, engine: Engine, send: Send, options: SendOptions, tally: Tally) -> None:
        self.settings, self.engine, self.send, self.options, self.tally = settings, engine, send, options, tally
        self.error: BaseException | None = None
        # One lock, two conditions: a hand-over wakes only the writer, a commit only the senders
        # waiting for one. With one condition every hand-over woke every waiting sender too, to find
        # its commit not yet done and sleep again: 8 % of a sending process's GIL time (py-spy --gil).
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # the writer waits here for outcomes to write
        self._committed_cond = threading.Condition(lock)  # senders wait here for their outcome's commit
        self._pending: list[Outcome] = []
        self._submitted = 0  # outcomes handed over
        self._committed = 0  # outcomes written (in the order they were handed over)
        self._closing = False
        self._sent = SentWriter(engine, flush_wait=settings.ledger_flush_wait)  # used by the writer thread only
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, outcome: Outcome) -> Callable[[], None]:
        """Hand `outcome` to the writer; the returned call blocks until it is committed (or raises)."""
        with self._cond:
            self.raise_if_failed()
            self._pending.append(outcome)
            self._submitted += 1
            mine = self._submitted
            self._cond.notify()
        return lambda: self._wait_for(mine)

    def flush(self) -> None:
        """Wait until everything handed over so far is committed."""
        with self._cond:
            mine = self._submitted
        self._wait_for(mine)

    def _wait_for(self, number: int) -> None:
        with self._cond:
            while self._committed < number and self.error is None:
                self._committed_cond.wait()
            self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise DeliveryError(f"cannot write the ledger: {self.error}")

    def _run(self) -> None:
        renewed = time.monotonic()
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(timeout=RENEW_EVERY)
                if not self._pending and self._closing:
                    return
                batch, self._pending = self._pending, []
            if time.monotonic() - renewed >= RENEW_EVERY:
                self._renew()
                renewed = time.monotonic()
            if not batch:
                continue
            self._write(batch)
            with self._cond:
                self._committed += len(batch)
                self._committed_cond.notify_all()
                if self.error is not None:
                    return

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
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._sent.close()
