from collections import Counter
from datetime import UTC, timedelta

import pytest

from bulletin.db import session_scope
from bulletin.errors import NotFound
from bulletin.report import issue_report
from bulletin.report.figures import MAX_POINTS, pick_bucket
from tests.report.ledger import generate


@pytest.fixture
def ledger(engine):
    return generate(engine)


def test_delivery_figures_match_the_ledger(engine, ledger):
    with session_scope(engine) as s:
        r = issue_report(s, "ours")
    st = ledger.states
    assert r.recipients == sum(st.values()) == 120
    assert (r.sent, r.deferred, r.failed) == (st.get("sent", 0), st.get("deferred", 0), st.get("failed", 0))
    assert r.pending == st.get("queued", 0) + st.get("claimed", 0)
    assert r.cancelled == st.get("cancelled", 0)


def test_bounces_complaints_and_unsubscribes_count_people_once(engine, ledger):
    with session_scope(engine) as s:
        r = issue_report(s, "ours")
    assert r.hard_bounces == len(ledger.hard) > 0
    assert r.soft_bounces == len(ledger.soft) > 0
    assert r.bounced == len(ledger.hard) + len(ledger.soft)
    assert r.complaints == len(ledger.complaints) > 0
    assert r.unsubscribes == len(ledger.unsubscribes) > 0
    attempted = sum(ledger.states.get(k, 0) for k in ("sent", "failed", "deferred", "unknown"))
    assert r.attempted == attempted > r.sent
    assert r.complaint_rate == pytest.approx(len(ledger.complaints) / attempted, abs=1e-6)
    assert r.hard_bounce_rate == pytest.approx(len(ledger.hard) / attempted, abs=1e-6)


def test_replies_by_block_follow_the_issue_blocks_then_unknown_then_untagged(engine, ledger):
    with session_scope(engine) as s:
        r = issue_report(s, "ours")
    got = [(b.anchor, b.heading, b.replies) for b in r.replies_by_block]
    ex = ledger.by_block
    assert got[:3] == [("intro", "Welcome", 0),
                       ("hear-from-you", "We want to hear from you", ex.get("hear-from-you", 0)),
                       ("events", "Events", ex.get("events", 0))]
    assert got[3:] == [("gone-block", "", ex["gone-block"]), ("", "(no block named)", ex[""])]
    assert r.replies == sum(ex.values())
    assert r.auto_replies == ledger.auto_replies > 0


def test_timeline_buckets_sent_and_replies_in_even_steps(engine, ledger):
    with session_scope(engine) as s:
        r = issue_report(s, "ours")
    assert sum(p.sent for p in r.timeline) == r.sent
    assert sum(p.replies for p in r.timeline) == r.replies
    everything = ledger.sent_times + ledger.reply_times
    assert (r.bucket, r.bucket_seconds) == pick_bucket(max(everything) - min(everything)) == ("hour", 3600)
    step = timedelta(seconds=r.bucket_seconds)
    assert all(b.at - a.at == step for a, b in zip(r.timeline, r.timeline[1:], strict=False))
    assert all(p.at.tzinfo is not None for p in r.timeline)
    assert len(r.timeline) <= MAX_POINTS
    first_hour = Counter(t.astimezone(UTC).replace(minute=0) for t in ledger.sent_times)
    assert r.timeline[0].sent == first_hour[r.timeline[0].at]


def test_bucket_is_the_finest_that_keeps_the_chart_readable():
    assert pick_bucket(timedelta(seconds=20)) == ("minute", 60)
    assert pick_bucket(timedelta(hours=2)) == ("5 minutes", 300)
    assert pick_bucket(timedelta(days=2)) == ("hour", 3600)
    assert pick_bucket(timedelta(days=30)) == ("day", 86400)
    assert pick_bucket(timedelta(days=3650)) == ("week", 604800)


def test_an_issue_with_nothing_sent_reports_zeros(engine, ledger):
    from bulletin.models import IssueRecord
    from tests.report.ledger import compiled

    with session_scope(engine) as s:
        s.add(IssueRecord(slug="draft", title="Draft", subject="S", compiled=compiled("draft").to_json(),
                          content_hash="0" * 64))
    with session_scope(engine) as s:
        r = issue_report(s, "draft")
    assert (r.recipients, r.sent, r.replies, r.complaint_rate) == (0, 0, 0, 0.0)
    assert r.timeline == ()


def test_unknown_issue_is_not_found_naming_the_slug(engine):
    with session_scope(engine) as s, pytest.raises(NotFound, match="no-such-issue"):
        issue_report(s, "no-such-issue")


def test_json_form_carries_every_figure(engine, ledger):
    import json

    with session_scope(engine) as s:
        r = issue_report(s, "ours")
    data = json.loads(r.to_json())
    assert data["sent"] == r.sent and data["hard_bounces"] == r.hard_bounces
    assert data["replies_by_block"][1]["anchor"] == "hear-from-you"
    assert len(data["timeline"]) == len(r.timeline)
