"""The send engine and ledger against a real aiosmtpd sink, on SQLite and PostgreSQL."""

from __future__ import annotations

import email
from email import policy

import pytest
from sqlmodel import select

from bulletin.audience.lifecycle import unsubscribe
from bulletin.audience.links import Links
from bulletin.db import session_scope
from bulletin.delivery import readout, service
from bulletin.delivery.engine import SendOptions
from bulletin.delivery.sent import SentWriter
from bulletin.errors import DeliveryError
from bulletin.models import Bounce, Delivery, Subscriber, SubscriberEvent, Subscription
from bulletin.sqlread import SessionReader
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled, smtp_settings

FAST = SendOptions(retry_base=0.01, retry_max=0.05, linger=30.0)


def _in_session(engine, fn, *args):  # type: ignore[no-untyped-def]
    """Call a session-level delivery function as a shell does: one unit of work, committed at the end."""
    with session_scope(engine) as session:
        return fn(session, *args)


def _states(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        out: dict[str, int] = {}
        for d in session.exec(select(Delivery)).all():
            out[d.state] = out.get(d.state, 0) + 1
        return out


def test_every_confirmed_subscriber_gets_exactly_one_message(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 60)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    assert queued.new_rows == 60
    tally = service.send_queued(engine, s, [queued.send_id], options=FAST)
    assert tally.sent == 60
    assert sorted(sink.copies()) == sorted(emails)
    assert set(sink.copies().values()) == {1}
    assert _states(engine) == {DeliveryState.SENT: 60}


def test_a_send_keeps_what_lived_before_it_out_of_the_collector_only_while_it_runs(settings, engine, sink):  # type: ignore[no-untyped-def]
    import gc

    gc.unfreeze()  # whatever an earlier test left frozen
    s = smtp_settings(settings, sink)
    add_subscribers(engine, add_list(engine), 5)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    during: list[int] = []
    tally = service.send_queued(engine, s, [queued.send_id], options=FAST,
                                progress=lambda t: during.append(gc.get_freeze_count()))
    assert tally.sent == 5 and len(during) == 5
    assert min(during) > 1000 and gc.get_freeze_count() == 0


def test_450s_are_retried_550s_fail_with_a_bounce_and_drops_reconnect(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=3)
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 90)
    hard = set(emails[5:10])
    soft = set(emails[20:30])
    sink.always_fail.update({e: 550 for e in hard})
    sink.temp_fail.update({e: 2 for e in soft})
    sink.drop_every = 7
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    service.send_queued(engine, s, [queued.send_id], options=FAST)
    copies = sink.copies()
    assert set(copies) == set(emails) - hard
    assert set(copies.values()) == {1}, "nobody gets two copies"
    assert sink.drops > 0 and all(sink.refused[e] == 2 for e in soft)
    assert _states(engine) == {DeliveryState.SENT: 85, DeliveryState.FAILED: 5}
    with session_scope(engine) as session:
        bounced = {b.subscriber_id for b in session.exec(select(Bounce)).all()}
        assert len(bounced) == 5 and all(b.permanent for b in session.exec(select(Bounce)).all())
        events = session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "bounce")).all()
        assert {e.subscriber_id for e in events} == bounced
        assert all(e.source == "delivery" and e.new_state == "bounced" for e in events)
        hard_ids = set(session.exec(select(Subscriber.id).where(Subscriber.email.in_(hard))).all())
        assert bounced == hard_ids


def test_a_4xx_past_the_deadline_fails_without_a_hard_bounce(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=1).model_copy(update={"defer_deadline_hours": 0.000001})
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 3)
    sink.temp_fail[emails[0]] = 99
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    service.send_queued(engine, s, [queued.send_id], options=FAST)
    assert _states(engine) == {DeliveryState.SENT: 2, DeliveryState.FAILED: 1}
    with session_scope(engine) as session:
        (bounce,) = session.exec(select(Bounce)).all()
        assert not bounce.permanent
        assert not session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "bounce")).all()


