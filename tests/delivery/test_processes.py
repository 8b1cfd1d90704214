"""`--processes N`: forked senders share the ledger and the connections; nobody gets two copies."""

from __future__ import annotations

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.delivery.engine import SendOptions
from bulletin.delivery.processes import split_connections
from bulletin.models import Delivery, Send
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled, smtp_settings


def test_two_processes_send_each_recipient_exactly_once_and_both_take_a_share(settings, engine, sink):  # type: ignore[no-untyped-def]
    """The relay holds each message 10 ms and batches are 40 rows, so the parent alone would take
    about two seconds: the child has that long to start and claim (a loaded CI machine once took longer
    than the parent's 400 undelayed messages, and the child found nothing left)."""
    s = smtp_settings(settings, sink, connections=4)
    sink.delay = 0.01
    emails = add_subscribers(engine, add_list(engine), 400)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    seen: list[int] = []
    tally = service.send_queued(engine, s, [queued.send_id], processes=2, options=SendOptions(batch=40),
                                progress=lambda t: seen.append(t.sent))
    assert (tally.sent, tally.total, tally.failed) == (400, 400, 0)
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery)).all()
        assert {r.state for r in rows} == {DeliveryState.SENT}
        assert len({r.claimed_by for r in rows}) == 2  # the parent and the forked child both sent
        assert session.get(Send, queued.send_id).status == "done"
    assert seen == sorted(seen)  # progress counts every process's work, from the ledger


def test_children_start_with_the_parents_objects_frozen_and_the_parent_gets_them_back(  # type: ignore[no-untyped-def]
        settings, engine, sink, tmp_path):
    """Frozen before the fork: a child's send finds the inherited objects frozen (so it never runs the
    full collection that copies the parent's pages), and the parent's collector has them back after."""
    import gc
    import os

    from bulletin.delivery.processes import send_in_processes

    s = smtp_settings(settings, sink, connections=2)
    add_subscribers(engine, add_list(engine), 20)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    seen = tmp_path / "frozen"

    def send(*args, **kw):  # type: ignore[no-untyped-def]
        with seen.open("a") as fh:  # appended whole lines: the parent and the child each write one
            fh.write(f"{os.getpid()} {gc.get_freeze_count()}\n")
        return service.send_queued(*args, **kw)

    gc.unfreeze()  # whatever an earlier test left frozen (as the other freeze tests do)
    assert gc.get_freeze_count() == 0
    tally = send_in_processes(engine, s, [queued.send_id], send, processes=2, options=None, stop=None,
                              progress=None)
    assert tally.sent == 20 and sink.count() == 20
    lines = [line.split() for line in seen.read_text().splitlines()]
    assert len(lines) == 2 and {pid for pid, _ in lines} >= {str(os.getpid())}
    assert all(int(frozen) > 10_000 for _, frozen in lines)  # the child's too: inherited, not collected
    assert gc.get_freeze_count() == 0


def test_a_helper_that_cannot_be_forked_stops_the_send_cleanly_and_resume_finishes_it(  # type: ignore[no-untyped-def]
        settings, engine, sink, monkeypatch):
    """The machine refuses the second fork (EAGAIN): a clear error naming the process, the helper that
    did start is stopped and gives back its claims, nothing is sent twice, and a resume sends the rest."""
    import errno
    import multiprocessing.context

    import pytest

    from bulletin.errors import DeliveryError

    s = smtp_settings(settings, sink, connections=3)
    emails = add_subscribers(engine, add_list(engine), 300)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    real_start = multiprocessing.context.ForkProcess.start
    forks = []

    def start(self):  # type: ignore[no-untyped-def]
        forks.append(self)
        if len(forks) == 2:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_start(self)

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start)
    with pytest.raises(DeliveryError, match=r"cannot start sending process 3 of 3: .*Resource temporarily"):
        service.send_queued(engine, s, [queued.send_id], processes=3)
    assert not forks[0].is_alive() and forks[0].exitcode is not None  # stopped and joined, not left running
    with session_scope(engine) as session:
        assert DeliveryState.CLAIMED not in {r.state for r in session.exec(select(Delivery)).all()}
    monkeypatch.undo()
    with session_scope(engine) as session:
        ids = service.resume_issue(session, "2026-05-test")
    service.send_queued(engine, s, ids)
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}


def test_connections_are_shared_out_not_multiplied(settings):  # type: ignore[no-untyped-def]
    assert split_connections(settings.model_copy(update={"smtp_connections": 4}), 2).smtp_connections == 2
    assert split_connections(settings.model_copy(update={"smtp_connections": 1}), 3).smtp_connections == 1


def test_the_rate_limit_is_shared_out_too(settings):  # type: ignore[no-untyped-def]
    """Each process paces its own sends: with the whole `smtp_rate` each, two sent at twice the rate."""
    assert split_connections(settings.model_copy(update={"smtp_rate": 10.0}), 2).smtp_rate == 5.0
    assert split_connections(settings.model_copy(update={"smtp_rate": 0.0}), 2).smtp_rate == 0.0  # unlimited


def test_no_more_processes_than_connections_so_the_relay_sees_the_configured_number(  # type: ignore[no-untyped-def]
        settings, engine, sink):
    """Each process opens at least one connection, so four processes with `smtp_connections = 2` had
    the relay see four. Now a send takes at most one process per connection, and says so; everyone
    still gets exactly one copy."""
    import logging

    s = smtp_settings(settings, sink, connections=2)
    sink.delay = 0.005
    emails = add_subscribers(engine, add_list(engine), 240)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    said: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("bulletin.delivery")  # the CLI's logging may stop it propagating to caplog
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # whatever level an earlier CLI test left on the `bulletin` loggers
    try:
        tally = service.send_queued(engine, s, [queued.send_id], processes=4, options=SendOptions(batch=20))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert (tally.sent, tally.failed) == (240, 0)
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}
    with session_scope(engine) as session:
        senders = {r.claimed_by for r in session.exec(select(Delivery)).all()}
    assert 1 <= len(senders) <= 2, senders
    assert any("send.processes_capped" in line for line in said), said
