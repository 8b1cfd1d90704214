"""The bounce policy (record_bounce): one point per day, hard bounces jump to the threshold, stale points expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bulletin.audience import lifecycle as L
from bulletin.audience.bounces import BouncePolicy, bounce_score, record_bounce
from bulletin.db import session_scope
from bulletin.models import Bounce, Subscription

POLICY = BouncePolicy(threshold=3, stale_after=timedelta(days=7))
DAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _subscriber(engine, lists) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return int(L.subscribe(s, "dana@example.org", list(lists.values()), confirmed=True, source="cli",
                               actor="test").id)


def _states(engine, sid: int) -> set[str]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        return {r.state for r in s.exec(select(Subscription).where(Subscription.subscriber_id == sid)).all()}


def test_soft_bounces_count_once_per_day_and_bounce_at_the_threshold(engine, lists):
    sid = _subscriber(engine, lists)
    with session_scope(engine) as s:
        for hour in range(5):
            record_bounce(s, sid, permanent=False, source="inbound", when=DAY + timedelta(hours=hour), policy=POLICY)
        assert bounce_score(s, sid) == 1
        second = record_bounce(s, sid, permanent=False, source="inbound", when=DAY + timedelta(days=1), policy=POLICY)
        assert (second.score, second.bounced) == (2, False)
    assert _states(engine, sid) == {"confirmed"}
    with session_scope(engine) as s:
        third = record_bounce(s, sid, permanent=False, source="inbound", when=DAY + timedelta(days=2), policy=POLICY)
        assert (third.score, third.counted, third.bounced) == (3, True, True)
    assert _states(engine, sid) == {"bounced"}


def test_a_hard_bounce_sets_the_score_to_the_threshold(engine, lists):
    sid = _subscriber(engine, lists)
    with session_scope(engine) as s:
        out = record_bounce(s, sid, permanent=True, source="delivery", when=DAY, policy=POLICY, status_code="5.1.1")
        assert (out.score, out.bounced) == (3, True)
    assert _states(engine, sid) == {"bounced"}


def test_old_points_expire_when_no_bounce_came_for_stale_after(engine, lists):
    sid = _subscriber(engine, lists)
    with session_scope(engine) as s:
        record_bounce(s, sid, permanent=False, source="inbound", when=DAY, policy=POLICY)
        record_bounce(s, sid, permanent=False, source="inbound", when=DAY + timedelta(days=1), policy=POLICY)
        late = record_bounce(s, sid, permanent=False, source="inbound", when=DAY + timedelta(days=10), policy=POLICY)
        assert (late.score, late.bounced) == (1, False)
    assert _states(engine, sid) == {"confirmed"}


def test_the_same_evidence_is_counted_once(engine, lists):
    from bulletin.models import Evidence

    sid = _subscriber(engine, lists)
    with session_scope(engine) as s:
        ev = Evidence(kind="bounce", address="dana@example.org", subscriber_id=sid, verified=True, auth="test")
        s.add(ev)
        s.flush()
        record_bounce(s, sid, permanent=True, source="inbound", evidence_id=ev.id, when=DAY, policy=POLICY)
        again = record_bounce(s, sid, permanent=True, source="inbound", evidence_id=ev.id, when=DAY, policy=POLICY)
        assert again.repeated and not again.bounced
        assert len(s.exec(select(Bounce).where(Bounce.subscriber_id == sid)).all()) == 1


def test_policy_defaults_come_from_the_settings(settings):
    policy = BouncePolicy.from_settings(settings)
    assert (policy.threshold, policy.stale_after) == (settings.bounce_score_threshold,
                                                      timedelta(days=settings.bounce_info_stale_after_days))
