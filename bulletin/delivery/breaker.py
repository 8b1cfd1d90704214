"""The circuit breaker: a relay that refuses us pauses the send instead of burning the list.

listmonk pauses a campaign after `max_send_errors`; here the count is of
consecutive *transport* faults only (a refused recipient is about that person,
not the relay), an authentication failure trips it at once, and the reason and
the failing stage are stored on the send for `bulletin status`. Each process
counts its own run; the pause itself is in the database, so every process and
worker sharing the send stops at its next claim.
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from bulletin.db import session_scope
from bulletin.delivery import ledger
from bulletin.logs import log_event
from bulletin.messenger import SendResult, faults


class Breaker:
    """Counts consecutive transport faults of one send; `tripped` is set once it paused the send."""

    def __init__(self, engine: Engine, send_id: int, limit: int) -> None:
        self.engine, self.send_id, self.limit = engine, send_id, max(1, limit)
        self.tripped = threading.Event()
        self.reason: str | None = None
        self._run = 0
        self._lock = threading.Lock()

    def observe(self, result: SendResult) -> None:
        """Feed every outcome in; trips after `limit` transport faults in a row, or one fatal one."""
        if result.ok or result.kind != faults.TRANSPORT:
            with self._lock:
                self._run = 0
            return
        with self._lock:
            self._run += 1
            trip = result.fatal or result.stage == faults.AUTH or self._run >= self.limit
            if not trip or self.tripped.is_set():
                return
            self.reason = result.reason
            self.tripped.set()
        with session_scope(self.engine) as session:
            ledger.pause_send(session, self.send_id, result.reason, result.stage)
        log_event("bulletin.delivery", "send.paused", send_id=self.send_id, stage=result.stage,
                  reason=result.reason, consecutive=self._run)
