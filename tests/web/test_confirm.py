"""Confirmation links: confirm once with a consent record; expired, forged, wrong-purpose and replayed links change nothing."""

from __future__ import annotations

import time
from datetime import timedelta

import itsdangerous.timed
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from bulletin.audience.lifecycle import erase, subscribe, unsubscribe
from bulletin.audience.links import CONFIRM_MAX_AGE, Links
from bulletin.audience.subscribers import find_subscriber
from bulletin.config import Settings
from bulletin.models import SubscriberEvent, Subscription
from tests.web.conftest import confirm_by_press, confirm_link, list_id, outbox, path_of, signup


def _state(db: Session, sid: int, lid: int) -> str:
    db.expire_all()
    return db.exec(select(Subscription).where(Subscription.subscriber_id == sid, Subscription.list_id == lid)).one().state


def _events(db: Session, sid: int) -> list[SubscriberEvent]:
    db.expire_all()
    return list(db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sid)).all())


def _signed_up(client: TestClient, synced: Settings, db: Session, addr: str = "conf@example.org") -> tuple[int, int, str]:
    assert signup(client, addr).status_code == 200
    sub = find_subscriber(db, addr)
    assert sub is not None and sub.id is not None
    return sub.id, list_id(db, "shared-services"), path_of(confirm_link(outbox(synced)[-1]))


def test_link_confirms_and_records_consent(client: TestClient, synced: Settings, db: Session) -> None:
    sid, lid, link = _signed_up(client, synced, db)
    resp = confirm_by_press(client, link, user_agent="Consent-Agent/1.0")
    assert resp.status_code == 200 and "now subscribed to: Shared Services e-bulletin" in resp.text
    assert _state(db, sid, lid) == "confirmed"
    ev = [e for e in _events(db, sid) if e.new_state == "confirmed"]
    assert len(ev) == 1
    assert ev[0].ip == "testclient" and ev[0].user_agent == "Consent-Agent/1.0" and ev[0].source == "web"
    assert ev[0].detail["page"] == "/signup/shared-services" and ev[0].at is not None


def test_replaying_a_used_link_does_nothing_new(client: TestClient, synced: Settings, db: Session) -> None:
    sid, _lid, link = _signed_up(client, synced, db)
    confirm_by_press(client, link)
    before = len(_events(db, sid))
    again = client.get(link)
    assert again.status_code == 200 and "already subscribed" in again.text and "<button" not in again.text
    pressed = confirm_by_press(client, link)
    assert pressed.status_code == 200 and "already subscribed" in pressed.text
    assert len(_events(db, sid)) == before


def test_replaying_after_unsubscribing_does_not_resubscribe(client: TestClient, synced: Settings, db: Session) -> None:
    sid, lid, link = _signed_up(client, synced, db)
    confirm_by_press(client, link)
    unsubscribe(db, sid, lid, source="web", actor="t")
    db.commit()
    resp = client.get(link)
    assert resp.status_code == 400 and "already been used" in resp.text
    assert confirm_by_press(client, link).status_code == 400
    assert _state(db, sid, lid) == "unsubscribed"


def test_signing_up_again_after_unsubscribing_needs_and_accepts_a_new_link(client: TestClient, synced: Settings, db: Session) -> None:
    sid, lid, first = _signed_up(client, synced, db)
    confirm_by_press(client, first)
    unsubscribe(db, sid, lid, source="web", actor="t")
    # Move the past back so this test needs no sleep: tokens carry whole seconds.
    for ev in _events(db, sid):
        ev.at = ev.at - timedelta(seconds=5)
        db.add(ev)
    db.exec(update(Subscription).where(Subscription.subscriber_id == sid).values(confirmation_sent_at=None))
    db.commit()
    assert signup(client, "conf@example.org").status_code == 200
    assert _state(db, sid, lid) == "pending"
    mails = outbox(synced)
    assert len(mails) == 2  # the earlier mail's window no longer applies
    second = max((path_of(confirm_link(m)) for m in mails), key=lambda p: p != first)
    assert confirm_by_press(client, second).status_code == 200
    assert _state(db, sid, lid) == "confirmed"


