"""`bulletin db compact`: old sent rows become tallies, and every report figure stays the same."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, update
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import retention, service
from bulletin.errors import ConfigError, StateError
from bulletin.models import (
    Bounce,
    Delivery,
    DeliveryTally,
    SubscriberDelivery,
    utcnow,
)
from bulletin.report import issue_report
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled

LATER = timedelta(days=120)


def _figures(engine, slug: str) -> dict:
    with session_scope(engine) as session:
        data = issue_report(session, slug).to_dict()
    data.pop("generated_at")
    return data


def _sent_issue(settings, engine, slug: str, hours_ago: int, spread_minutes: int = 0) -> int:
    """Queue and send an issue to the list (Maildir), then spread its sent times over some minutes."""
    queued = service.queue_issue(engine, settings, make_compiled(slug), "shared-services")
    service.send_queued(engine, settings, [queued.send_id], processes=1)
    with session_scope(engine) as session:
        ids = session.exec(select(Delivery.id).where(Delivery.issue_id == queued.issue_id)
                           .order_by(Delivery.id)).all()
        base = utcnow() - timedelta(hours=hours_ago)
        for i, did in enumerate(ids):
            session.execute(update(Delivery).where(Delivery.id == did).values(
                sent_at=base + timedelta(minutes=(i * spread_minutes) % 300, seconds=i % 7, microseconds=i * 997)))
    return queued.issue_id


@pytest.fixture
def world(settings, engine):
    list_id = add_list(engine)
    add_subscribers(engine, list_id, 30)
    old = _sent_issue(settings, engine, "2026-01-old", 10, spread_minutes=11)
    with session_scope(engine) as session:
        first, second = session.exec(select(Delivery).where(Delivery.issue_id == old)
                                     .order_by(Delivery.id).limit(2)).all()
        second.state, second.smtp_code, second.last_error = DeliveryState.FAILED, 550, "5.1.1 no such user"
        session.add(second)
        session.add(Bounce(subscriber_id=second.subscriber_id, issue_id=old, delivery_id=second.id,
                           permanent=True, status_code="550", diagnostic="no such user"))
        # An asynchronous DSN for a message the server had accepted: evidence on a sent row.
        session.add(Bounce(subscriber_id=first.subscriber_id, issue_id=old, delivery_id=first.id,
                           permanent=False, status_code="4.2.2", diagnostic="mailbox full"))
    add_subscribers(engine, list_id, 5, start=30)
    new = _sent_issue(settings, engine, "2026-02-new", 2)
    return {"old": old, "new": new, "first_subscriber": first.subscriber_id}


def test_compaction_keeps_every_report_figure_identical(settings, engine, world):
    before_old, before_new = _figures(engine, "2026-01-old"), _figures(engine, "2026-02-new")
    assert before_old["sent"] == 29 and before_old["failed"] == 1 and len(before_old["timeline"]) > 3
    done = retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    assert {(d.slug, d.rows) for d in done} == {("2026-01-old", 29), ("2026-02-new", 35)}
    assert _figures(engine, "2026-01-old") == before_old
    assert _figures(engine, "2026-02-new") == before_new
    with session_scope(engine) as session:
        assert service.issue_status(session, "2026-01-old").counts[DeliveryState.SENT] == 29
    with session_scope(engine) as session:
        left = session.exec(select(Delivery.state, func.count()).group_by(Delivery.state)).all()
        assert dict(left) == {DeliveryState.FAILED: 1}
        bounces = session.exec(select(Bounce.subscriber_id, Bounce.delivery_id).order_by(Bounce.id)).all()
        assert len(bounces) == 2 and bounces[0][1] is not None and bounces[1][1] is None


def test_each_person_keeps_their_last_issue_and_count(settings, engine, world):
    retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    with session_scope(engine) as session:
        facts = {f.subscriber_id: f for f in session.exec(select(SubscriberDelivery)).all()}
    assert len(facts) == 35
    assert {f.last_issue_id for f in facts.values()} == {world["new"]}
    assert sorted({f.compacted_sent for f in facts.values()}) == [1, 2]


def test_compacting_twice_changes_nothing_and_recent_issues_are_left(settings, engine, world):
    assert retention.compact(engine, timedelta(days=90)) == []  # sent minutes ago: too recent
    retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    with session_scope(engine) as session:
        tallies = session.exec(select(func.count()).select_from(DeliveryTally)).one()
    before = _figures(engine, "2026-01-old")
    assert retention.compact(engine, timedelta(days=90), now=utcnow() + LATER) == []
    with session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(DeliveryTally)).one() == tallies
    assert _figures(engine, "2026-01-old") == before


def test_an_issue_with_rows_still_open_is_not_compacted(settings, engine, world):
    with session_scope(engine) as session:
        row = session.exec(select(Delivery).where(Delivery.issue_id == world["new"])).first()
        row.state = DeliveryState.DEFERRED
        session.add(row)
    done = retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    assert [d.slug for d in done] == ["2026-01-old"]


def test_a_compacted_issue_cannot_be_queued_again(settings, engine, world):
    retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    with pytest.raises(StateError, match="compacted"):
        service.queue_issue(engine, settings, make_compiled("2026-01-old"), "shared-services")


@pytest.mark.parametrize("age", ["90", "d", "-3d", "90 days", "1.5d"])
def test_an_unreadable_age_is_refused_naming_it(age):
    with pytest.raises(ConfigError, match="older-than"):
        retention.parse_age(age)


def test_ages_in_hours_days_and_weeks():
    assert [retention.parse_age(a) for a in ("36h", "90d", "2w")] == [
        timedelta(hours=36), timedelta(days=90), timedelta(weeks=2)]


def test_the_command_compacts_and_an_unreadable_age_is_one_clear_error(settings, engine, world, tmp_path):
    from typer.testing import CliRunner

    from bulletin.cli import app

    env = {"BULLETIN_DATABASE_URL": settings.effective_database_url, "COLUMNS": "200"}
    bad = CliRunner().invoke(app, ["-w", str(settings.workspace), "db", "compact", "--older-than", "soon"], env=env)
    assert bad.exit_code != 0 and "older-than" in (bad.output + str(bad.exception))
    fresh = CliRunner().invoke(app, ["-w", str(settings.workspace), "db", "compact", "--older-than", "90d"], env=env)
    assert fresh.exit_code == 0 and "0 issue(s) compacted" in fresh.output
    hours = CliRunner().invoke(app, ["-w", str(settings.workspace), "db", "compact", "--older-than", "1h"], env=env)
    assert hours.exit_code == 0 and "2026-01-old: 29 sent rows compacted" in hours.output
