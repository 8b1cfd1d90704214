"""The preference centre: choose bulletins, edit the profile, export everything, erase."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bulletin.audience.lifecycle import complain, mark_bounced, set_state, subscribe, suppress
from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.models import Subscriber, SubscriberEvent, Subscription
from tests.web.conftest import CSRF_RE, confirm_by_press, confirm_link, list_id, outbox, path_of


@pytest.fixture
def member(db: Session) -> int:
    sub = subscribe(db, "prefs@example.org", [list_id(db, "shared-services")], name="Pat", organisation="Old Council",
                    confirmed=True, source="cli", actor="t")
    db.commit()
    assert sub.id is not None
    return sub.id


def _url(settings: Settings, sid: int) -> str:
    return path_of(Links.for_settings(settings).preferences_url(sid))


def _token(client: TestClient, url: str) -> str:
    return CSRF_RE.search(client.get(url).text).group(1)  # type: ignore[union-attr]


def _states(db: Session, sid: int) -> dict[int, str]:
    db.expire_all()
    return {r.list_id: r.state for r in db.exec(select(Subscription).where(Subscription.subscriber_id == sid)).all()}


def test_page_shows_the_lists_and_profile(client: TestClient, synced: Settings, member: int) -> None:
    page = client.get(_url(synced, member))
    assert page.status_code == 200
    assert "prefs@example.org" in page.text and 'value="Old Council"' in page.text
    assert 'id="list-shared-services" name="list" value="shared-services" checked' in page.text
    assert 'id="list-workforce" name="list" value="workforce">' in page.text
    assert "Tell a colleague" in page.text and f"{synced.public_base_url}/refer/" in page.text


def test_saving_leaves_at_once_joins_by_mailed_confirmation_and_updates_the_profile(
        client: TestClient, synced: Settings, db: Session, member: int) -> None:
    url = _url(synced, member)
    resp = client.post(url, data={"csrf_token": _token(client, url), "list": ["workforce", "productivity"],
                                  "name": "Pat Q", "organisation": "New Council"})
    assert resp.status_code == 200 and "have been saved" in resp.text
    states = _states(db, member)
    assert states[list_id(db, "shared-services")] == "unsubscribed"
    assert states[list_id(db, "workforce")] == "pending"  # the link is not the mailbox: it confirms nothing
    assert states[list_id(db, "productivity")] == "pending"
    assert "We have emailed a link to prefs@example.org to confirm" in resp.text
    mails = outbox(synced)
    assert len(mails) == 1 and mails[0]["To"] == "prefs@example.org"
    assert confirm_by_press(client, path_of(confirm_link(mails[0]))).status_code == 200
    states = _states(db, member)
    assert states[list_id(db, "workforce")] == states[list_id(db, "productivity")] == "confirmed"
    sub = db.get(Subscriber, member)
    assert sub is not None and (sub.name, sub.organisation) == ("Pat Q", "New Council")
    profile = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member,
                                                    SubscriberEvent.kind == "profile")).one()
    assert profile.detail == {"fields": ["name", "organisation"]} and profile.source == "web"


def test_a_forwarded_footer_link_cannot_put_its_owner_back_on_a_list_they_left(
        client: TestClient, synced: Settings, db: Session, member: int) -> None:
    """Whoever a bulletin was forwarded to holds its preferences link. Ticking the list the owner
    unsubscribed from only mails the owner a confirmation; nothing is sent to them until they press it,
    and saving again within the window mails nothing more."""
    url = _url(synced, member)
    shared = list_id(db, "shared-services")
    client.post(url, data={"csrf_token": _token(client, url), "list": []})
    assert _states(db, member)[shared] == "unsubscribed"
    resp = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"]})
    assert resp.status_code == 200 and _states(db, member)[shared] == "pending"
    assert len(outbox(synced)) == 1
    again = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"],
                                   "name": "Pat"})
    assert again.status_code == 200 and len(outbox(synced)) == 1
    assert _states(db, member)[shared] == "pending"
    events = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member,
                                                   SubscriberEvent.list_id == shared)).all()
    assert "confirmed" not in [e.new_state for e in events[1:]]  # only the first, the CLI's


def test_saving_needs_csrf(client: TestClient, synced: Settings, db: Session, member: int) -> None:
    url = _url(synced, member)
    client.get(url)
    assert client.post(url, data={"list": []}).status_code == 403
    assert _states(db, member)[list_id(db, "shared-services")] == "confirmed"


def test_bad_fields_are_refused_and_change_nothing(client: TestClient, synced: Settings, db: Session, member: int) -> None:
    url = _url(synced, member)
    token = _token(client, url)
    assert client.post(url, data={"csrf_token": token, "name": "Pat\nX"}).status_code == 400
    assert client.post(url, data={"csrf_token": token, "organisation": "o" * 300}).status_code == 400
    assert client.post(url, data={"csrf_token": token, "list": "no-such-list"}).status_code == 400
    assert _states(db, member)[list_id(db, "shared-services")] == "confirmed"
    db.expire_all()
    assert db.get(Subscriber, member).name == "Pat"  # type: ignore[union-attr]


def test_suppressed_person_cannot_subscribe_here(client: TestClient, synced: Settings, db: Session, member: int) -> None:
    suppress(db, member, "manual", source="cli", actor="t")
    db.commit()
    url = _url(synced, member)
    page = client.get(url)
    assert "blocked" in page.text
    client.post(url, data={"csrf_token": _token(client, url), "list": ["workforce"]})
    assert list_id(db, "workforce") not in _states(db, member)


def test_bad_links_are_refused(client: TestClient, synced: Settings, member: int) -> None:
    good = _url(synced, member)
    assert client.get(good[:-2] + "xx").status_code == 400
    unsub = Links.for_settings(synced).unsubscribe_url(member, 1).rsplit("/", 1)[1]
    assert client.get(f"/preferences/{unsub}").status_code == 400
    assert client.get(_url(synced, 999_999)).status_code == 400


def test_the_footer_link_cannot_export_or_erase(client: TestClient, synced: Settings, db: Session, member: int) -> None:
    url = _url(synced, member)
    token = _token(client, url)
    assert client.get(url + "/export.json").status_code in (404, 405)
    assert client.post(url + "/erase", data={"csrf_token": token, "confirm": "yes"}).status_code in (404, 405)
    page = client.get(url).text
    assert "export.json" not in page and "Email me my data" in page and "Erase me" in page
    db.expire_all()
    assert db.get(Subscriber, member).email == "prefs@example.org"  # type: ignore[union-attr]


def test_members_only_lists_are_offered_only_to_their_members(client: TestClient, synced: Settings, db: Session,
                                                              member: int) -> None:
    url = _url(synced, member)
    assert 'value="finance"' not in client.get(url).text
    assert client.post(url, data={"csrf_token": _token(client, url), "list": ["finance"]}).status_code == 400
    subscribe(db, "prefs@example.org", [list_id(db, "finance")], confirmed=True, source="cli", actor="t")
    db.commit()
    assert 'value="finance" checked' in client.get(url).text


def test_share_links_are_offered_only_for_lists_a_colleague_can_join(client: TestClient, synced: Settings,
                                                                      db: Session, member: int) -> None:
    """/refer/ signs up only to public lists: a link for a members-only one would refuse the colleague."""
    subscribe(db, "prefs@example.org", [list_id(db, "finance")], confirmed=True, source="cli", actor="t")
    db.commit()
    page = client.get(_url(synced, member)).text
    shared = re.findall(r'href="https?://[^"]+(/refer/[^"]+)"', page)
    assert len(shared) == 1 and "Finance" not in page.split('id="share-h"', 1)[1].split("</section>", 1)[0]
    assert client.get(shared[0]).status_code == 200
    finance = Links.for_settings(synced).referral_url(member, list_id(db, "finance"))
    assert client.get(path_of(finance)).status_code == 400  # what the link would have done


def _left_a_minute_ago(db: Session, sid: int) -> None:
    """Backdate the leaving event: a confirmation link signed in the same second would count as older (stale)."""
    from datetime import timedelta

    for ev in db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sid)).all():
        ev.at = ev.at - timedelta(minutes=1)
        db.add(ev)
    db.commit()


@pytest.mark.parametrize("how", ["bounced", "complained"])
def test_a_list_left_by_bounce_or_complaint_is_rejoined_only_by_a_fresh_opt_in(
        client: TestClient, synced: Settings, db: Session, member: int, how: str) -> None:
    """The footer link once moved a bounced or complained subscription straight back to confirmed.

    `complained` here is a complaint whose suppression staff have since lifted (a complaint suppresses
    the address, and a suppressed address cannot rejoin at all: the next test)."""
    shared = list_id(db, "shared-services")
    if how == "bounced":
        mark_bounced(db, member, list_id=shared, source="inbound", actor="test")
    else:
        set_state(db, member, shared, "complained", kind="complaint", source="inbound", actor="test")
    db.commit()
    _left_a_minute_ago(db, member)
    url = _url(synced, member)
    resp = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"]})
    assert resp.status_code == 200
    assert _states(db, member)[shared] == how  # nothing is sent to them yet
    assert "We have emailed a link to prefs@example.org to confirm" in resp.text
    assert "Tick it and save, and we will email you a link to confirm" in client.get(url).text
    mails = outbox(synced)
    assert len(mails) == 1 and mails[0]["To"] == "prefs@example.org"
    again = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"]})
    assert "a short while ago" in again.text and len(outbox(synced)) == 1  # no second mail in the window
    asked = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member,
                                                  SubscriberEvent.kind == "rejoin_requested")).all()
    assert [e.detail["state"] for e in asked] == [how, how] and all(e.source == "web" for e in asked)
    assert confirm_by_press(client, path_of(confirm_link(mails[0]))).status_code == 200
    assert _states(db, member)[shared] == "confirmed"


def test_a_suppressed_address_cannot_rejoin_after_a_complaint(client: TestClient, synced: Settings, db: Session,
                                                               member: int) -> None:
    complain(db, member, source="inbound", actor="test")
    db.commit()
    url = _url(synced, member)
    assert "blocked from our mailings" in client.get(url).text
    resp = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"]})
    assert resp.status_code == 200 and "We have emailed" not in resp.text
    assert _states(db, member)[list_id(db, "shared-services")] == "complained"
    assert outbox(synced) == []


def _window_passes(db: Session, member: int) -> None:
    """As if an hour had passed: every time stamp of the person's subscriptions moves back by one."""
    db.expire_all()
    rows = db.exec(select(Subscription).where(Subscription.subscriber_id == member)).all()
    assert any(r.confirmation_sent_at is not None for r in rows)
    for row in rows:
        row.updated_at = row.updated_at - timedelta(hours=1)
        if row.confirmation_sent_at is not None:
            row.confirmation_sent_at = row.confirmation_sent_at - timedelta(hours=1)
        db.add(row)
    for ev in db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member)).all():
        ev.at = ev.at - timedelta(hours=1)  # links carry whole seconds: a leave in this second is "after" them
        db.add(ev)
    db.commit()


