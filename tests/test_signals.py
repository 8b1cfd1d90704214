"""A stop asked for by a signal never deadlocks the process that receives it.

A sending process SIGTERMed while its main thread was inside `Event.wait()`
(the engine polls one every few milliseconds) ran `event.set()` in the handler,
on the lock its own thread held, and hung for good holding its claimed rows;
CI's kill test caught the rows left behind. Here a real process spins on the
same wait while it is sent SIGTERM as fast as it can take them: with the old
handler it hung four runs in five; it must always finish.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SPINNER = textwrap.dedent("""
    import sys, threading, time
    from bulletin.signals import stop_on_signals
    stop = threading.Event()
    stop_on_signals(stop)
    print("ready", flush=True)
    end = time.monotonic() + 2.0  # the storm lasts about half of that
    while time.monotonic() < end:
        stop.wait(0)
        if stop.is_set() and sys.argv[1] == "stop":
            break
    print("stopped" if stop.is_set() else "not stopped", flush=True)
""")


@pytest.mark.parametrize("trial", range(3))
def test_a_storm_of_sigterms_during_event_waits_never_deadlocks_the_receiver(trial: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SPINNER, "spin"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    sent = 0
    while proc.poll() is None and sent < 300:
        proc.send_signal(signal.SIGTERM)
        sent += 1
        time.sleep(0.001)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the process hung after {sent} SIGTERMs: a handler waited on a lock its own thread held")
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out == b"stopped\n"
    assert sent > 10  # the storm really reached it while it waited


def test_one_sigint_stops_the_waiting_process() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SPINNER, "stop"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (0, b"stopped\n"), err.decode()
