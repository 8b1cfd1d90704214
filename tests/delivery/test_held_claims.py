"""Rows another process has claimed: a send waits for them and never returns leaving them behind.

CI caught it: a `resume` started while the killed run's forked second process was
still stopping found nothing to claim (that process's batch was still claimed by
it), returned 0, and the batch went back to the queue after it with nobody to
send it. The claimants here are real processes: a live `sleep`, a zombie, and a
child forked after its parent was already gone.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import ledger, service
from bulletin.delivery.claims import release_stale_claims
from bulletin.delivery.engine import SendOptions
from bulletin.delivery.processes import _child
from bulletin.models import Delivery, Send
from bulletin.statuses import DeliveryState, SendStatus
from tests.delivery.conftest import add_list, add_subscribers, make_compiled, smtp_settings


def _states(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        states = session.exec(select(Delivery.state)).all()
    return {s: states.count(s) for s in set(states)}


def _wait_until(predicate, what: str, limit: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, what
        time.sleep(0.02)


def test_a_send_waits_for_rows_a_live_process_holds_and_sends_them_once_given_back(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=2)
    emails = add_subscribers(engine, add_list(engine), 60)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    holder = subprocess.Popen(["sleep", "300"])
    try:
        other = f"{socket.gethostname()}:{holder.pid}"
        held = ledger.claim(engine, queued.send_id, add_list_id(engine), other, 15)
        assert len(held) == 15
        result: dict[str, object] = {}
        thread = threading.Thread(target=lambda: result.setdefault(
            "tally", service.send_queued(engine, s, [queued.send_id], options=SendOptions(linger=0))))
        thread.start()
        _wait_until(lambda: sink.count() == 45, "the rows nobody held are sent")
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the send returned while another process still held 15 of its rows"
        assert _states(engine) == {DeliveryState.SENT: 45, DeliveryState.CLAIMED: 15}
        ledger.unclaim(engine, [r.delivery_id for r in held])  # the holder stops and gives them back
        thread.join(timeout=60)
        assert not thread.is_alive()
    finally:
        holder.kill()
        holder.wait()
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}
    assert _states(engine) == {DeliveryState.SENT: 60}
    with session_scope(engine) as session:
        assert session.get(Send, queued.send_id).status == SendStatus.DONE


def test_a_send_takes_over_the_rows_of_a_holder_that_dies_while_it_waits(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=2)
    emails = add_subscribers(engine, add_list(engine), 30)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    holder = subprocess.Popen(["sleep", "300"])
    ledger.claim(engine, queued.send_id, add_list_id(engine), f"{socket.gethostname()}:{holder.pid}", 10)
    thread = threading.Thread(target=service.send_queued, args=(engine, s, [queued.send_id]))
    thread.start()
    try:
        _wait_until(lambda: sink.count() == 20, "the free rows are sent")
        thread.join(timeout=1.0)
        assert thread.is_alive()
    finally:
        holder.kill()  # dies holding its claims, never gives them back
        holder.wait()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}
    assert _states(engine) == {DeliveryState.SENT: 30}


def test_claims_of_a_zombie_are_released(settings, engine):  # type: ignore[no-untyped-def]
    """An exited, unreaped process still answers signal 0; its claims are released all the same."""
    add_subscribers(engine, add_list(engine), 5)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    proc = subprocess.Popen(["true"])
    _wait_until(lambda: _proc_state(proc.pid) == "Z", "the child exits and stays unreaped")
    try:
        os.kill(proc.pid, 0)  # the reason a liveness check alone is fooled
        ledger.claim(engine, queued.send_id, add_list_id(engine), f"{socket.gethostname()}:{proc.pid}", 5)
        assert release_stale_claims(engine, queued.send_id) == 5
        assert _states(engine) == {DeliveryState.QUEUED: 5}
    finally:
        proc.wait()


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def _record_call(_engine, _settings, _send_ids, **_kw):  # type: ignore[no-untyped-def]
    Path(os.environ["HELD_CLAIMS_MARK"]).write_text("sent")


def test_a_child_forked_after_its_parent_died_sends_nothing(settings, engine, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Killed between the fork and the child's prctl, the parent cannot pass its death on: the child
    would send the issue alone, beside the next `resume`. It sees the parent gone and stops."""
    mark = tmp_path / "mark"
    monkeypatch.setenv("HELD_CLAIMS_MARK", str(mark))
    fork = multiprocessing.get_context("fork")
    for parent, sends in ((os.getpid(), True), (os.getpid() + 4_000_000, False)):
        child = fork.Process(target=_child, args=(engine, settings, [1], _record_call, None, parent))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        assert mark.exists() is sends
        mark.unlink(missing_ok=True)


def add_list_id(engine) -> int:  # type: ignore[no-untyped-def]
    from bulletin.models import MailingList

    with session_scope(engine) as session:
        return int(session.exec(select(MailingList.id)).one())
