"""The ledger's running counts (delivery_count, delivery_minute) against a fresh GROUP BY, after every
kind of state change, on SQLite and PostgreSQL; and under two concurrent senders on PostgreSQL."""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from bulletin.audience.lifecycle import unsubscribe
from bulletin.db import session_scope
from bulletin.delivery import ledger, readout, retention, service
from bulletin.delivery.engine import SendOptions
from bulletin.models import Delivery, DeliveryCount, DeliveryMinute, Send, Subscriber, utcnow
from bulletin.report import issue_report
from bulletin.report.figures import BUCKETS
from bulletin.report.sql import epoch
from bulletin.sqlread import SessionReader
from bulletin.statuses import DeliveryState
from tests.bad_smtp import bad_relay
from tests.delivery.conftest import add_list, add_subscribers, make_compiled

LEAVE_DEFERRED = SendOptions(retry_base=3600.0, retry_max=3600.0, linger=0.0)
RETRY_FAST = SendOptions(retry_base=0.01, retry_max=0.05, linger=5.0)


def ledger_counts(engine) -> dict[tuple[int, int, str, str], int]:  # type: ignore[no-untyped-def]
    """What the counts must say, counted from the ledger itself."""
    seg = func.coalesce(Delivery.segment, "")
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery.issue_id, Delivery.send_id, seg, Delivery.state, func.count())
                            .group_by(Delivery.issue_id, Delivery.send_id, seg, Delivery.state)).all()
    return {(i, s, g, st): int(n) for i, s, g, st, n in rows}


def kept_counts(engine) -> dict[tuple[int, int, str, str], int]:  # type: ignore[no-untyped-def]
    """The kept counts, their shards added up."""
    out: dict[tuple[int, int, str, str], int] = {}
    with session_scope(engine) as session:
        for r in session.exec(select(DeliveryCount)).all():
            key = (r.issue_id, r.send_id, r.segment, r.state)
            out[key] = out.get(key, 0) + r.n
    return {k: n for k, n in out.items() if n}


def ledger_minutes(engine) -> dict[tuple[int, int], int]:  # type: ignore[no-untyped-def]
    e = epoch(Delivery.sent_at)
    minute = e - e % 60
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery.issue_id, minute, func.count()).where(
            Delivery.state == DeliveryState.SENT, Delivery.sent_at.is_not(None))
            .group_by(Delivery.issue_id, minute)).all()
    return {(i, int(m)): int(n) for i, m, n in rows}


def kept_minutes(engine) -> dict[tuple[int, int], int]:  # type: ignore[no-untyped-def]
    out: dict[tuple[int, int], int] = {}
    with session_scope(engine) as session:
        for r in session.exec(select(DeliveryMinute)).all():
            out[(r.issue_id, r.minute)] = out.get((r.issue_id, r.minute), 0) + r.n
    return {k: n for k, n in out.items() if n}


def assert_counts_match(engine, *, expect: dict[str, int] | None = None) -> None:  # type: ignore[no-untyped-def]
    """The kept counts equal the ledger's own, per key and per minute; `expect` checks the states seen."""
    want = ledger_counts(engine)
    assert kept_counts(engine) == want
    assert kept_minutes(engine) == ledger_minutes(engine)
    if expect is not None:
        seen: dict[str, int] = {}
        for (_, _, _, state), n in want.items():
            seen[state] = seen.get(state, 0) + n
        assert seen == expect


def _buckets_from_ledger(engine, issue_id: int, seconds: int) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """The report's old per-bucket count over the ledger, to hold `sent_per_bucket` to it."""
    e = epoch(Delivery.sent_at)
    bucket = e - e % seconds
    with session_scope(engine) as session:
        rows = session.exec(select(bucket, func.count()).where(
            Delivery.issue_id == issue_id, Delivery.state == DeliveryState.SENT, Delivery.sent_at.is_not(None))
            .group_by(bucket)).all()
    return {int(b): int(n) for b, n in rows}


def _smtp(settings, relay):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"transport": "smtp", "smtp_host": relay.host, "smtp_port": relay.port,
                                       "smtp_connections": 2, "smtp_timeout": 10.0})


def _in_session(engine, fn, *args, **kw):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return fn(session, *args, **kw)


