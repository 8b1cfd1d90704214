"""Rows another process has claimed: a send waits for them and never returns leaving them behind.

CI caught it: a `resume` started while the killed run's forked second process was
still stopping found nothing to claim (that process's batch was still claimed by
it), returned 0, and the batch went back to the queue after it with nobody to
send it. The claimants here are real processes: a live `sleep`, a zombie, and a
child forked after its parent was already gone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text, update
from sqlmodel import select

from bulletin.cli.send_cmd import _doing
from bulletin.db import session_scope
from bulletin.delivery import claims, ledger, service
from bulletin.delivery.claims import release_stale_claims
from bulletin.delivery.engine import SendOptions, Tally
from bulletin.delivery.processes import _child
from bulletin.errors import DeliveryError
from bulletin.models import Delivery, MailingList, Send, utcnow
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


class _Events(logging.Handler):
    """The `log_event` records of one logger, whatever other tests did to logging's configuration."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.INFO)
        self.logger, self.events = logging.getLogger(name), []  # type: ignore[var-annotated]

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(getattr(record, "bulletin_event", {}))

    def __enter__(self) -> _Events:
        self.level_before = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_before)


def test_a_send_waits_for_rows_a_live_process_holds_and_sends_them_once_given_back(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=2)
    emails = add_subscribers(engine, add_list(engine), 60)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    holder = subprocess.Popen(["sleep", "300"])
    log = _Events("bulletin.delivery").__enter__()
    try:
        other = f"{socket.gethostname()}:{holder.pid}"
        held = ledger.claim(engine, queued.send_id, _list_id(engine), other, 15)
        assert len(held) == 15
        result: dict[str, object] = {}
        shown: list[int] = []  # what the progress bar was told this send waits for
        thread = threading.Thread(target=lambda: result.setdefault(
            "tally", service.send_queued(engine, s, [queued.send_id], options=SendOptions(linger=0),
                                         progress=lambda t: shown.append(t.held_elsewhere))))
        thread.start()
        _wait_until(lambda: sink.count() == 45, "the rows nobody held are sent")
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the send returned while another process still held 15 of its rows"
        assert _states(engine) == {DeliveryState.SENT: 45, DeliveryState.CLAIMED: 15}
        waiting = [e for e in log.events if e.get("event") == "send.waiting"]
        assert len(waiting) == 1 and waiting[0]["held_elsewhere"] == 15  # said once, naming the holder
        assert other in str(waiting[0]["held_by"])
        _wait_until(lambda: 15 in shown, "the progress bar is told the send waits for 15 rows held elsewhere")
        assert _doing(Tally(held_elsewhere=15)).startswith("waiting for 15 row(s) another process holds")
        ledger.unclaim(engine, [r.delivery_id for r in held])  # the holder stops and gives them back
        thread.join(timeout=60)
        assert not thread.is_alive()
    finally:
        log.__exit__()
        holder.kill()
        holder.wait()
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}
    assert _states(engine) == {DeliveryState.SENT: 60}
    assert shown[-1] == 0, "once the rows are given back and sent, the bar no longer says it waits"
    with session_scope(engine) as session:
        assert session.get(Send, queued.send_id).status == SendStatus.DONE


def test_a_send_takes_over_the_rows_of_a_holder_that_dies_while_it_waits(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=2)
    emails = add_subscribers(engine, add_list(engine), 30)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    holder = subprocess.Popen(["sleep", "300"])
    ledger.claim(engine, queued.send_id, _list_id(engine), f"{socket.gethostname()}:{holder.pid}", 10)
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
        ledger.claim(engine, queued.send_id, _list_id(engine), f"{socket.gethostname()}:{proc.pid}", 5)
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


def _list_id(engine) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return int(session.exec(select(MailingList.id)).first())


def _claimed_by(engine, worker: str) -> list[int]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return list(session.exec(select(Delivery.id).where(Delivery.state == DeliveryState.CLAIMED,
                                                           Delivery.claimed_by == worker)).all())