def test_a_list_ticked_while_throttled_can_still_be_confirmed(client: TestClient, synced: Settings, db: Session,
                                                               member: int) -> None:
    url = _url(synced, member)
    client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services", "workforce"]})
    first = outbox(synced)
    assert len(first) == 1  # names Workforce only
    resp = client.post(url, data={"csrf_token": _token(client, url),
                                  "list": ["shared-services", "workforce", "productivity"]})
    assert "save this page again in a little while to have a link sent for Productivity and Digital e-bulletin" in resp.text
    productivity = list_id(db, "productivity")
    assert _states(db, member)[productivity] == "pending"
    _window_passes(db, member)
    # "save again later": the same ticks, after the window
    client.post(url, data={"csrf_token": _token(client, url),
                           "list": ["shared-services", "workforce", "productivity"]})
    mails = outbox(synced)
    assert len(mails) == 2, "saving again after the window mailed no link for the throttled list"
    confirm_by_press(client, path_of(confirm_link(mails[1])))
    assert _states(db, member)[productivity] == "confirmed"


def test_the_earlier_link_the_page_points_to_confirms_a_list_left_and_ticked_again(
        client: TestClient, synced: Settings, db: Session, member: int) -> None:
    """Tick Workforce (link L1), untick it, tick it again within the window. L1 is stale for Workforce
    (left after L1 was issued), so the page must not send the person to it: saving again later mails a
    new link, which confirms it. (Review finding: nothing could confirm it.)"""
    url = _url(synced, member)
    workforce = list_id(db, "workforce")
    client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services", "workforce"]})
    client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"]})
    resp = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services", "workforce"]})
    assert "a short while ago" in resp.text and "use that one" not in resp.text
    mails = outbox(synced)
    assert len(mails) == 1
    confirm_by_press(client, path_of(confirm_link(mails[0])))
    assert _states(db, member)[workforce] == "pending"  # stale for it, as the page no longer implies
    _window_passes(db, member)
    client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services", "workforce"]})
    mails = outbox(synced)
    assert len(mails) == 2, "the earlier link is stale for Workforce and saving again mails no new one"
    confirm_by_press(client, path_of(confirm_link(mails[1])))
    assert _states(db, member)[workforce] == "confirmed"