def _dead_pid() -> int:
    """A pid with no process, so a claim made in its name is a dead worker's."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def _states(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    out: dict[str, int] = {}
    for (_, _, _, state), n in ledger_counts(engine).items():
        out[state] = out.get(state, 0) + n
    return out


def test_every_state_change_keeps_the_counts_equal_to_the_ledger(settings, engine) -> None:  # type: ignore[no-untyped-def]
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 12)
    failed, deferred, leaving = emails[0], emails[1], emails[2]

    # Queued (COPY on PostgreSQL, counted once at the end), then sent, failed at RCPT, deferred, and
    # cancelled at the claim for someone who left after queuing.
    first = service.queue_issue(engine, settings, make_compiled("2026-05-one"), "shared-services")
    assert_counts_match(engine, expect={"queued": 12})
    with session_scope(engine) as session:
        sid = session.exec(select(Subscriber.id).where(Subscriber.email == leaving)).one()
        unsubscribe(session, sid, None, source="web", actor="test")
    with bad_relay(rcpt_replies={failed: f"550 5.1.1 <{failed}>: user unknown",
                                 deferred: "450 4.2.1 mailbox busy, try later"}) as relay:
        service.send_queued(engine, _smtp(settings, relay), [first.send_id], options=LEAVE_DEFERRED)
    assert_counts_match(engine, expect={"sent": 9, "failed": 1, "deferred": 1, "cancelled": 1})

    # A relay's refusal puts claimed rows back in the queue (and pauses); a drop after the final dot
    # leaves them unknown; --resend-unknown queues them again; then they go.
    second = service.queue_issue(engine, settings, make_compiled("2026-05-two"), "shared-services")
    n = second.new_rows
    with bad_relay(mail_reply="530 5.7.0 Authentication required") as relay:
        service.send_queued(engine, _smtp(settings, relay), [second.send_id], options=LEAVE_DEFERRED)
    assert_counts_match(engine)
    assert _states(engine)["queued"] == n
    with bad_relay(drop_after_dot=1) as relay:
        ids = _in_session(engine, service.resume_issue, "2026-05-two")
        service.send_queued(engine, _smtp(settings, relay), ids, options=LEAVE_DEFERRED)
    assert_counts_match(engine)
    assert _states(engine)["unknown"] == n
    _in_session(engine, service.resume_issue, "2026-05-two", resend_unknown=True)
    assert_counts_match(engine)
    assert _states(engine)["queued"] == n and "unknown" not in _states(engine)
    with bad_relay() as relay:
        service.send_queued(engine, _smtp(settings, relay), [second.send_id], options=LEAVE_DEFERRED)
    assert_counts_match(engine)
    assert _states(engine)["sent"] == 9 + n

    # Claims: a dead worker's are released, a live one's given back, and the rest cancelled.
    third = service.queue_issue(engine, settings, make_compiled("2026-05-three"), "shared-services")
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    assert len(ledger.claim(engine, third.send_id, list_id, dead, 4)) == 4
    assert_counts_match(engine)
    assert _states(engine)["claimed"] == 4
    assert ledger.release_stale_claims(engine, third.send_id) == 4
    rows = ledger.claim(engine, third.send_id, list_id, ledger.worker_id(), 3)
    assert_counts_match(engine)
    assert _states(engine)["claimed"] == 3
    ledger.unclaim(engine, [r.delivery_id for r in rows])
    assert _in_session(engine, service.cancel_issue, "2026-05-three") == third.new_rows
    assert_counts_match(engine)
    assert "claimed" not in _states(engine) and "queued" not in _states(engine)

    # Rows a segment chose are counted under its name (the whole-list rows deleted first).
    fourth = service.queue_issue(engine, settings, make_compiled("2026-05-four"), "shared-services")
    with session_scope(engine) as session:
        chosen = list(session.exec(select(Subscriber.id).where(Subscriber.email.in_(emails[1:5]))).all())
        session.execute(text("DELETE FROM delivery WHERE send_id = :s"), {"s": fourth.send_id})
        ledger.enqueue_chosen(session, session.get(Send, fourth.send_id), chosen, utcnow() + timedelta(days=1),
                              "councils")
    assert_counts_match(engine)
    assert {k[2] for k in kept_counts(engine)} == {"", "councils"}

    # The deferred row comes due and is sent with the segment's rows; then compaction deletes the
    # sent rows of every finished issue, and the figures stay as they were.
    with session_scope(engine) as session:
        session.execute(text("UPDATE delivery SET next_attempt_at = :t WHERE state = 'deferred'"),
                        {"t": utcnow() - timedelta(seconds=1)})
    with bad_relay() as relay:
        service.send_queued(engine, _smtp(settings, relay), [first.send_id, fourth.send_id], options=RETRY_FAST)
    assert_counts_match(engine)
    assert "deferred" not in _states(engine) and ("councils" in {k[2] for k in kept_counts(engine)})
    before = {slug: _report(engine, slug) for slug in ("2026-05-one", "2026-05-two", "2026-05-four")}
    done = retention.compact(engine, timedelta(days=1), now=utcnow() + timedelta(days=30))
    # An issue sent to segments keeps its rows (a tally has no segment to split the report by): the
    # other two are compacted, and every figure, the split by segment too, stays as it was.
    assert {c.slug for c in done} == {"2026-05-one", "2026-05-two"}
    assert_counts_match(engine)
    with session_scope(engine) as session:
        left = set(session.exec(select(Delivery.send_id).where(Delivery.state == "sent")).all())
    assert left == {fourth.send_id}
    after = {slug: _report(engine, slug) for slug in before}
    assert [(s["segment"], s["sent"]) for s in after["2026-05-four"]["by_segment"]] == [("councils", 3)]
    assert after == before
    with session_scope(engine) as session:
        st = service.issue_status(session, "2026-05-one")
    assert (st.counts["sent"], st.counts["failed"], st.counts["cancelled"]) == (10, 1, 1)
    assert any(e["code"] == 550 for e in st.errors)


def _report(engine, slug: str) -> dict:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        data = issue_report(session, slug).to_dict()
    data.pop("generated_at")
    return data


def test_the_timeline_buckets_from_minutes_equal_those_from_the_ledger(settings, engine) -> None:  # type: ignore[no-untyped-def]
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 40)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    service.send_queued(engine, settings, [queued.send_id])
    base = utcnow().replace(microsecond=0) - timedelta(days=3)
    with session_scope(engine) as session:
        ids = session.exec(select(Delivery.id).where(Delivery.issue_id == queued.issue_id).order_by(Delivery.id)).all()
        for i, did in enumerate(ids):  # seconds and fractions either side of minute and hour edges
            at = base + timedelta(minutes=i * 37 % 900, seconds=59 if i % 3 else 0, microseconds=(i % 4) * 250_000)
            session.execute(text("UPDATE delivery SET sent_at = :at WHERE id = :id"), {"at": at, "id": did})
    assert_counts_match(engine)
    for _, seconds in BUCKETS:
        want = _buckets_from_ledger(engine, queued.issue_id, seconds)
        with session_scope(engine) as session:
            assert readout.sent_per_bucket(SessionReader(session), queued.issue_id, seconds) == want


def test_two_senders_on_one_send_keep_the_counts_exact(settings, engine) -> None:  # type: ignore[no-untyped-def]
    """Two senders share one send whose rows alternate between two segments, so a group of outcomes
    touches several counter rows in several statements, in no one order: no deadlock, no lost update."""
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent senders share a ledger on PostgreSQL")
    list_id = add_list(engine)
    emails = add_subscribers(engine, list_id, 600)
    # Mostly refusals, so many groups of outcomes are several statements: without the triggers'
    # per-issue lock this deadlocked about one run in two.
    refused = {e: "550 5.1.1 user unknown" for e in emails[::2]}
    refused.update({e: "450 4.2.1 mailbox busy" for e in emails[1::3]})
    with session_scope(engine) as session:
        ids = session.exec(select(Subscriber.id).order_by(Subscriber.id)).all()
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with session_scope(engine) as session:  # the same rows again, chosen by two segments in turn
        session.execute(text("DELETE FROM delivery WHERE send_id = :s"), {"s": queued.send_id})
        send = session.get(Send, queued.send_id)
        deadline = utcnow() + timedelta(days=1)
        for i, sid in enumerate(ids):
            ledger.enqueue_chosen(session, send, [sid], deadline,
                                  "north" if i % 2 else "south")
    assert_counts_match(engine, expect={"queued": 600})
    errors: list[BaseException] = []
    with bad_relay(rcpt_replies=refused, dot_delay=0.002) as relay:
        s = _smtp(settings, relay)

        def sender(name: str) -> None:
            try:
                opts = SendOptions(retry_base=3600.0, retry_max=3600.0, linger=0.0, batch=10, worker=name)
                service.send_queued(engine, s, [queued.send_id], options=opts)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(f"w{i}:{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    assert_counts_match(engine)
    with session_scope(engine) as session:
        claimed_by = set(session.exec(select(Delivery.claimed_by).where(Delivery.state == "sent")).all())
    assert claimed_by == {"w0:0", "w1:1"}, "both senders took a share"
    states = {k[3] for k in kept_counts(engine)}
    assert {"sent", "failed", "deferred"} <= states


def test_the_migration_counts_the_rows_already_in_the_ledger(settings, engine) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from bulletin.db import alembic_config

    list_id = add_list(engine)
    add_subscribers(engine, list_id, 20)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    service.send_queued(engine, settings, [queued.send_id])
    command.downgrade(alembic_config(engine), "0016")  # the ledger as it was before the counts
    with engine.begin() as conn:
        conn.execute(text("UPDATE delivery SET state = 'failed', last_error = 'refused' WHERE id % 4 = 0"))
        conn.execute(text("UPDATE delivery SET segment = 'councils' WHERE id % 3 = 0"))
    command.upgrade(alembic_config(engine), "head")
    assert_counts_match(engine)
    assert _states(engine) == {"sent": 15, "failed": 5}
    with session_scope(engine) as session:  # and the triggers count from there on
        session.execute(text("UPDATE delivery SET state = 'sent' WHERE state = 'failed'"))
    assert_counts_match(engine, expect={"sent": 20})


def test_a_connection_counting_per_row_keeps_the_same_counts_for_every_kind_of_update(settings, engine):  # type: ignore[no-untyped-def]
    """PostgreSQL (migration 0022): the sent writer's connection counts with the row trigger instead of
    the statement trigger. Whatever such a connection updates (a group of marks, a move between
    sends, segments and issues, a sent time moved to another minute, a row sent again), the kept
    counts and minutes must stay exactly the ledger's, and the statement trigger must not count too."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite counts per row already")
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 8)
    first = service.queue_issue(engine, settings, make_compiled("2026-07-one"), "shared-services")
    second = service.queue_issue(engine, settings, make_compiled("2026-07-two"), "shared-services")
    with session_scope(engine) as session:
        ids = [int(i) for i in session.exec(select(Delivery.id).where(Delivery.send_id == first.send_id)
                                            .order_by(Delivery.id)).all()]
    updates = [
        ("UPDATE delivery SET state = 'claimed' WHERE id = ANY(:ids)", ids),
        ("UPDATE delivery SET state = 'sent', sent_at = now() WHERE id = ANY(:ids)", ids[:3]),
        ("UPDATE delivery SET sent_at = sent_at - interval '5 minutes' WHERE id = ANY(:ids)", ids[:1]),
        ("UPDATE delivery SET segment = 'north' WHERE id = ANY(:ids)", ids[3:5]),
        ("UPDATE delivery SET state = 'failed', last_error = 'x' WHERE id = ANY(:ids)", ids[1:2]),
        ("UPDATE delivery SET smtp_code = 250 WHERE id = ANY(:ids)", ids),  # no counted column changes
        (f"DELETE FROM delivery WHERE send_id = {second.send_id} AND subscriber_id IN "
         "(SELECT subscriber_id FROM delivery WHERE id = ANY(:ids))", ids[6:7]),  # its place in issue two
        (f"UPDATE delivery SET issue_id = {second.issue_id}, send_id = {second.send_id} "
         f"WHERE id = ANY(:ids)", ids[6:7]),
        ("UPDATE delivery SET state = 'sent', sent_at = now() WHERE id = ANY(:ids)", ids[:1]),
    ]
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET bulletin.row_counts = on")
        for sql, chosen in updates:
            cur.execute(sql.replace(":ids", "%s"), (chosen,))
            raw.commit()
            assert_counts_match(engine)
        cur.execute("RESET bulletin.row_counts")
        raw.commit()
    finally:
        raw.close()
    assert_counts_match(engine, expect={"queued": 7, "claimed": 5, "sent": 2, "failed": 1})


