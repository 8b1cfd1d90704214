"""Unsubscribe links: GET never unsubscribes; POST from the page or RFC 8058 one-click does, every time."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bulletin.audience.lifecycle import subscribe
from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.models import IssueRecord, SubscriberEvent, Subscription
from tests.web.conftest import CSRF_RE, list_id, make_client, path_of


@pytest.fixture
def member(db: Session) -> tuple[int, int]:
    lid = list_id(db, "shared-services")
    sub = subscribe(db, "leaver@example.org", [lid, list_id(db, "workforce")], confirmed=True, source="cli", actor="t")
    db.commit()
    assert sub.id is not None
    return sub.id, lid


def _url(settings: Settings, member: tuple[int, int], issue_id: int | None = None) -> str:
    return path_of(Links.for_settings(settings).unsubscribe_url(member[0], member[1], issue_id))


def _states(db: Session, sid: int) -> dict[int, str]:
    db.expire_all()
    return {r.list_id: r.state for r in db.exec(select(Subscription).where(Subscription.subscriber_id == sid)).all()}


def _unsub_events(db: Session, sid: int) -> list[SubscriberEvent]:
    db.expire_all()
    return list(db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sid,
                                                      SubscriberEvent.kind == "unsubscribe")).all())


def test_get_shows_one_button_and_changes_nothing(client: TestClient, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    page = client.get(_url(synced, member))
    assert page.status_code == 200
    assert "Shared Services e-bulletin" in page.text
    assert page.text.count("<button") == 1 and 'method="post"' in page.text
    assert _states(db, member[0])[member[1]] == "confirmed"


@pytest.mark.parametrize("kind", ["urlencoded", "multipart", "empty"])
def test_one_click_post_unsubscribes_without_cookie_or_csrf(kind: str, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    url = _url(synced, member)
    with make_client(synced) as c:
        assert not c.cookies  # a mailbox provider has no cookie and no CSRF token
        if kind == "urlencoded":
            resp = c.post(url, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        elif kind == "multipart":
            resp = c.post(url, files={"List-Unsubscribe": (None, "One-Click")})
        else:
            resp = c.post(url)
    assert resp.status_code == 200 and not resp.is_redirect
    states = _states(db, member[0])
    assert states[member[1]] == "unsubscribed"
    assert states[list_id(db, "workforce")] == "confirmed"  # only the list the link names
    (event,) = _unsub_events(db, member[0])
    assert event.actor == "one-click" and event.source == "web"


@pytest.mark.parametrize(("ctype", "body"), [("application/json", b'{"List-Unsubscribe": "One-Click"}'),
                                            ("text/plain", b"scan"), ("", b"List-Unsubscribe=One-Click")])
def test_a_post_that_is_not_a_form_unsubscribes_nobody(ctype: str, body: bytes, synced: Settings, db: Session,
                                                       member: tuple[int, int]) -> None:
    """Starlette reads a JSON or text body as an empty form, and an empty POST is a valid one-click."""
    with make_client(synced) as c:
        resp = c.post(_url(synced, member), content=body, headers={"Content-Type": ctype} if ctype else {})
    assert resp.status_code == 415
    assert _states(db, member[0])[member[1]] == "confirmed" and _unsub_events(db, member[0]) == []


def test_repeated_one_click_returns_200_and_writes_one_event(client: TestClient, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    url = _url(synced, member)
    for _ in range(3):
        assert client.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert len(_unsub_events(db, member[0])) == 1


def test_one_click_records_the_issue(client: TestClient, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    issue = IssueRecord(slug="i1", title="I1", subject="S", compiled="{}", content_hash="x")
    db.add(issue)
    db.commit()
    client.post(_url(synced, member, issue.id), data={"List-Unsubscribe": "One-Click"})
    assert _unsub_events(db, member[0])[0].issue_id == issue.id


def test_page_button_posts_with_csrf(client: TestClient, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    url = _url(synced, member)
    token = CSRF_RE.search(client.get(url).text).group(1)  # type: ignore[union-attr]
    resp = client.post(url, data={"csrf_token": token})
    assert resp.status_code == 200 and "You have been unsubscribed" in resp.text
    assert _unsub_events(db, member[0])[0].actor == "self"


def test_page_post_with_a_bad_csrf_token_or_other_fields_is_refused(client: TestClient, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    url = _url(synced, member)
    client.get(url)
    assert client.post(url, data={"csrf_token": "forged"}).status_code == 403
    assert client.post(url, data={"List-Unsubscribe": "Something-Else"}).status_code == 403
    assert client.post(url, data={"anything": "else"}).status_code == 403
    assert _states(db, member[0])[member[1]] == "confirmed"


def test_tampered_token_gets_the_same_error_whether_or_not_the_person_exists(client: TestClient, synced: Settings, member: tuple[int, int]) -> None:
    real = _url(synced, member)
    ghost = _url(synced, (999_999, member[1]))
    answers = []
    for url in (real, ghost):
        tampered = url[:-4] + ("abcd" if not url.endswith("abcd") else "wxyz")
        for resp in (client.get(tampered), client.post(tampered, data={"List-Unsubscribe": "One-Click"})):
            answers.append((resp.status_code, re.sub(r'value="[^"]+"', "", resp.text)))
    assert {a[0] for a in answers} == {400}
    assert len({a[1] for a in answers}) == 1


@pytest.mark.parametrize("path", ["/unsubscribe/1-1-0-%C3%A9", "/unsubscribe/1-1-0-" + "%C3%A9" * 20,
                                  "/preferences/1-%C3%A9", "/view/1-1-%C3%A9"])
def test_non_ascii_token_is_an_invalid_link_not_a_server_error(client: TestClient, path: str) -> None:
    # A str MAC with non-ASCII letters made hmac.compare_digest raise TypeError: an anonymous 500.
    answers = [client.get(path)]
    if path.startswith("/unsubscribe/"):
        answers.append(client.post(path, data={"List-Unsubscribe": "One-Click"}))
    for resp in answers:
        assert resp.status_code == 400, resp.text
        assert "not valid" in resp.text


def test_valid_link_of_someone_gone_still_answers_200(client: TestClient, synced: Settings) -> None:
    resp = client.post(_url(synced, (999_999, 1)), data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200


def test_wrong_purpose_token_is_refused(client: TestClient, synced: Settings, db: Session, member: tuple[int, int]) -> None:
    prefs = Links.for_settings(synced).preferences_url(member[0]).rsplit("/", 1)[1]
    assert client.post(f"/unsubscribe/{prefs}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert _states(db, member[0])[member[1]] == "confirmed"


def test_links_keep_working_after_key_rotation(synced: Settings, db: Session, member: tuple[int, int]) -> None:
    old_url = _url(synced, member)
    rotated = synced.model_copy(update={"secret_keys": ["the-new-key", *synced.secret_keys]})
    with make_client(rotated) as c:
        assert c.post(old_url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert _states(db, member[0])[member[1]] == "unsubscribed"
    dropped = synced.model_copy(update={"secret_keys": ["the-new-key"]})
    with make_client(dropped) as c:
        assert c.post(old_url, data={"List-Unsubscribe": "One-Click"}).status_code == 400


def test_oversized_one_click_body_is_refused(client: TestClient, synced: Settings, member: tuple[int, int]) -> None:
    resp = client.post(_url(synced, member), content=b"List-Unsubscribe=One-Click&x=" + b"y" * 40000,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 413