def test_sending_twice_sends_only_to_those_who_have_not_had_it(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    first = add_subscribers(engine, list_id, 10)
    q1 = service.queue_issue(engine, s, make_compiled(), "shared-services")
    service.send_queued(engine, s, [q1.send_id], options=FAST)
    later = add_subscribers(engine, list_id, 4, start=10)
    q2 = service.queue_issue(engine, s, make_compiled(), "shared-services")
    assert (q2.new_rows, q2.already) == (4, 10)
    service.send_queued(engine, s, [q2.send_id], options=FAST)
    assert sink.copies() == {e: 1 for e in first + later}


def test_people_who_leave_after_queuing_are_not_sent_to(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 5)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    with session_scope(engine) as session:
        sid = session.exec(select(Subscriber.id).where(Subscriber.email == emails[2])).one()
        unsubscribe(session, sid, None, source="web", actor="test")
    service.send_queued(engine, s, [queued.send_id], options=FAST)
    assert emails[2] not in sink.copies() and len(sink.copies()) == 4
    assert _states(engine) == {DeliveryState.SENT: 4, DeliveryState.CANCELLED: 1}


def test_a_bad_recipient_stops_the_send_before_any_message_leaves(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 5)
    with session_scope(engine) as session:
        bad = session.exec(select(Subscriber).where(Subscriber.email == "r3@example.org")).one()
        bad.email = "zoë@exämple.org"
        session.add(bad)
    with pytest.raises(DeliveryError, match="zoë@exämple.org"):
        service.queue_issue(engine, s, make_compiled(), "shared-services")
    assert _states(engine) == {}
    assert sink.count() == 0


def test_pause_stops_claiming_resume_finishes_and_cancel_drops_the_rest(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 30)
    compiled = make_compiled()
    queued = service.queue_issue(engine, s, compiled, "shared-services")
    assert _in_session(engine, service.pause_issue, compiled.slug) == 1
    tally = service.send_queued(engine, s, [queued.send_id], options=FAST)
    assert tally.sent == 0 and sink.count() == 0
    assert _in_session(engine, service.issue_status, compiled.slug).sends[0]["status"] == "paused"
    ids = _in_session(engine, service.resume_issue, compiled.slug)
    service.send_queued(engine, s, ids, options=FAST)
    st = _in_session(engine, service.issue_status, compiled.slug)
    assert st.counts[DeliveryState.SENT] == 30 and st.sends[0]["status"] == "done"
    add_subscribers(engine, list_id, 3, start=30)
    service.queue_issue(engine, s, compiled, "shared-services")
    assert _in_session(engine, service.cancel_issue, compiled.slug) == 3
    assert _in_session(engine, service.resume_issue, compiled.slug) == []
    assert _states(engine) == {DeliveryState.SENT: 30, DeliveryState.CANCELLED: 3}


def test_status_of_an_unknown_or_unsent_issue_is_a_clear_error(settings, engine):  # type: ignore[no-untyped-def]
    from bulletin.errors import NotFound

    with pytest.raises(NotFound, match="nope"):
        _in_session(engine, service.issue_status, "nope")


def test_a_scheduled_send_waits_for_its_time_then_a_worker_sends_it(settings, engine, sink):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from bulletin.models import utcnow

    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 8)
    compiled = make_compiled()
    service.queue_issue(engine, s, compiled, "shared-services", at=utcnow() + timedelta(days=1))
    service.run_worker(engine, s, once=True, options=FAST)
    assert sink.count() == 0
    service.queue_issue(engine, s, compiled, "shared-services", at=utcnow() - timedelta(seconds=1))
    service.run_worker(engine, s, once=True, options=FAST)
    assert sink.count() == 8


def test_the_message_on_the_wire_parses_to_the_filled_issue(settings, engine, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 1)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    service.send_queued(engine, s, [queued.send_id], options=FAST)
    (got,) = sink.received
    msg = email.message_from_bytes(got.data, policy=policy.default)
    assert got.mail_from.startswith("bounces+") and msg["Message-ID"] == got.message_id
    assert "Reader 0" in msg.get_body(("plain",)).get_content()
    with session_scope(engine) as session:
        (row,) = session.exec(select(Delivery)).all()
        assert row.smtp_code == 250 and row.attempts == 1
        # The row keeps no Message-ID: the one the message carried is derived again, for the outbox
        # after an erasure or a resend after a crash.
        assert row.message_id == ""
        assert Links.for_settings(s).for_message(row.subscriber_id, list_id, row.issue_id).message_id == got.message_id
    _ = Subscription