def test_a_claim_reads_each_recipients_subscription_by_its_key_not_the_whole_list(settings, engine):  # type: ignore[no-untyped-def]
    """The claim's recipient read once repeated `subscriber_id = ANY(:ids)` inside the subscription join,
    and PostgreSQL then read every subscription of the list and filtered them (44 ms a claim at 300,000,
    more at a million). Each of the claimed people must be one probe of the (subscriber, list) key."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the array read is PostgreSQL's; SQLite reads the ids from JSON (json_each)")
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 20_000)
    with session_scope(engine) as session:
        session.execute(text("ANALYZE subscriber"))
        session.execute(text("ANALYZE subscription"))
        ids = list(session.exec(select(Subscriber.id).order_by(Subscriber.id).limit(200)).all())
        stmt = ledger.recipients(list_id).compile(dialect=engine.dialect)
        plan = session.connection().exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + str(stmt), {**stmt.params, "ids": ids}).scalar_one()

    def nodes(node):  # type: ignore[no-untyped-def]
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    reads = [n for n in nodes(plan[0]["Plan"]) if n.get("Relation Name") == "subscription"]
    assert reads and all(n.get("Index Name") == "uq_subscription" for n in reads), reads
    assert sum(n["Actual Rows"] * n["Actual Loops"] + n.get("Rows Removed by Filter", 0) for n in reads) <= 200
