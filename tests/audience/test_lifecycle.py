"""The subscription lifecycle and its consent log, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bulletin.audience import lifecycle as L
from bulletin.audience.subscribers import (
    confirmed_subscribers,
    events_of,
    find_subscriber,
    get_list,
    is_suppressed,
)
from bulletin.db import session_scope
from bulletin.errors import AddressError, ContentError, NotFound, StateError
from bulletin.models import Subscriber, SubscriberEvent, Subscription, Suppression

WEB = {"source": "web", "actor": "signup-form", "ip": "192.0.2.10", "user_agent": "Firefox/128"}


def _states(s, subscriber_id):
    rows = s.exec(select(Subscription).where(Subscription.subscriber_id == subscriber_id)).all()
    return {r.list_id: r.state for r in rows}


def test_subscribe_creates_a_pending_subscriber_and_logs_who_where_and_how(engine, lists):
    with session_scope(engine) as s:
        sub = L.subscribe(s, " Jane.Doe@Example.ORG ", [lists["shared-services"]], name="Jane Doe",
                          confirmed=False, **WEB)
    with session_scope(engine) as s:
        found = find_subscriber(s, "jane.doe@example.org")
        assert found is not None and found.id == sub.id and found.email == "jane.doe@example.org"
        assert _states(s, sub.id) == {lists["shared-services"]: "pending"}
        events = events_of(s, sub.id)
        assert [(e.kind, e.old_state, e.new_state) for e in events] == [
            ("created", None, None), ("subscribe", None, "pending")]
        assert all(e.ip == "192.0.2.10" and e.user_agent == "Firefox/128" and e.source == "web" for e in events)
        assert events[1].list_id == lists["shared-services"]
        assert confirmed_subscribers(s, lists["shared-services"]) == []


def test_confirming_moves_pending_to_confirmed_and_a_confirmed_subscription_is_never_downgraded(engine, lists):
    lid = lists["workforce"]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "a@example.org", [lid], name="A", confirmed=False, **WEB)
        assert [e.kind for e in L.confirm(s, sub.id, [lid], **WEB)] == ["confirm"]
        assert L.confirm(s, sub.id, [lid], **WEB) == []
        L.subscribe(s, "a@example.org", [lid], confirmed=False, **WEB)
        assert _states(s, sub.id) == {lid: "confirmed"}
        assert confirmed_subscribers(s, lid) == [(sub.id, "a@example.org", "A")]
        sub_row = s.exec(select(Subscription)).one()
        assert sub_row.confirmed_at is not None


def test_subscribing_twice_merges_into_one_person_and_adds_lists(engine, lists):
    with session_scope(engine) as s:
        a = L.subscribe(s, "B@example.org", [lists["finance"]], confirmed=True, source="cli", actor="staff")
        b = L.subscribe(s, "b@EXAMPLE.org", [lists["finance"], lists["productivity"]], organisation="Eastvale",
                        confirmed=True, source="cli", actor="staff")
        assert a.id == b.id
        assert len(s.exec(select(Subscriber)).all()) == 1
        assert set(_states(s, a.id).values()) == {"confirmed"} and len(_states(s, a.id)) == 2
        assert b.organisation == "Eastvale"


@pytest.mark.parametrize("how", ["unsubscribe", "bounce", "complain"])
def test_people_who_said_no_are_never_resubscribed(engine, lists, how):
    lid = lists["shared-services"]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "no@example.org", [lid], confirmed=True, source="cli", actor="staff")
        if how == "unsubscribe":
            L.unsubscribe(s, sub.id, lid, source="web", actor="link")
        elif how == "bounce":
            L.mark_bounced(s, sub.id, source="inbound", actor="dsn")
        else:
            L.complain(s, sub.id, source="inbound", actor="arf")
    with session_scope(engine) as s, pytest.raises(StateError) as info:
        L.subscribe(s, "no@example.org", [lid], confirmed=True, source="import", actor="staff")
    assert "no@example.org" in str(info.value)


def test_an_unsubscribed_person_may_ask_again_when_the_caller_says_so(engine, lists):
    lid = lists["shared-services"]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "back@example.org", [lid], confirmed=True, source="cli", actor="staff")
        L.unsubscribe(s, sub.id, None, source="web", actor="link")
        L.subscribe(s, "back@example.org", [lid], confirmed=False, resubscribe=True, **WEB)
        assert _states(s, sub.id) == {lid: "pending"}
        L.mark_bounced(s, sub.id, source="inbound", actor="dsn")
        with pytest.raises(StateError):
            L.subscribe(s, "back@example.org", [lid], confirmed=False, resubscribe=True, **WEB)


def test_set_state_is_a_no_op_returning_none_when_already_there(engine, lists):
    lid = lists["finance"]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "c@example.org", [lid], confirmed=True, source="cli", actor="staff")
        before = len(events_of(s, sub.id))
        assert L.set_state(s, sub.id, lid, "confirmed", kind="confirm", source="cli", actor="x") is None
        ev = L.set_state(s, sub.id, lid, "bounced", kind="bounce", source="delivery", actor="smtp", issue_id=None,
                         detail={"code": 550})
        assert isinstance(ev, SubscriberEvent) and (ev.old_state, ev.new_state) == ("confirmed", "bounced")
        assert len(events_of(s, sub.id)) == before + 1


def test_set_state_refuses_unknown_states_lists_and_subscribers(engine, lists):
    lid = lists["finance"]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "d@example.org", [lid], confirmed=True, source="cli", actor="staff")
        with pytest.raises(StateError):
            L.set_state(s, sub.id, lid, "maybe", kind="x", source="cli", actor="x")
        with pytest.raises(NotFound):
            L.set_state(s, sub.id, 9999, "confirmed", kind="x", source="cli", actor="x")
        with pytest.raises(NotFound):
            L.set_state(s, 9999, lid, "confirmed", kind="x", source="cli", actor="x")
        with pytest.raises(StateError):
            L.record_event(s, sub.id, "note", source="carrier-pigeon", actor="x")


def test_unsubscribe_from_one_list_or_all_lists_is_idempotent(engine, lists):
    ids = [lists["shared-services"], lists["workforce"], lists["finance"]]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "e@example.org", ids, confirmed=True, source="cli", actor="staff")
        assert len(L.unsubscribe(s, sub.id, lists["workforce"], source="web", actor="link", ip="192.0.2.1")) == 1
        assert _states(s, sub.id)[lists["workforce"]] == "unsubscribed"
        assert _states(s, sub.id)[lists["finance"]] == "confirmed"
        assert len(L.unsubscribe(s, sub.id, None, source="web", actor="link")) == 2
        assert L.unsubscribe(s, sub.id, None, source="web", actor="link") == []
        assert set(_states(s, sub.id).values()) == {"unsubscribed"}


def test_a_complaint_marks_every_list_and_suppresses_the_address(engine, lists):
    with session_scope(engine) as s:
        sub = L.subscribe(s, "f@example.org", [lists["finance"], lists["workforce"]], confirmed=True,
                          source="cli", actor="staff")
        L.unsubscribe(s, sub.id, lists["workforce"], source="web", actor="link")
        events = L.complain(s, sub.id, source="inbound", actor="arf", detail={"feedback_type": "abuse"})
        assert {e.new_state for e in events} == {"complained"} and len(events) == 2
        assert is_suppressed(s, "F@example.org")
        assert confirmed_subscribers(s, lists["finance"]) == []


def test_suppressing_an_unknown_address_blocks_a_later_signup(engine, lists):
    with session_scope(engine) as s:
        L.suppress(s, "Stranger@Example.org", "legal request", source="cli", actor="staff")
        L.suppress(s, "stranger@example.org", "again", source="cli", actor="staff")
        assert len(s.exec(select(Suppression)).all()) == 1
    with session_scope(engine) as s, pytest.raises(StateError):
        L.subscribe(s, "stranger@example.org", [lists["finance"]], confirmed=True, source="web", actor="form")


def test_suppressed_subscribers_are_left_out_of_sends_even_if_still_confirmed(engine, lists):
    lid = lists["shared-services"]
    with session_scope(engine) as s:
        keep = L.subscribe(s, "keep@example.org", [lid], confirmed=True, source="cli", actor="staff")
        gone = L.subscribe(s, "gone@example.org", [lid], confirmed=True, source="cli", actor="staff")
        L.suppress(s, gone.id, "staff decision", source="cli", actor="staff")
        assert [r[0] for r in confirmed_subscribers(s, lid)] == [keep.id]
        assert [e.kind for e in events_of(s, gone.id)][-1] == "suppress"


def test_erasure_removes_personal_data_but_keeps_the_consent_log_shape_and_a_suppression(engine, lists):
    lid = lists["shared-services"]
    with session_scope(engine) as s:
        sub = L.subscribe(s, "erase.me@example.org", [lid], name="Erase Me", organisation="Westmoor",
                          confirmed=False, **WEB)
        s.get(Subscriber, sub.id).attributes = {"role": "Payroll"}
        L.confirm(s, sub.id, [lid], **WEB)
    with session_scope(engine) as s:
        L.erase(s, sub.id, source="cli", actor="dpo")
    with session_scope(engine) as s:
        row = s.get(Subscriber, sub.id)
        assert (row.email, row.name, row.organisation, row.attributes) == (None, "", "", {})
        assert row.erased_at is not None and row.suppressed
        events = events_of(s, sub.id)
        assert [e.kind for e in events][-3:] == ["unsubscribe", "suppress", "erase"]
        assert all(e.ip is None and e.user_agent is None for e in events)
        assert find_subscriber(s, "erase.me@example.org") is None
        assert is_suppressed(s, "Erase.Me@example.org")
        assert confirmed_subscribers(s, lid) == []
    with session_scope(engine) as s, pytest.raises(StateError):
        L.subscribe(s, "erase.me@example.org", [lid], confirmed=True, source="import", actor="staff")


def test_bad_input_is_rejected_at_the_edge(engine, lists):
    with session_scope(engine) as s:
        with pytest.raises(AddressError):
            L.subscribe(s, "not-an-address", [lists["finance"]], confirmed=True, source="web", actor="form")
        with pytest.raises(ContentError) as info:
            L.subscribe(s, "g@example.org", [lists["finance"]], name="G\r\nBcc: victim@example.org",
                        confirmed=True, source="web", actor="form")
        assert "name" in str(info.value)
        with pytest.raises(NotFound) as info:
            get_list(s, "no-such-list")
        assert "no-such-list" in str(info.value)
        assert s.exec(select(Subscriber)).all() == []


def test_every_audience_function_has_one_home():
    from bulletin.audience import lifecycle, subscribers

    assert set(lifecycle.__all__).isdisjoint(subscribers.__all__)
    for module in (lifecycle, subscribers):
        for name in module.__all__:
            assert getattr(module, name).__module__ == module.__name__, f"{module.__name__}.{name} is a re-export"
    assert not hasattr(subscribers, "subscribe") and not hasattr(lifecycle, "confirmed_subscribers")


def test_erasure_also_blanks_the_persons_replies_bounces_and_stored_mail(engine, lists):
    from bulletin.models import Bounce, Feedback, InboundMessage

    with session_scope(engine) as s:
        sub = L.subscribe(s, "writer@example.org", [lists["finance"]], confirmed=True, source="cli", actor="t")
        other = L.subscribe(s, "other@example.org", [lists["finance"]], confirmed=True, source="cli", actor="t")
        for who, mid in ((sub, "<1@example.org>"), (other, "<2@example.org>")):
            msg = InboundMessage(message_id=mid, raw=b"From: " + who.email.encode() + b"\r\n\r\nHello",
                                 sha256="0" * 64, source="stdin", envelope_from=who.email, subscriber_id=who.id)
            s.add(msg)
            s.flush()
            s.add(Feedback(inbound_id=msg.id, subscriber_id=who.id, from_address=who.email, subject="Re: news",
                           visible_text="My phone is 01234", full_text="My phone is 01234"))
            s.add(Bounce(subscriber_id=who.id, inbound_id=msg.id, permanent=True,
                         diagnostic=f"550 {who.email} unknown"))
    with session_scope(engine) as s:
        L.erase(s, sub.id, source="cli", actor="dpo")
    with session_scope(engine) as s:
        mine = s.exec(select(Feedback).where(Feedback.subscriber_id == sub.id)).one()
        assert "writer" not in mine.from_address and mine.full_text == "" and mine.visible_text == ""
        raw = s.exec(select(InboundMessage).where(InboundMessage.subscriber_id == sub.id)).one()
        assert raw.raw == b"" and raw.envelope_from is None
        assert s.exec(select(Bounce).where(Bounce.subscriber_id == sub.id)).one().diagnostic == ""
        theirs = s.exec(select(Feedback).where(Feedback.subscriber_id == other.id)).one()
        assert theirs.full_text == "My phone is 01234" and theirs.from_address == "other@example.org"


def test_every_consent_event_is_one_log_line_without_the_persons_details(engine, lists):
    import io
    import json
    import logging

    from bulletin.logs import configure_logging

    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream)
    try:
        with session_scope(engine) as s:
            sub = L.subscribe(s, "log.me@example.org", [lists["shared-services"]], name="Lou Logger",
                            confirmed=True, source="cli", actor="staff")
            L.unsubscribe(s, int(sub.id), None, source="cli", actor="staff")
    finally:
        logging.getLogger("bulletin").removeHandler(handler)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    events = [r for r in records if r["event"] == "subscriber.event"]
    assert [e["kind"] for e in events][-1] == "unsubscribe"
    assert {e["subscriber_id"] for e in events} == {int(sub.id)}
    assert "Lou Logger" not in stream.getvalue() and "log.me@example.org" not in stream.getvalue()
