"""Review h30: `send.compacted_sent` (migration 0025) and `db compact`, attacked.

The first test failed on the code it was written against (commit b464f32); the last guards what held.
(The review's third finding, a ledger stamped with the reverted revision '0025' of commit 2d2990a,
is left out: that migration never left the session that reverted it, so no ledger carries it.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import retention
from bulletin.models import Delivery, Send, utcnow
from bulletin.statuses import DeliveryState
from tests.delivery.test_retention import LATER, _figures, world  # noqa: F401  (fixture)
from tests.delivery.test_retention_attacks import compact_meanwhile


def test_two_compactions_of_one_issue_at_once_compact_it_once_and_raise_nothing(settings, engine, world):  # noqa: F811
    """Two `bulletin db compact` runs (cron and a hand-run one) pick the same issue. The second's
    REPEATABLE READ snapshot still sees the rows the first has just folded away. `_compact_or_skip`
    expects PostgreSQL to refuse it with 40001, but when none of the issue's recipients had a
    `subscriber_delivery` row yet (any issue compacted for the first time) its INSERT of those rows
    fails with a unique violation (23505, IntegrityError), which escapes: the command dies with a
    traceback instead of leaving the issue to the run that did it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's single writer runs the two one after the other")
    before = _figures(engine, "2026-01-old")
    with session_scope(engine) as session:
        sent_rows = len(session.exec(select(Delivery.id).where(Delivery.issue_id == world["old"],
                                                               Delivery.state == DeliveryState.SENT)).all())
    other, state = create_engine(engine.url), {}

    def other_run() -> None:  # at our first write: our snapshot is taken, the other run now does it all
        state["other"] = retention.compact(other, timedelta(days=90), now=utcnow() + LATER)

    try:
        done = compact_meanwhile(engine, "INSERT INTO DELIVERY_TALLY", other_run)
    finally:
        other.dispose()
    assert "2026-01-old" in {d.slug for d in state["other"]}
    assert "2026-01-old" not in {d.slug for d in done}
    assert _figures(engine, "2026-01-old") == before
    with session_scope(engine) as session:
        kept = session.exec(select(Send.compacted_sent).where(Send.issue_id == world["old"])).all()
    assert list(kept) == [sent_rows]


def test_held_compacted_sent_adds_up_over_two_compactions_and_the_archive_and_feed_keep_the_issue(
        settings, engine, world):  # noqa: F811
    """Guard of what held: the per-send count survives a second compaction (rows resent after the
    first), an erasure, and reaches the list's archive and Atom feed when the send's status alone
    would not (a cancelled send)."""
    from sqlalchemy import update

    from bulletin.audience import staff
    from bulletin.delivery import archive, service
    from bulletin.delivery.feed import atom_feed
    from bulletin.forget import erase_everywhere
    from bulletin.statuses import SendStatus

    with session_scope(engine) as session:
        ids = session.exec(select(Delivery.id).where(Delivery.issue_id == world["old"],
                                                     Delivery.state == DeliveryState.SENT).order_by(Delivery.id)).all()
        session.execute(update(Delivery).where(Delivery.id.in_(ids[-3:])).values(state=DeliveryState.UNKNOWN))
    retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    with session_scope(engine) as session:
        send_ids = service.resume_issue(session, "2026-01-old", resend_unknown=True)
    service.send_queued(engine, settings, send_ids, processes=1)
    retention.compact(engine, timedelta(days=90), now=utcnow() + LATER)
    with session_scope(engine) as session:
        assert session.exec(select(Send.compacted_sent).where(Send.issue_id == world["old"])).all() == [len(ids)]
        session.execute(update(Send).where(Send.issue_id == world["old"]).values(status=SendStatus.CANCELLED))
    erase_everywhere(engine, settings, lambda s: staff.erase_address(s, "r5@example.org", actor="review"))
    with session_scope(engine) as session:
        assert "2026-01-old" in {e.slug for e in archive.public_issues(session)}
        page = archive.public_list_archive(session, "shared-services")
        assert "2026-01-old" in {e.slug for e in page.issues}
        assert archive.issue_page(session, "2026-01-old")
    feed = atom_feed(page, "https://news.example.org", fallback_updated=utcnow())
    assert b"https://news.example.org/archive/2026-01-old/" in feed
