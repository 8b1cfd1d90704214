"""Several sending processes on one machine, sharing the ledger as workers on several machines do.

One Python process fills and sends on one core; a 2-core machine sends
about half as fast as it could. The extra processes are forked after the send
is queued and claim batches from the same ledger (BEGIN IMMEDIATE on SQLite,
SKIP LOCKED on PostgreSQL), so every guarantee of the ledger holds unchanged:
a row is sent by whoever claimed it, and a crash leaves at most one unrecorded
message per connection. The children stop with the parent: a signal to the
parent is passed on, and the kernel sends them SIGTERM if the parent dies.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.db import make_engine, session_scope
from bulletin.delivery import ledger
from bulletin.delivery.engine import ProgressFn, SendOptions, Tally
from bulletin.delivery.readout import state_counts
from bulletin.errors import DeliveryError
from bulletin.heap import long_lived_frozen
from bulletin.logs import log_event
from bulletin.models import Send
from bulletin.signals import stop_on_signals
from bulletin.sqlread import SessionReader
from bulletin.statuses import DeliveryState

_PR_SET_PDEATHSIG = 1

SendFn = Callable[..., Tally]


def processes_for(settings: Settings, processes: int) -> int:
    """At most one process per SMTP connection: each process opens at least one, so `--processes 8`
    with `smtp_connections = 4` had the relay see eight (a relay that limits a client's connections
    refuses the rest). The Maildir outbox opens none, so it keeps what was asked."""
    if settings.transport != "smtp" or processes <= settings.smtp_connections:
        return processes
    log_event("bulletin.delivery", "send.processes_capped", level=logging.WARNING, asked=processes,
              processes=settings.smtp_connections,
              reason="more sending processes than smtp_connections; one process per connection")
    return settings.smtp_connections


def split_connections(settings: Settings, processes: int) -> Settings:
    """Each process gets its share of the connections and of `smtp_rate`, so the relay sees the
    configured number and rate (each process paced its own, so two sent at twice the rate)."""
    per = max(1, settings.smtp_connections // processes)
    return settings.model_copy(update={"smtp_connections": per, "smtp_rate": settings.smtp_rate / processes})


def send_in_processes(engine: Engine, settings: Settings, send_ids: list[int], send: SendFn, *, processes: int,
                      options: SendOptions | None, stop: threading.Event | None,
                      progress: ProgressFn | None) -> Tally:
    """Fork `processes - 1` helpers, send here too, wait for all; the tally is read back from the ledger.

    The objects alive before the send are frozen once, here, before the fork (as
    the gc module's documentation advises for fork without exec): a child then
    starts its send already frozen, instead of running its own full collection
    first, which wrote to every inherited object's header and so copied every
    page of the parent's heap: about 180 ms at the start of each child's send.
    """
    shared = split_connections(settings, processes)
    fork = multiprocessing.get_context("fork")
    parent = os.getpid()
    children = [fork.Process(target=_child, args=(engine, shared, send_ids, send, options, parent), daemon=False)
                for _ in range(processes - 1)]
    with long_lived_frozen():
        started = time.monotonic()
        failed = True
        try:
            _start(children)
            send(engine, shared, send_ids, options=options, stop=stop,
                 progress=_from_ledger(engine, send_ids, progress, started))
            failed = False
        finally:
            # Stopped, failed to fork, or failed itself (maybe holding claims it sent but could not
            # record, which the helpers would wait for while this process waits in join()): stop them.
            forked = [child for child in children if child.pid is not None]
            if failed or len(forked) < len(children) or (stop is not None and stop.is_set()):
                for child in forked:
                    if child.is_alive():
                        child.terminate()  # SIGTERM: it finishes what is in flight and gives back its claims
            for child in forked:
                child.join()
    return ledger_tally(engine, send_ids, started)


def _start(children: list[multiprocessing.process.BaseProcess]) -> None:
    """Fork each helper; when one cannot be forked, the caller stops those that were (they give back
    their claims on SIGTERM) and the send can be resumed."""
    for number, child in enumerate(children, start=2):
        try:
            child.start()
        except OSError as exc:
            raise DeliveryError(f"cannot start sending process {number} of {len(children) + 1}: {exc}; "
                                "the send is stopped and can be resumed (`bulletin resume`), "
                                "or use fewer processes (setting 'send_processes')") from None


def ledger_tally(engine: Engine, send_ids: list[int], started: float) -> Tally:
    tally = Tally(started=started)
    with session_scope(engine) as session:
        for send_id in send_ids:
            send = session.get(Send, send_id)
            if send is None:
                continue
            counts = state_counts(SessionReader(session), int(send.issue_id), send_id)
            tally.total += sum(counts.values()) - counts[DeliveryState.CANCELLED]
            tally.sent += counts[DeliveryState.SENT]
            tally.deferred += counts[DeliveryState.DEFERRED]
            tally.failed += counts[DeliveryState.FAILED]
            tally.unknown += counts.get(DeliveryState.UNKNOWN, 0)
    return tally


def _from_ledger(engine: Engine, send_ids: list[int], progress: ProgressFn | None,
                 started: float) -> ProgressFn | None:
    """The progress bar shows every process's work: the ledger is read at most twice a second."""
    if progress is None:
        return None
    last = [0.0]

    def update(own: Tally) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            tally = ledger_tally(engine, send_ids, started)
            tally.held_elsewhere = own.held_elsewhere  # what this process waits for, the ledger cannot say
            progress(tally)

    return update


def _child(inherited: Engine, settings: Settings, send_ids: list[int], send: SendFn,
           options: SendOptions | None, parent: int) -> None:
    # Its own handlers first: until then a signal goes to the parent's, which sets the parent's event
    # (this process's copy, which nobody here reads), and the prctl below makes one arrive.
    stop = threading.Event()
    stop_on_signals(stop)
    # The parent's pooled connections are the parent's: forget them without closing their sockets.
    inherited.dispose(close=False)
    if not _die_with_parent(parent):
        return
    engine = make_engine(settings.effective_database_url, upgrade=False, address_key=settings.address_key)
    # Its own worker id (host:pid), so its claims are released if this process, not the parent, dies.
    options = replace(options or SendOptions(), worker=ledger.worker_id())
    try:
        send(engine, settings, send_ids, options=options, stop=stop)
    finally:
        engine.dispose()


def _die_with_parent(parent: int) -> bool:
    """Linux: SIGTERM this process when the parent dies, even by SIGKILL (no orphaned senders).

    False when the parent is already gone: killed between the fork and here, it
    can no longer pass the signal on, and the child would send the issue alone.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    return os.getppid() == parent
