"""A read-ahead thread for the bulk writers: the next batch is made while the database writes this one.

On PostgreSQL much of a bulk write's wall time is the server indexing a COPY,
with this process idle on the socket (the GIL is released there). Making the
next batch meanwhile (parsing an import file; reading recipients on a second
connection and signing their Message-IDs) hides most of the rest.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

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