def test_pausing_a_running_send_stops_it_and_resume_sends_each_remaining_row_once(settings, engine, sink):  # type: ignore[no-untyped-def]
    from bulletin.messenger.transport import make_transport

    s = smtp_settings(settings, sink, connections=2)
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 800)
    compiled = make_compiled()
    queued = service.queue_issue(engine, s, compiled, "shared-services")

    class PauseAfterTen:
        """The real SMTP pool; the editor runs `bulletin pause` once ten messages have gone."""

        concurrency = 2

        def __init__(self) -> None:
            self.inner, self.count = make_transport(s), 0

        def send(self, *args, **kw):  # type: ignore[no-untyped-def]
            result = self.inner.send(*args, **kw)
            self.count += 1
            if self.count == 10:
                _in_session(engine, service.pause_issue, compiled.slug)
            return result

        def close(self) -> None:
            self.inner.close()

    service.send_queued(engine, s, [queued.send_id], transport=PauseAfterTen(), options=FAST)
    first = sink.count()
    assert 10 <= first < 800
    assert _in_session(engine, service.issue_status, compiled.slug).sends[0]["status"] == "paused"
    assert DeliveryState.CLAIMED not in _states(engine)
    service.send_queued(engine, s, _in_session(engine, service.resume_issue, compiled.slug), options=FAST)
    assert sink.copies() == {e: 1 for e in emails}


def test_each_claimed_batch_is_one_log_line_without_addresses_or_bodies(settings, engine, sink):  # type: ignore[no-untyped-def]
    import io
    import json
    import logging

    from bulletin.logs import configure_logging

    s = smtp_settings(settings, sink)
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 30)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream)
    try:
        service.send_queued(engine, s, [queued.send_id], options=SendOptions(batch=10, retry_base=0.05))
    finally:
        logging.getLogger("bulletin").removeHandler(handler)
    batches = [r for r in map(json.loads, stream.getvalue().splitlines()) if r["event"] == "send.batch"]
    assert sum(b["claimed"] for b in batches) == 30 and len(batches) >= 3
    assert all(b["send_id"] == queued.send_id for b in batches)
    assert not any(e in stream.getvalue() for e in emails)


def test_the_driver_sql_sent_path_stores_exactly_what_core_stores(settings, engine):  # type: ignore[no-untyped-def]
    """A group of one (PostgreSQL: its own one-row statement) and a larger group (one UPDATE over an
    array) store what Core's mark stores, and the running counts see every mark."""
    from bulletin.delivery import ledger
    from bulletin.models import utcnow

    list_id = add_list(engine)
    add_subscribers(engine, list_id, 4)
    service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with session_scope(engine) as session:
        alone, first, second, core = session.exec(select(Delivery.id).order_by(Delivery.id)).all()
    at = utcnow()
    writer = SentWriter(engine)
    try:
        writer.write([(alone, 250)], at)
        writer.write([(first, 252), (second, 250)], at)
    finally:
        writer.close()
    with engine.begin() as conn:
        ledger.mark_sent(conn, [(core, 251)], at)
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT state, sent_at, last_error FROM delivery ORDER BY id").all()
    assert raw[0] == raw[1] == raw[2] == raw[3]
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
        assert readout.state_counts(SessionReader(session), rows[0].issue_id).get(DeliveryState.SENT) == 4
    assert [(d.state, d.sent_at, d.smtp_code) for d in rows] == [(DeliveryState.SENT, at, 250),
                                                                 (DeliveryState.SENT, at, 252),
                                                                 (DeliveryState.SENT, at, 250),
                                                                 (DeliveryState.SENT, at, 251)]


def _one_queued_row(settings, engine) -> int:  # type: ignore[no-untyped-def]
    """The ledger row of a one-subscriber list with the issue queued."""
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 1)
    service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with session_scope(engine) as session:
        (row,) = session.exec(select(Delivery.id)).all()
    return int(row)


