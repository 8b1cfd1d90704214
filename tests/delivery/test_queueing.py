"""Queueing streams the list into the ledger: right rows, no duplicates, all or nothing, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import queueing, service
from bulletin.errors import DeliveryError
from bulletin.models import Delivery, Subscriber, Subscription
from bulletin.statuses import SubscriptionState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 rows, so a list of a few dozen crosses many fetch/write boundaries; statistics
    are refreshed after 10 rows (PostgreSQL), as they are after 10,000 in real use."""
    monkeypatch.setattr(queueing, "CHUNK", 7)
    monkeypatch.setattr(queueing, "ANALYZE_AFTER", 10)


def _ledger(engine) -> list[tuple[int, str]]:
    with session_scope(engine) as session:
        return [(int(s), str(m)) for s, m in session.exec(
            select(Delivery.subscriber_id, Delivery.message_id).order_by(Delivery.subscriber_id)).all()]


def test_every_confirmed_unsuppressed_subscriber_gets_one_row(settings, engine, small_chunks):
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 40)
    add_subscribers(engine, list_id, 5, start=100, state=SubscriptionState.PENDING)
    with session_scope(engine) as session:
        session.execute(update(Subscriber).where(Subscriber.email == "r3@example.org").values(suppressed=True))
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    rows = _ledger(engine)
    assert queued.new_rows == len(rows) == 39 and queued.already == 0
    with session_scope(engine) as session:
        expected = sorted(int(i) for i in session.exec(
            select(Subscriber.id).join(Subscription, Subscription.subscriber_id == Subscriber.id).where(
                Subscription.state == SubscriptionState.CONFIRMED, Subscriber.suppressed.is_(False))).all())
    assert [s for s, _ in rows] == expected
    assert {m for _, m in rows} == {""}, "nothing is signed at queue time: the build derives each Message-ID"


def test_a_second_queue_adds_only_newcomers(settings, engine, small_chunks):
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 20)
    first = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    add_subscribers(engine, list_id, 9, start=20)
    second = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    assert (first.new_rows, second.new_rows, second.already) == (20, 9, 20)
    assert len(_ledger(engine)) == 29 == len({s for s, _ in _ledger(engine)})


def test_a_bad_address_late_in_the_list_leaves_nothing_written(settings, engine, small_chunks):
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 30)
    with session_scope(engine) as session:
        session.execute(update(Subscriber).where(Subscriber.email == "r27@example.org").values(email="not an address"))
    with pytest.raises(DeliveryError, match="not a usable address"):
        service.queue_issue(engine, settings, make_compiled(), "shared-services")
    assert _ledger(engine) == []
    assert engine.pool.checkedout() == 0  # the read-ahead connection (PostgreSQL) was given back


def test_a_write_that_fails_midway_stops_the_read_ahead_and_leaves_nothing_written(settings, engine, small_chunks,
                                                                                  monkeypatch):
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 40)
    if engine.dialect.name != "postgresql":
        pytest.skip("the read-ahead connection is PostgreSQL's; SQLite reads and writes on one connection")
    real, calls = queueing._copy_chunk, []

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the server went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(queueing, "_copy_chunk", failing)
    with pytest.raises(RuntimeError, match="went away"):
        service.queue_issue(engine, settings, make_compiled(), "shared-services")
    assert _ledger(engine) == []
    assert engine.pool.checkedout() == 0
