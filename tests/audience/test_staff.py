"""Staff operations by address: add, show, search, unsubscribe, suppress, erase."""

from __future__ import annotations

import pytest

from bulletin.audience import staff
from bulletin.db import session_scope
from bulletin.errors import NotFound, StateError


def test_add_then_profile_shows_everything_held_with_the_consent_log(engine, lists):
    with session_scope(engine) as s:
        staff.add_subscriber(s, "Pat@Example.org", ["finance", "workforce"], name="Pat", organisation="Eastvale",
                             actor="cli:staff")
    with session_scope(engine) as s:
        p = staff.profile(s, "pat@example.org")
    assert (p.email, p.name, p.organisation, p.suppressed) == ("pat@example.org", "Pat", "Eastvale", False)
    assert {x["list"]: x["state"] for x in p.subscriptions} == {"finance": "confirmed", "workforce": "confirmed"}
    assert [e.kind for e in p.events] == ["created", "subscribe", "subscribe"]
    assert all(e.actor == "cli:staff" and e.source == "cli" for e in p.events)
    as_dict = p.to_dict()
    assert isinstance(as_dict["created_at"], str) and as_dict["events"][1]["list"] in ("finance", "workforce")


def test_add_needs_a_known_list(engine, lists):
    with session_scope(engine) as s:
        with pytest.raises(StateError):
            staff.add_subscriber(s, "x@example.org", [], actor="t")
        with pytest.raises(NotFound, match="nope"):
            staff.add_subscriber(s, "x@example.org", ["nope"], actor="t")


def test_unsubscribe_suppress_and_erase_by_address(engine, lists):
    with session_scope(engine) as s:
        staff.add_subscriber(s, "q@example.org", ["finance", "workforce"], actor="t")
        assert staff.unsubscribe_address(s, "Q@example.org", "finance", actor="t") == 1
        assert staff.unsubscribe_address(s, "q@example.org", None, actor="t") == 1
        assert staff.suppress_address(s, "never@example.org", "asked by phone", actor="t") is True
        assert staff.suppress_address(s, "never@example.org", "again", actor="t") is False
        with pytest.raises(StateError):
            staff.suppress_address(s, "x@example.org", "two\nlines", actor="t")
        sid = staff.erase_address(s, "q@example.org", actor="dpo")
    with session_scope(engine) as s:
        with pytest.raises(NotFound, match="q@example.org"):
            staff.profile(s, "q@example.org")
        p = staff.profile(s, f"#{sid}")
        assert p.email is None and p.suppressed and p.erased_at is not None


def test_search_filters_and_paginates(engine, lists):
    with session_scope(engine) as s:
        for i in range(7):
            staff.add_subscriber(s, f"officer{i}@riverside.example.org", ["finance"], name=f"Officer {i}",
                                 organisation="Riverside", actor="t")
        staff.add_subscriber(s, "other@example.org", ["workforce"], name="Other", actor="t")
        staff.unsubscribe_address(s, "officer0@riverside.example.org", None, actor="t")
    with session_scope(engine) as s:
        page = staff.search(s, list_slug="finance", page=2, per_page=3)
        assert page.total == 7 and [r.email for r in page.rows] == [
            f"officer{i}@riverside.example.org" for i in (3, 4, 5)]
        assert staff.search(s, state="unsubscribed").total == 1
        assert staff.search(s, text="RIVERSIDE", state="confirmed").total == 6
        assert staff.search(s, list_slug="workforce").rows[0].lists == {"workforce": "confirmed"}
        with pytest.raises(StateError):
            staff.search(s, state="happy")