def test_a_sent_writer_whose_connection_the_server_killed_fails_loudly_and_leaves_the_pool_clean(  # type: ignore[no-untyped-def]
        settings, engine):
    import psycopg

    from bulletin.models import utcnow

    if engine.dialect.name != "postgresql":
        pytest.skip("a server that kills a backend is PostgreSQL's")
    row = _one_queued_row(settings, engine)
    writer = SentWriter(engine, flush_wait=False)
    writer._cursor.execute("SELECT pg_backend_pid()")
    (pid,) = writer._cursor.fetchone()
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    with pytest.raises(psycopg.OperationalError):  # the connection is gone
        writer.write([(row, 250)], utcnow())
    writer.close()  # does not raise: the broken connection is thrown away, not pooled
    assert engine.pool.checkedout() == 0
    with engine.connect() as conn:  # every pooled connection works and is durable
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    with session_scope(engine) as session:
        assert session.exec(select(Delivery.state)).all() == [DeliveryState.QUEUED]


@pytest.mark.parametrize("flush_wait", [True, False])
def test_the_sent_writer_waits_for_the_wal_flush_only_when_asked(settings, engine, flush_wait: bool) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: by default the sent marks' connection does not wait for the flush (the setting
    `ledger_flush_wait` turns it on); other connections keep the server's durable default."""
    from bulletin.models import utcnow

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's WAL mode already commits without an fsync (synchronous=NORMAL)")
    row = _one_queued_row(settings, engine)
    seen: list[str] = []
    writer = SentWriter(engine, flush_wait=flush_wait)
    try:
        writer.write([(row, 250)], utcnow())
        writer._cursor.execute("SHOW synchronous_commit")  # the session's setting, which each mark ran under
        seen.append(writer._cursor.fetchone()[0])
    finally:
        writer.close()
    assert seen == ["on" if flush_wait else "off"]
    with engine.connect() as conn:  # the writer's connection went back to the pool durable
        assert {conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() for _ in range(3)} == {"on"}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
        assert conn.connection.driver_connection.autocommit is False  # and transactional again
    with session_scope(engine) as session:  # the write was committed by its one statement
        assert session.exec(select(Delivery.state)).all() == [DeliveryState.SENT]


def test_the_sent_writers_libpq_marks_raise_psycopgs_errors_and_leave_no_statement_in_the_pool(  # type: ignore[no-untyped-def]
        settings, engine):
    """The marks run prepared through libpq itself: a statement the server refuses raises the error
    psycopg would (here a code out of the column's range: DataError, nothing written), and closing
    deallocates both statements, so the next writer on the same pooled connection prepares afresh."""
    import psycopg

    from bulletin.models import utcnow

    if engine.dialect.name != "postgresql":
        pytest.skip("the libpq marks are PostgreSQL's")
    row = _one_queued_row(settings, engine)
    for _ in range(2):  # the second writer gets the same pooled connection back
        writer = SentWriter(engine)
        try:
            with pytest.raises(psycopg.errors.NumericValueOutOfRange):
                writer.write([(row, 2**40)], utcnow())
            with pytest.raises(psycopg.errors.NumericValueOutOfRange):
                writer.write([(row, 250), (row + 1, 2**40)], utcnow())
            writer._cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE starts_with(name, 'bulletin_mark_')")
            assert writer._cursor.fetchone()[0] == 2
        finally:
            writer.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements WHERE starts_with(name, 'bulletin_mark_')"
                                    ).scalar_one() == 0
    with session_scope(engine) as session:
        assert session.exec(select(Delivery.state)).all() == [DeliveryState.QUEUED]


def test_a_sent_writer_that_fails_to_set_up_gives_the_pool_nothing_half_set_up(settings, engine, monkeypatch):  # type: ignore[no-untyped-def]
    """The second mark refused at prepare (review finding): the error surfaces, and the connection
    with the first statement prepared and the writer's settings is thrown away, not pooled."""
    import psycopg

    if engine.dialect.name != "postgresql":
        pytest.skip("the libpq marks are PostgreSQL's")
    monkeypatch.setattr(SentWriter, "_PG_SQL", "UPDATE no_such_table SET x = $1")
    with pytest.raises(psycopg.errors.UndefinedTable):
        SentWriter(engine, flush_wait=False)
    assert engine.pool.checkedout() == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements "
                                    "WHERE starts_with(name, 'bulletin_mark_')").scalar_one() == 0
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
        assert conn.connection.driver_connection.autocommit is False