def test_expired_link_is_refused(client: TestClient, synced: Settings, db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    sid, lid, _ = _signed_up(client, synced, db)
    old = int(time.time()) - CONFIRM_MAX_AGE - 60
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: old)
    url = Links.for_settings(synced).confirm_url(sid, [lid])
    monkeypatch.undo()
    resp = client.get(path_of(url))
    assert resp.status_code == 400 and "expired" in resp.text
    assert _state(db, sid, lid) == "pending"


def test_forged_and_wrong_purpose_links_are_refused(client: TestClient, synced: Settings, db: Session) -> None:
    sid, lid, link = _signed_up(client, synced, db)
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(forged).status_code == 400
    other_key = Links.for_settings(synced.model_copy(update={"secret_keys": ["someone-elses-key"]}))
    assert client.get(path_of(other_key.confirm_url(sid, [lid]))).status_code == 400
    links = Links.for_settings(synced)
    token = links.unsubscribe_url(sid, lid).rsplit("/", 1)[1]
    wrong = client.get(f"/confirm/{token}")
    assert wrong.status_code == 400 and "not valid" in wrong.text
    assert client.get("/confirm/garbage").status_code == 400
    assert _state(db, sid, lid) == "pending"


def test_link_of_an_erased_person_is_refused(client: TestClient, synced: Settings, db: Session) -> None:
    sid, _lid, link = _signed_up(client, synced, db)
    erase(db, sid, source="cli", actor="t")
    db.commit()
    assert client.get(link).status_code == 400


def test_link_confirms_only_the_lists_it_names(client: TestClient, synced: Settings, db: Session) -> None:
    sub = subscribe(db, "two@example.org", [list_id(db, "shared-services"), list_id(db, "workforce")],
                    confirmed=False, source="cli", actor="t")
    db.commit()
    url = Links.for_settings(synced).confirm_url(sub.id, [list_id(db, "workforce")])
    assert confirm_by_press(client, path_of(url)).status_code == 200
    assert _state(db, sub.id, list_id(db, "workforce")) == "confirmed"
    assert _state(db, sub.id, list_id(db, "shared-services")) == "pending"


def test_confirm_records_the_referrer(client: TestClient, synced: Settings, db: Session) -> None:
    sub = subscribe(db, "refd@example.org", [list_id(db, "workforce")], confirmed=False, source="cli", actor="t")
    db.commit()
    url = Links.for_settings(synced).confirm_url(sub.id, [list_id(db, "workforce")], referrer_id=42)
    confirm_by_press(client, path_of(url))
    ev = [e for e in _events(db, sub.id) if e.new_state == "confirmed"]
    assert ev and ev[0].detail["referrer"] == 42


SCANNERS = ("Mozilla/5.0 (compatible; Microsoft Defender SmartScreen; SafeLinks)", "Mimecast URL Protect",
            "Proofpoint URL Defense", "curl/8.5.0")


def test_a_get_of_the_link_changes_nothing_whoever_fetches_it(client: TestClient, synced: Settings, db: Session) -> None:
    sid, lid, link = _signed_up(client, synced, db)
    before = len(_events(db, sid))
    for agent in SCANNERS:
        page = client.get(link, headers={"User-Agent": agent})
        assert page.status_code == 200 and "Confirm my subscription" in page.text
        assert "Shared Services e-bulletin" in page.text and "c•••f@e•••e.org" in page.text
        assert "conf@example.org" not in page.text
    assert _state(db, sid, lid) == "pending" and len(_events(db, sid)) == before


def test_the_press_records_the_post_ip_and_user_agent_not_the_get(synced: Settings, db: Session) -> None:
    from tests.web.conftest import CSRF_RE, make_client

    with make_client(synced) as c:
        sid, _lid, link = _signed_up(c, synced, db)
        token = CSRF_RE.search(c.get(link, headers={"User-Agent": "Scanner/1"}).text).group(1)  # type: ignore[union-attr]
        assert c.post(link, data={"csrf_token": token}, headers={"User-Agent": "Person/2"}).status_code == 200
    ev = [e for e in _events(db, sid) if e.new_state == "confirmed"]
    assert len(ev) == 1 and ev[0].user_agent == "Person/2"


def test_the_press_needs_the_page_csrf_token(client: TestClient, synced: Settings, db: Session) -> None:
    sid, lid, link = _signed_up(client, synced, db)
    assert client.post(link, data={}).status_code == 403
    client.cookies.clear()
    assert client.post(link, data={"csrf_token": "0" * 64}).status_code == 403
    assert _state(db, sid, lid) == "pending"
