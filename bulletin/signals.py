"""SIGTERM and SIGINT as a request to stop, made safely from inside a signal handler.

Python runs a handler in the main thread between two bytecodes, which may be
inside that same `threading.Event`'s `wait()` or `set()`, holding its
condition's lock. A handler that calls `event.set()` there waits for a lock its
own thread holds, for ever: a sending process told to stop (by its parent's
death, by a kill of the whole run) hung instead, holding its claimed rows, and
a later `resume` could neither take them nor know they would never come. The
handler here only starts a short thread, which sets the event once the main
thread lets go.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["request_stop", "stop_on_signals", "stopping_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def request_stop(stop: threading.Event, then: Callable[[], None] | None = None) -> None:
    """Set `stop` (and run `then`) from a thread of its own: callable from a signal handler."""
    def run() -> None:
        stop.set()
        if then is not None:
            then()

    threading.Thread(target=run, name="stop-request", daemon=True).start()


def stop_on_signals(stop: threading.Event, then: Callable[[], None] | None = None) -> dict[int, Any]:
    """Install handlers that ask `stop` to be set; returns the handlers they replace."""
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, lambda _signum, _frame: request_stop(stop, then))
    return previous


@contextmanager
def stopping_on_signals(then: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT for the length of the block; the old handlers come back after."""
    stop = threading.Event()
    previous = stop_on_signals(stop, then)
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