def test_retry_waits_double_up_to_the_ceiling_however_many_tries() -> None:
    """A row tried thousands of times (a tiny retry_base, a long deadline) must not overflow the back-off."""
    from bulletin.delivery.ledger import retry_wait

    assert [retry_wait(n, 60, 3600) for n in (0, 1, 2, 3, 7, 8)] == [60, 60, 120, 240, 3600, 3600]
    assert retry_wait(5000, 0.01, 1800) == 1800


def test_the_sent_writer_plans_its_statement_once_and_gives_the_pool_back_the_servers_default(  # type: ignore[no-untyped-def]
        settings, engine):
    """PostgreSQL planned the sent mark afresh for every message (a custom plan per array), which was
    most of the server's time per message; the writer's connection asks for one generic plan, and
    only that connection: the pool gets it back planning as the server's default does."""
    from bulletin.models import utcnow

    if engine.dialect.name != "postgresql":
        pytest.skip("plan_cache_mode is PostgreSQL's")
    rows = [_one_queued_row(settings, engine)]
    writer = SentWriter(engine)
    try:
        writer._cursor.execute("SHOW plan_cache_mode")
        assert writer._cursor.fetchone()[0] == "force_generic_plan"
        writer.write([(rows[0], 250)], utcnow())
    finally:
        writer.close()
    with engine.connect() as conn:
        assert {conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() for _ in range(3)} == {"auto"}
    with session_scope(engine) as session:
        assert session.exec(select(Delivery.state)).all() == [DeliveryState.SENT]


def test_a_claim_returns_rows_in_order_with_their_reader_and_cancels_those_gone(settings, engine):  # type: ignore[no-untyped-def]
    """The claim on both databases: due rows in id order with the address and name to build from;
    rows of someone who unsubscribed since queueing are cancelled, not sent; on PostgreSQL (no foreign
    key on the ledger) a row whose subscriber was deleted by hand is cancelled too, not left claimed."""
    from sqlalchemy import text

    from bulletin.delivery import ledger

    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 5)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with session_scope(engine) as session:
        ids = {e: int(i) for e, i in session.exec(select(Subscriber.email, Subscriber.id)).all()}
        unsubscribe(session, ids[emails[1]], list_id, source="cli", actor="test")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM subscription WHERE subscriber_id = :s"), {"s": ids[emails[3]]})
            conn.execute(text("DELETE FROM subscriber WHERE id = :s"), {"s": ids[emails[3]]})
    first = ledger.claim(engine, queued.send_id, list_id, "w:1", 2)
    rest = ledger.claim(engine, queued.send_id, list_id, "w:1", 10, after=first[-1].delivery_id)
    got = [(r.email, r.name) for r in first + rest]
    gone = {emails[1]} | ({emails[3]} if engine.dialect.name == "postgresql" else set())
    assert got == [(e, f"Reader {i}") for i, e in enumerate(emails) if e not in gone]
    assert [r.delivery_id for r in first + rest] == sorted(r.delivery_id for r in first + rest)
    assert _states(engine) == {DeliveryState.CLAIMED: 5 - len(gone), DeliveryState.CANCELLED: len(gone)}


def test_queueing_leaves_the_planner_statistics_of_the_new_ledger_rows(settings, engine):  # type: ignore[no-untyped-def]
    """PostgreSQL: the workers' first claims are planned right after the queue wrote its rows; it ends with
    ANALYZE of the ledger rather than leave them to whenever autovacuum comes (if it is on at all)."""
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps no planner statistics unless asked")
    add_subscribers(engine, add_list(engine), 300)
    with engine.begin() as conn:
        conn.execute(text("UPDATE pg_class SET reltuples = -1 WHERE relname = 'delivery'"))
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'delivery'")).scalar_one() \
            == queued.new_rows == 300
