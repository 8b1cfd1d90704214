"""`--processes N`: forked senders share the ledger and the connections; nobody gets two copies."""

from __future__ import annotations

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.delivery.processes import split_connections
from bulletin.models import Delivery, Send
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled, smtp_settings


def test_two_processes_send_each_recipient_exactly_once_and_both_take_a_share(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=4)
    emails = add_subscribers(engine, add_list(engine), 400)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    seen: list[int] = []
    tally = service.send_queued(engine, s, [queued.send_id], processes=2, progress=lambda t: seen.append(t.sent))
    assert (tally.sent, tally.total, tally.failed) == (400, 400, 0)
    assert sorted(sink.copies()) == sorted(emails) and set(sink.copies().values()) == {1}
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery)).all()
        assert {r.state for r in rows} == {DeliveryState.SENT}
        assert len({r.claimed_by for r in rows}) == 2  # the parent and the forked child both sent
        assert session.get(Send, queued.send_id).status == "done"
    assert seen == sorted(seen)  # progress counts every process's work, from the ledger


def test_connections_are_shared_out_not_multiplied(settings):  # type: ignore[no-untyped-def]
    assert split_connections(settings.model_copy(update={"smtp_connections": 4}), 2).smtp_connections == 2
    assert split_connections(settings.model_copy(update={"smtp_connections": 1}), 3).smtp_connections == 1
