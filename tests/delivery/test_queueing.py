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


def test_queued_rows_hold_the_same_values_in_the_same_form_as_the_orm_writes(settings, engine, small_chunks):
    """The queue writes below the ORM (COPY, or executemany of driver values on SQLite); what it stores
    reads back as the ORM's own row would, stored text and times included."""
    from datetime import timedelta

    from sqlalchemy import insert

    from bulletin.models import utcnow
    from bulletin.statuses import DeliveryState

    list_id = add_list(engine)
    add_subscribers(engine, list_id, 9)
    before = utcnow()
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
        model = rows[0]
        session.delete(model)
        session.flush()
        session.execute(insert(Delivery), [{"issue_id": model.issue_id, "subscriber_id": model.subscriber_id,
                                            "send_id": model.send_id, "state": DeliveryState.QUEUED,
                                            "message_id": "", "attempts": 0, "deadline": model.deadline,
                                            "created_at": model.created_at}])
    assert len(rows) == 9 and {r.send_id for r in rows} == {queued.send_id}
    assert {(r.state, r.attempts, r.message_id) for r in rows} == {(DeliveryState.QUEUED, 0, "")}
    assert all(before <= r.created_at <= utcnow() and r.deadline - r.created_at > timedelta(hours=1) for r in rows)
    with engine.connect() as conn:  # byte for byte as the ORM stored the same values
        stored = conn.exec_driver_sql("SELECT state, message_id, attempts, deadline, created_at FROM delivery "
                                      "ORDER BY id").all()
    assert stored[0] == stored[-1] and len({tuple(s) for s in stored}) == 1


def test_a_large_queue_is_vacuumed_before_anyone_claims_it(settings, engine, small_chunks):  # type: ignore[no-untyped-def]
    """PostgreSQL: the first claims after a COPY of a million rows set every page's hint bits and met
    autovacuum's insert-triggered pass (bench/scale.py: the claim at 1 % 1.3-1.9 times the one at 99 %).
    A queue of ANALYZE_AFTER rows or more is vacuumed before queue_issue returns: every page of the
    new rows is all-visible. A smaller one is left to autovacuum."""
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no VACUUM of this kind to run")

    def visible() -> tuple[int, int, int]:
        """Pages of the ledger, how many are all-visible, and how many VACUUMs were asked for (not autovacuum)."""
        with engine.connect() as conn:
            pages, all_visible, asked = conn.execute(text(
                "SELECT relpages, relallvisible, vacuum_count FROM pg_class c JOIN pg_stat_user_tables s "
                "ON s.relid = c.oid WHERE c.relname = 'delivery'")).one()
        return int(pages), int(all_visible), int(asked)

    list_id = add_list(engine)
    add_subscribers(engine, list_id, 9)
    before = visible()[2]  # the database may be another test's before this one's: count from here
    service.queue_issue(engine, settings, make_compiled("2026-05-small"), "shared-services")  # 9 < 10
    assert visible()[2] == before
    add_subscribers(engine, list_id, 400, start=9)
    service.queue_issue(engine, settings, make_compiled("2026-05-large"), "shared-services")
    pages, all_visible, asked = visible()
    assert asked == before + 1 and pages >= 2 and all_visible == pages