def test_a_pending_person_saving_their_name_is_not_mailed_again(client: TestClient, synced: Settings,
                                                                  db: Session, member: int) -> None:
    url = _url(synced, member)
    client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services", "workforce"]})
    _window_passes(db, member)
    resp = client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services", "workforce"],
                                  "name": "Pat Q"})
    assert resp.status_code == 200 and "We have emailed" not in resp.text
    assert len(outbox(synced)) == 1 and _states(db, member)[list_id(db, "workforce")] == "pending"


def test_only_lists_that_need_a_mailed_link_say_so(client: TestClient, synced: Settings, member: int) -> None:
    """The hint is per list: a list the person is on says nothing; one they would join does."""
    page = client.get(_url(synced, member)).text
    hint = "we will email you a link to confirm before sending anything"
    shared = page.split('id="list-shared-services"', 1)[1].split("</label>", 1)[0]
    workforce = page.split('id="list-workforce"', 1)[1].split("</label>", 1)[0]
    assert hint not in shared and hint in workforce


def test_a_suppressed_person_editing_their_name_is_not_unsubscribed_from_everything(
        client: TestClient, synced: Settings, db: Session, member: int) -> None:
    """The page once disabled every checkbox of a suppressed address and browsers do not submit disabled
    fields, so saving only a new name read as "untick every list" and left them all (review finding).
    The box of a list it is on is enabled now, and posted ticked."""
    suppress(db, member, "manual", source="cli", actor="t")
    db.commit()
    url = _url(synced, member)
    page = client.get(url).text
    assert 'value="shared-services" checked>' in page and 'value="workforce" disabled>' in page
    # what a browser posts: the enabled, ticked box; the disabled one is left out
    client.post(url, data={"csrf_token": _token(client, url), "list": ["shared-services"], "name": "Pat Q",
                           "organisation": ""})
    assert _states(db, member)[list_id(db, "shared-services")] == "confirmed"
    db.expire_all()
    assert db.get(Subscriber, member).name == "Pat Q"  # type: ignore[union-attr]


def test_a_suppressed_person_can_still_leave_a_list_but_join_none(
        client: TestClient, synced: Settings, db: Session, member: int) -> None:
    """Suppressed, the address is sent nothing, but a wish to leave is the person's to record: it
    was refused (every box disabled), so lifting the block later sent them a bulletin they had left."""
    suppress(db, member, "manual", source="cli", actor="t")
    db.commit()
    url = _url(synced, member)
    # unticks shared-services; a forged post ticks workforce, whose box the page disabled
    client.post(url, data={"csrf_token": _token(client, url), "list": ["workforce"], "name": "Pat",
                           "organisation": "Old Council"})
    states = _states(db, member)
    assert states[list_id(db, "shared-services")] == "unsubscribed"
    assert list_id(db, "workforce") not in states
    assert outbox(synced) == []  # no confirmation mailed to a suppressed address
    left = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member,
                                                 SubscriberEvent.new_state == "unsubscribed")).one()
    assert left.source == "web"