def _in_thread(fn) -> tuple[threading.Thread, dict[str, object]]:  # type: ignore[no-untyped-def]
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _fail_marks_of(engine, worker: str) -> None:  # type: ignore[no-untyped-def]
    """A real database error (as a full disk or a dropped connection gives) on every 'sent' mark of
    rows `worker` claimed: only that process's ledger writer fails."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(
                "CREATE FUNCTION review_fail() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.state::text = 'sent' AND OLD.claimed_by = '{worker}' THEN "
                "RAISE EXCEPTION 'could not write (simulated disk full)'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"))
            conn.execute(text("CREATE TRIGGER review_fail BEFORE UPDATE ON delivery FOR EACH ROW "
                              "EXECUTE FUNCTION review_fail()"))
        else:
            conn.execute(text(
                "CREATE TRIGGER review_fail BEFORE UPDATE OF state ON delivery "
                f"WHEN NEW.state = 'sent' AND OLD.claimed_by = '{worker}' "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END"))


def _drop_fail(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS review_fail" +
                          (" ON delivery" if engine.dialect.name == "postgresql" else "")))
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP FUNCTION IF EXISTS review_fail()"))


def test_a_parent_that_fails_holding_claims_does_not_leave_its_child_waiting_for_them(  # type: ignore[no-untyped-def]
        settings, engine, sink):
    """The parent's ledger writer fails: its send raises with rows still claimed (sent, unrecorded).
    It then joins the child without terminating it; the child waits for the parent's claims (the
    parent is alive: it is in join()) until the 10-minute lease. `bulletin send` hangs 10 minutes."""
    s = smtp_settings(settings, sink, connections=4)
    add_subscribers(engine, add_list(engine), 400)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    me = ledger.worker_id()
    _fail_marks_of(engine, me)
    thread, out = _in_thread(lambda: service.send_queued(engine, s, [queued.send_id], processes=2))
    try:
        thread.join(timeout=40)
        hung = thread.is_alive()
        held = _claimed_by(engine, me)
    finally:
        _drop_fail(engine)
        if thread.is_alive():  # unblock the child: give the parent's rows back
            ledger.unclaim(engine, _claimed_by(engine, me))
            thread.join(timeout=120)
    assert not hung, (f"send_queued(processes=2) still running 40 s after the parent's send failed; "
                      f"the child waits for the parent's {len(held)} claimed rows")
    assert isinstance(out.get("error"), DeliveryError)


def test_a_live_slow_process_keeps_its_claims_while_the_other_waits(  # type: ignore[no-untyped-def]
        settings, engine, sink, monkeypatch):
    """The lease (10 minutes; 3 s here, inherited by the fork) was not renewed while a live process
    worked through its batch. With a rate limit a batch outlasts it (300 rows at smtp_rate 0.3/s
    take 1000 s): the process that finished first, waiting, released the live process's claims as
    stale, claimed and sent them, and the holder sent them too (review: 20 duplicates of 300 in a
    real-time run). On this host a live claimant now keeps its claims; elsewhere it renews them."""
    monkeypatch.setattr(claims, "LEASE", timedelta(seconds=3))
    s = smtp_settings(settings, sink, connections=2).model_copy(update={"smtp_rate": 25.0})
    emails = add_subscribers(engine, add_list(engine), 300)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    tally = service.send_queued(engine, s, [queued.send_id], processes=2)
    twice = {e: n for e, n in sink.copies().items() if n > 1}
    assert sorted(sink.copies()) == sorted(emails)
    assert not twice, f"{len(twice)} recipients got two copies (tally.sent={tally.sent})"


def test_a_worker_is_not_held_on_one_send_by_rows_another_worker_holds(settings, engine, sink):  # type: ignore[no-untyped-def]
    """A worker (many run against PostgreSQL) now sits in the first send while another worker holds
    some of its rows, live or dead on another host (until the lease): the other due sends wait."""
    s = smtp_settings(settings, sink, connections=2)
    add_subscribers(engine, add_list(engine), 20)
    first = service.queue_issue(engine, s, make_compiled("2026-05-a"), "shared-services")
    service.queue_issue(engine, s, make_compiled("2026-05-b"), "shared-services")
    other = "another-host.example:4242"  # a worker on another machine (alive, or died a moment ago)
    held = ledger.claim(engine, first.send_id, _list_id(engine), other, 5)
    stop = threading.Event()
    thread, _out = _in_thread(lambda: service.run_worker(engine, s, once=True, stop=stop,
                                                         options=SendOptions(linger=0)))
    try:
        end = time.monotonic() + 30
        while sink.count() < 35 and time.monotonic() < end:
            time.sleep(0.05)
        got = sink.count()
    finally:
        stop.set()
        thread.join(timeout=60)
        ledger.unclaim(engine, [r.delivery_id for r in held])
    assert got == 35, f"after 30 s the worker sent {got} of the 35 rows it could send (the second send waits)"


def test_claims_left_by_an_earlier_run_with_this_very_pid_do_not_hold_the_send(settings, engine, sink):  # type: ignore[no-untyped-def]
    """A killed run's claims carried host:pid; a later run with the same pid (PID 1 in a container that
    keeps its hostname, e.g. `docker restart`, host networking) never counted them stale and waited for
    the lease (up to 10 minutes). Worker ids now carry the process's start time: an earlier process
    with this pid is told apart, and this process's own leftovers (an earlier failed send in it) are
    released once its pipeline is drained. Both kinds here."""
    s = smtp_settings(settings, sink, connections=2)
    emails = add_subscribers(engine, add_list(engine), 20)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    me = ledger.worker_id()
    earlier = me.rsplit(":", 1)[0] + ":" + str(int(me.rsplit(":", 1)[1]) - 1)  # this pid, started before
    left = ledger.claim(engine, queued.send_id, _list_id(engine), me, 5)  # an earlier failed send in here
    left += ledger.claim(engine, queued.send_id, _list_id(engine), earlier, 5)
    thread, _out = _in_thread(lambda: service.send_queued(engine, s, [queued.send_id]))
    try:
        thread.join(timeout=30)
        hung = thread.is_alive()
    finally:
        if thread.is_alive():
            ledger.unclaim(engine, [r.delivery_id for r in left])
            thread.join(timeout=60)
    assert not hung, "a send waited 30 s (of up to 10 minutes) for claims its own pid left from an earlier run"
    assert sorted(sink.copies()) == sorted(emails)



def test_a_claim_from_another_host_is_dead_after_the_lease_unless_its_worker_renews_it(settings, engine):  # type: ignore[no-untyped-def]
    """We cannot look at a process on another machine: its claims end with the lease, which a live
    worker keeps renewing (the engine does every minute)."""
    add_subscribers(engine, add_list(engine), 6)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    alive, dead = "worker-a.example:41:977", "worker-b.example:42:978"
    ledger.claim(engine, queued.send_id, _list_id(engine), alive, 3)
    ledger.claim(engine, queued.send_id, _list_id(engine), dead, 3)
    assert release_stale_claims(engine, queued.send_id) == 0  # both within the lease
    with session_scope(engine) as session:
        for row in session.exec(select(Delivery).where(Delivery.state == DeliveryState.CLAIMED)).all():
            row.claimed_at = row.claimed_at - claims.LEASE - timedelta(seconds=5)  # type: ignore[operator]
            session.add(row)
    ledger.renew_claims(engine, queued.send_id, alive)
    assert release_stale_claims(engine, queued.send_id) == 3
    with session_scope(engine) as session:
        left = session.exec(select(Delivery.claimed_by).where(Delivery.state == DeliveryState.CLAIMED)).all()
    assert left == [alive] * 3


def test_a_sender_renews_its_claims_while_a_slow_relay_holds_its_batch(settings, engine, sink, monkeypatch):  # type: ignore[no-untyped-def]
    """A batch can outlast the lease (a low smtp_rate, a slow relay), even in the last drain, when the
    claim loop is not running: the ledger writer renews the claims, so no other machine takes them."""
    from datetime import UTC, datetime

    from bulletin.delivery import recorder as send_engine

    monkeypatch.setattr(send_engine, "RENEW_EVERY", 0.3)
    s = smtp_settings(settings, sink, connections=1).model_copy(update={"smtp_rate": 10.0})
    add_subscribers(engine, add_list(engine), 40)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    thread = threading.Thread(target=service.send_queued, args=(engine, s, [queued.send_id]))
    thread.start()
    try:
        _wait_until(lambda: sink.count() >= 5, "the send is under way")
        with session_scope(engine) as session:
            rows = session.exec(select(Delivery).where(Delivery.state == DeliveryState.CLAIMED)).all()
            assert len(rows) > 20
            for row in rows:
                row.claimed_at = row.claimed_at - timedelta(hours=1)  # type: ignore[operator]
                session.add(row)
        seen = sink.count()
        _wait_until(lambda: sink.count() >= seen + 8, "more of the batch goes out")
        with session_scope(engine) as session:
            ages = session.exec(select(Delivery.claimed_at).where(Delivery.state == DeliveryState.CLAIMED)).all()
    finally:
        thread.join(timeout=60)
    now = datetime.now(UTC).replace(tzinfo=None)
    assert ages and all(now - (at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at) < timedelta(minutes=1)
                        for at in ages)


def test_the_bar_stops_saying_waiting_when_the_holder_sends_the_rows_itself(settings, engine, sink):  # type: ignore[no-untyped-def]
    """The other process does not give its rows back: it sends them (the usual end of a shared send).
    This send then found nothing open and returned DONE, its tally (and the bar) still 'waiting'
    (review finding)."""
    s = smtp_settings(settings, sink, connections=2)
    add_subscribers(engine, add_list(engine), 30)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    holder = subprocess.Popen(["sleep", "300"])
    try:
        held = ledger.claim(engine, queued.send_id, _list_id(engine), f"{socket.gethostname()}:{holder.pid}", 10)
        shown: list[int] = []
        out: dict[str, object] = {}
        thread = threading.Thread(target=lambda: out.setdefault("tally", service.send_queued(
            engine, s, [queued.send_id], options=SendOptions(linger=0),
            progress=lambda t: shown.append(t.held_elsewhere))))
        thread.start()
        _wait_until(lambda: 10 in shown, "the bar is told about the 10 held rows")
        with session_scope(engine) as session:  # the holder sends its rows and records them
            session.exec(update(Delivery).where(Delivery.id.in_([r.delivery_id for r in held]))  # type: ignore[call-overload,attr-defined]
                         .values(state=DeliveryState.SENT, sent_at=utcnow(), claimed_by=None))
        thread.join(timeout=60)
        assert not thread.is_alive()
    finally:
        holder.kill()
        holder.wait()
    with session_scope(engine) as session:
        assert session.get(Send, queued.send_id).status == SendStatus.DONE  # type: ignore[union-attr]
    tally = out["tally"]
    # what `bulletin send` shows as the bar's final label (it calls update(tally) after send_queued)
    assert _doing(tally) == "sending", f"final bar label: {_doing(tally)!r}"  # type: ignore[arg-type]
