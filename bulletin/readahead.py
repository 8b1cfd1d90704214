"""A read-ahead thread for the bulk writers: the next batch is made while the database writes this one.

On PostgreSQL much of a bulk write's wall time is the server indexing a COPY,
with this process idle on the socket (the GIL is released there). Making the
next batch meanwhile (parsing an import file; reading recipients on a second
connection and signing their Message-IDs) hides most of the rest.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

from bulletin.heap import long_lived_frozen

T = TypeVar("T")


def prefetched(batches: Iterator[T]) -> Iterator[T]:
    """Yield `batches`, each made in a thread while the caller handles the one before.

    At most one batch waits, so memory stays flat. An error while making a batch
    surfaces here, in the caller's thread, after the batches before it. When the
    caller stops early (or fails), the thread stops and `batches` is closed in it,
    so a generator holding a connection or a file gives it back.
    """
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand(kind: str, item: Any) -> bool:
        """Put one item in the queue unless the caller stopped listening (then it never would be taken)."""
        while not stop.is_set():
            try:
                ahead.put((kind, item), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not hand("batch", batch):
                    return
            hand("done", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as is
            hand("error", exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ahead.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


SWITCH_INTERVAL = 0.0005  # seconds; the interpreter's default is 0.005


@contextlib.contextmanager
def reading_ahead() -> Iterator[None]:
    """Around a loop over `prefetched`: keep the GIL from slowing the caller's round trips.

    The caller holds the GIL only in short bursts between waits on the server, and each
    time it wakes it must wait for the maker to give the GIL up: 5 ms by default, a
    dozen times a batch, so the server sat idle for a fifth of a 200,000-row import.
    Half a millisecond cuts that tenfold. And the batches' many small objects set off
    full collections that walked every object alive since start-up (the ORM's classes,
    the modules) each time: those are frozen out of the collector meanwhile (see
    bulletin.heap). Together: a 200,000-row import on PostgreSQL 20.1 s -> 16.0 s.

    A `with` block of the caller's, not part of `prefetched`: a generator that is never
    finished or closed (one kept alive by an exception's traceback) would otherwise
    leave the process with the shorter interval and its objects frozen for good.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        with long_lived_frozen():
            yield
    finally:
        sys.setswitchinterval(interval)
