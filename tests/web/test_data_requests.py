"""Export and erase from the preference centre: only through a fresh single-use link mailed to the address."""

from __future__ import annotations

import time

import itsdangerous.timed
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bulletin.audience.lifecycle import subscribe
from bulletin.audience.links import DATA_REQUEST_MAX_AGE, Links
from bulletin.config import Settings
from bulletin.models import DataRequest, QueuedNotice, Subscriber, SubscriberEvent
from tests.web.conftest import CSRF_RE, link_in, list_id, outbox, path_of


@pytest.fixture
def member(db: Session) -> int:
    sub = subscribe(db, "data@example.org", [list_id(db, "shared-services")], name="Dana", organisation="Council",
                    confirmed=True, source="cli", actor="t")
    db.commit()
    assert sub.id is not None
    return sub.id


def _ask(client: TestClient, settings: Settings, sid: int, kind: str):  # type: ignore[no-untyped-def]
    url = path_of(Links.for_settings(settings).preferences_url(sid))
    token = CSRF_RE.search(client.get(url).text).group(1)  # type: ignore[union-attr]
    return client.post(url + "/request", data={"csrf_token": token, "kind": kind})


def _mailed_link(client: TestClient, settings: Settings, sid: int, kind: str) -> str:
    resp = _ask(client, settings, sid, kind)
    assert resp.status_code == 200 and "We are sending a link" in resp.text
    mails = [m for m in outbox(settings) if m["To"] == "data@example.org"]
    return path_of(link_in(mails[-1]))


def _press(client: TestClient, link: str, **fields: str):  # type: ignore[no-untyped-def]
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    return client.post(link, data={"csrf_token": token, **fields})


def test_asking_for_my_data_mails_a_link_whose_press_downloads_the_export_once(
        client: TestClient, synced: Settings, db: Session, member: int) -> None:
    link = _mailed_link(client, synced, member, "export")
    assert link.startswith("/my-data/")
    page = client.get(link)
    assert "d•••a@e•••e.org" in page.text and "data@example.org" not in page.text
    resp = _press(client, link)
    assert resp.status_code == 200 and "attachment" in resp.headers["content-disposition"]
    data = resp.json()
    assert data["subscriber"]["email"] == "data@example.org" and data["subscriber"]["name"] == "Dana"
    assert set(data) == {"subscriber", "subscriptions", "consent_log", "deliveries", "compacted_deliveries", "replies",
                           "bounces", "evidence"}
    assert "export_requested" in [e["kind"] for e in data["consent_log"]]
    again = client.get(link)
    assert again.status_code == 400 and "already been used" in again.text
    token = CSRF_RE.search(client.get("/signup").text).group(1)  # type: ignore[union-attr]
    assert client.post(link, data={"csrf_token": token}).status_code == 400


def test_a_scanner_fetching_the_mailed_link_uses_nothing(client: TestClient, synced: Settings, db: Session,
                                                         member: int) -> None:
    link = _mailed_link(client, synced, member, "export")
    for _ in range(3):
        assert client.get(link, headers={"User-Agent": "Proofpoint URL Defense"}).status_code == 200
    db.expire_all()
    assert db.exec(select(DataRequest)).one().used_at is None
    assert _press(client, link).status_code == 200


def test_erase_link_erases_once_and_a_replay_changes_nothing(client: TestClient, synced: Settings, db: Session,
                                                            member: int) -> None:
    link = _mailed_link(client, synced, member, "erase")
    assert link.startswith("/erase/")
    page = client.get(link)
    token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
    assert client.post(link, data={"csrf_token": token}).status_code == 400  # the box is not ticked
    db.expire_all()
    assert db.get(Subscriber, member).email == "data@example.org"  # type: ignore[union-attr]
    done = client.post(link, data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 200 and "erased" in done.text
    db.expire_all()
    sub = db.get(Subscriber, member)
    assert sub is not None and sub.email is None and sub.name == "" and sub.erased_at is not None
    events_before = len(db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member)).all())
    replay = client.post(link, data={"csrf_token": token, "confirm": "yes"})
    assert replay.status_code == 400
    assert client.get(link).status_code == 400
    db.expire_all()
    assert len(db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == member)).all()) == events_before
    assert db.exec(select(QueuedNotice).where(QueuedNotice.subscriber_id == member)).all() == []


def test_an_export_link_cannot_erase_and_an_erase_link_cannot_export(client: TestClient, synced: Settings,
                                                                     db: Session, member: int) -> None:
    export_link = _mailed_link(client, synced, member, "export")
    erase_link = _mailed_link(client, synced, member, "erase")
    assert client.get("/erase/" + export_link.rsplit("/", 1)[1]).status_code == 400
    assert client.get("/my-data/" + erase_link.rsplit("/", 1)[1]).status_code == 400
    prefs = Links.for_settings(synced).preferences_url(member).rsplit("/", 1)[1]
    assert client.get(f"/my-data/{prefs}").status_code == 400 and client.get(f"/erase/{prefs}").status_code == 400
    db.expire_all()
    assert db.get(Subscriber, member).email == "data@example.org"  # type: ignore[union-attr]


def test_a_link_older_than_a_day_is_refused(client: TestClient, synced: Settings, db: Session, member: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _ask(client, synced, member, "erase")
    request_id = db.exec(select(DataRequest)).one().id
    old = int(time.time()) - DATA_REQUEST_MAX_AGE - 60
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: old)
    url = Links.for_settings(synced).data_request_url("erase", request_id)  # type: ignore[arg-type]
    monkeypatch.undo()
    resp = client.get(path_of(url))
    assert resp.status_code == 400 and "expired" in resp.text


def test_requests_are_bounded_and_need_csrf(client: TestClient, synced: Settings, db: Session, member: int) -> None:
    url = path_of(Links.for_settings(synced).preferences_url(member))
    client.get(url)
    assert client.post(url + "/request", data={"kind": "export"}).status_code == 403
    for _ in range(5):
        assert _ask(client, synced, member, "export").status_code == 200
    assert len(db.exec(select(DataRequest)).all()) == 3
    assert len([m for m in outbox(synced) if m["Subject"] == "Your bulletin data"]) == 3
    assert _ask(client, synced, member, "nonsense").status_code == 400
