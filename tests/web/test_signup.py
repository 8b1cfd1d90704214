"""Signup forms: double opt-in, same answer for every state, CSRF, honeypot, limits, bad input."""

from __future__ import annotations

import email
import hashlib
import re
from email import policy
from email.utils import getaddresses

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bulletin.audience.lifecycle import suppress, unsubscribe
from bulletin.audience.subscribers import find_subscriber, keyed_address_hash
from bulletin.config import Settings
from bulletin.db import make_engine, session_scope
from bulletin.models import MailingList, RateCount, Subscriber, SubscriberEvent
from tests.web.conftest import (
    csrf,
    list_id,
    make_client,
    outbox,
    read_outbox_paths,
    send_notices,
    signup,
    state_of,
)


def _main(html: str) -> str:
    """The page's main text, without the per-response CSRF token."""
    body = html.split('<main id="main">', 1)[1].split("</main>", 1)[0]
    return re.sub(r"\s+", " ", body)


def test_signup_forms_render_with_labels_for_every_field(client: TestClient) -> None:
    page = client.get("/signup").text
    for field in ("email", "name", "organisation", "list-shared-services", "list-workforce"):
        assert f'for="{field}"' in page and f'id="{field}"' in page
    single = client.get("/signup/workforce")
    assert single.status_code == 200 and "Workforce e-bulletin" in single.text
    assert 'name="list"' not in single.text


def test_unknown_list_is_404_on_get_and_post(client: TestClient) -> None:
    assert client.get("/signup/no-such-list").status_code == 404
    token = csrf(client, "/signup")
    assert client.post("/signup/no-such-list", data={"csrf_token": token, "email": "a@example.org"}).status_code == 404


def test_signup_makes_a_pending_subscription_and_mails_a_confirmation(client: TestClient, db: Session, synced: Settings) -> None:
    resp = signup(client, "Ann@Example.org")
    assert resp.status_code == 200 and "Check your inbox" in resp.text
    assert state_of(db, "ann@example.org", "shared-services") == "pending"
    mails = outbox(synced)
    assert len(mails) == 1
    assert mails[0]["To"] == "ann@example.org"
    assert "Shared Services" in mails[0]["Subject"] and "/confirm/" in mails[0].as_string()
    sub = find_subscriber(db, "ann@example.org")
    assert sub is not None and sub.name == "Ann Example" and sub.organisation == "Example Council"
    event = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.id,
                                                  SubscriberEvent.new_state == "pending")).one()
    assert event.source == "web" and event.ip == "testclient" and event.detail["page"] == "/signup/shared-services"


def test_the_confirmation_comes_from_the_name_the_bulletins_will_come_from(client: TestClient, synced: Settings) -> None:
    """`Team, Organisation`, as the list's issues have it: the confirmation said only `Team`, so the
    first mail a person had from us named a sender their later mail did not."""
    signup(client, "ann@example.org")
    [confirm] = outbox(synced)
    assert getaddresses([str(confirm["From"])]) == [
        ("Shared Services Team, Northshire Shared Services Partnership", "bulletin@shared-services.example.gov.uk")]


def test_the_answer_is_the_same_for_new_pending_confirmed_and_unsubscribed(client: TestClient, synced: Settings) -> None:
    engine = make_engine(synced.effective_database_url, address_key=synced.address_key)
    from bulletin.audience.lifecycle import subscribe

    with session_scope(engine) as s:
        lid = list_id(s, "shared-services")
        subscribe(s, "pending@example.org", [lid], confirmed=False, source="cli", actor="t")
        subscribe(s, "confirmed@example.org", [lid], confirmed=True, source="cli", actor="t")
        gone = subscribe(s, "gone@example.org", [lid], confirmed=True, source="cli", actor="t")
        unsubscribe(s, gone.id, lid, source="cli", actor="t")
    engine.dispose()
    answers = {addr: signup(client, addr) for addr in
               ("new@example.org", "pending@example.org", "confirmed@example.org", "gone@example.org")}
    assert {r.status_code for r in answers.values()} == {200}
    assert len({_main(r.text) for r in answers.values()}) == 1


def test_second_signup_within_the_window_sends_no_second_mail(client: TestClient, synced: Settings) -> None:
    signup(client, "twice@example.org")
    again = signup(client, "twice@example.org", path="/signup/workforce")
    assert again.status_code == 200
    assert len(outbox(synced)) == 1


def test_confirmed_address_gets_an_already_subscribed_mail_and_no_change(client: TestClient, synced: Settings,
                                                                         db: Session) -> None:
    from bulletin.audience.lifecycle import subscribe

    subscribe(db, "done@example.org", [list_id(db, "shared-services")], confirmed=True, source="cli", actor="t")
    db.commit()
    signup(client, "done@example.org")
    signup(client, "done@example.org")  # inside the window: no second mail
    mails = outbox(synced)
    assert len(mails) == 1 and mails[0]["To"] == "done@example.org"
    assert "already subscribed" in mails[0]["Subject"] and "/preferences/" in mails[0].as_string()
    assert "/confirm/" not in mails[0].as_string()
    assert state_of(db, "done@example.org", "shared-services") == "confirmed"


def test_post_without_csrf_token_or_cookie_is_refused(client: TestClient, db: Session) -> None:
    no_token = client.post("/signup/shared-services", data={"email": "x@example.org"})
    assert no_token.status_code == 403
    token = csrf(client, "/signup/shared-services")
    client.cookies.clear()
    no_cookie = client.post("/signup/shared-services", data={"csrf_token": token, "email": "x@example.org"})
    assert no_cookie.status_code == 403
    csrf(client, "/signup/shared-services")
    forged = client.post("/signup/shared-services", data={"csrf_token": "0" * 64, "email": "x@example.org"})
    assert forged.status_code == 403
    assert find_subscriber(db, "x@example.org") is None


def test_non_ascii_csrf_token_is_an_expired_form_not_a_server_error(client: TestClient, db: Session) -> None:
    csrf(client, "/signup/shared-services")  # the cookie is set; only the field is wrong
    for path, data in (("/signup/shared-services", {"email": "x@example.org"}),
                       ("/admin/login", {"email": "x@example.org", "password": "x"})):
        resp = client.post(path, data={"csrf_token": "\u00e9", **data})
        assert resp.status_code == 403, resp.text
        assert "form has expired" in resp.text
    assert find_subscriber(db, "x@example.org") is None


def test_csrf_token_survives_key_rotation(synced: Settings, db: Session) -> None:
    with make_client(synced) as old:
        token = csrf(old, "/signup/shared-services")
        cookies = dict(old.cookies)
    rotated = synced.model_copy(update={"secret_keys": ["a-brand-new-key", *synced.secret_keys]})
    with make_client(rotated) as new:
        new.cookies.update(cookies)
        resp = new.post("/signup/shared-services", data={"csrf_token": token, "email": "rot@example.org"})
    assert resp.status_code == 200
    assert find_subscriber(db, "rot@example.org") is not None


def test_honeypot_gets_the_same_page_and_changes_nothing(client: TestClient, db: Session, synced: Settings) -> None:
    resp = signup(client, "bot@example.org", website="http://spam.example")
    assert resp.status_code == 200 and "Check your inbox" in resp.text
    assert find_subscriber(db, "bot@example.org") is None and outbox(synced) == []


def test_crlf_and_oversized_fields_are_refused(client: TestClient, db: Session) -> None:
    crlf = signup(client, "crlf@example.org", name="Ann\r\nBcc: victim@example.org")
    assert crlf.status_code == 400 and "must not contain control" in crlf.text
    assert signup(client, "crlf2@example.org\r\nBcc: victim@example.org").status_code == 400
    assert signup(client, "sep@example.org", organisation="Council\u2028X-Header: 1").status_code == 400
    long_org = signup(client, "long@example.org", organisation="x" * 201)
    assert long_org.status_code == 400 and "longer than 200" in long_org.text
    token = csrf(client, "/signup/shared-services")
    huge = client.post("/signup/shared-services", data={"csrf_token": token, "email": "h@example.org", "name": "y" * 40000})
    assert huge.status_code == 413
    twice = client.post("/signup/shared-services", data={"csrf_token": token, "email": ["a@example.org", "b@example.org"]})
    assert twice.status_code == 400
    for addr in ("crlf@example.org", "crlf2@example.org", "sep@example.org", "long@example.org", "h@example.org", "a@example.org"):
        assert find_subscriber(db, addr) is None


def test_bad_address_redisplays_the_form_with_the_error(client: TestClient) -> None:
    resp = signup(client, "not an address", name="Keep Me")
    assert resp.status_code == 400
    assert 'role="alert"' in resp.text and 'value="Keep Me"' in resp.text
    assert 'id="email" name="email" aria-invalid="true"' in resp.text
    crlf = signup(client, "ok@example.org", name="a\nb")
    assert 'id="name" name="name" aria-invalid="true"' in crlf.text
    assert signup(client, "").status_code == 400


def test_combined_form_needs_known_lists_and_at_least_one(client: TestClient, db: Session) -> None:
    none = signup(client, "c@example.org", path="/signup")
    assert none.status_code == 400 and "choose at least one" in none.text
    unknown = signup(client, "c@example.org", path="/signup", list="no-such-list")
    assert unknown.status_code == 400 and "does not exist" in unknown.text
    assert find_subscriber(db, "c@example.org") is None


def test_combined_form_sends_one_mail_for_several_lists(client: TestClient, db: Session, synced: Settings) -> None:
    token = csrf(client, "/signup")
    resp = client.post("/signup", data={"csrf_token": token, "email": "multi@example.org",
                                        "list": ["shared-services", "productivity", "workforce"]})
    assert resp.status_code == 200
    for slug in ("shared-services", "productivity", "workforce"):
        assert state_of(db, "multi@example.org", slug) == "pending"
    assert len(outbox(synced)) == 1


def test_single_opt_in_list_is_not_public(client: TestClient, db: Session, synced: Settings) -> None:
    assert "finance" not in client.get("/signup").text
    assert client.get("/signup/finance").status_code == 404
    token = csrf(client, "/signup")
    assert client.post("/signup/finance", data={"csrf_token": token, "email": "fin@example.org"}).status_code == 404
    combined = client.post("/signup", data={"csrf_token": token, "email": "fin@example.org", "list": "finance"})
    assert combined.status_code == 400 and "does not exist" in combined.text
    assert find_subscriber(db, "fin@example.org") is None


def test_single_opt_in_list_made_public_confirms_at_once_and_says_so(synced: Settings, db: Session) -> None:
    from bulletin.models import MailingList

    ml = db.get(MailingList, list_id(db, "finance"))
    assert ml is not None
    ml.public_signup = True
    db.add(ml)
    db.commit()
    with make_client(synced) as c:
        resp = signup(c, "fin@example.org", path="/signup/finance")
    assert resp.status_code == 200 and "Thank you" in resp.text and "open the link" not in resp.text.lower()
    assert state_of(db, "fin@example.org", "finance") == "confirmed"
    assert outbox(synced) == []


def test_form_never_edits_an_existing_profile(client: TestClient, db: Session) -> None:
    signup(client, "prof@example.org", name="Original")
    signup(client, "prof@example.org", path="/signup/workforce", name="Attacker", organisation="Evil")
    db.expire_all()
    sub = find_subscriber(db, "prof@example.org")
    assert sub is not None and sub.name == "Original" and sub.organisation == "Example Council"


def test_rate_limit_per_ip(synced: Settings) -> None:
    with make_client(synced, ip_limit=2) as c:
        assert signup(c, "r1@example.org").status_code == 200
        assert signup(c, "r2@example.org").status_code == 200
        blocked = signup(c, "r3@example.org")
    assert blocked.status_code == 429 and blocked.headers["Retry-After"]


def test_rate_limit_per_address_whatever_the_spelling(synced: Settings) -> None:
    with make_client(synced, address_limit=1) as c:
        assert signup(c, "same@example.org").status_code == 200
        assert signup(c, "SAME@Example.org").status_code == 429
        assert signup(c, "other@example.org").status_code == 200


def test_the_address_limit_stores_a_keyed_hash_never_a_plain_sha256(client: TestClient, db: Session) -> None:
    # Anyone with a dump and a guess can confirm a plain sha256; an erasure would leave it behind too.
    assert signup(client, "victim@example.org").status_code == 200
    db.expire_all()
    keys = [row.key for row in db.exec(select(RateCount)).all()]
    plain = hashlib.sha256(b"victim@example.org").hexdigest()
    assert not [k for k in keys if plain in k], keys
    assert f"address:{keyed_address_hash(db, 'Victim@Example.org')}" in keys


def test_suppressed_address_gets_the_same_page_and_no_mail(client: TestClient, db: Session, synced: Settings) -> None:
    suppress(db, "blocked@example.org", "manual", source="cli", actor="t")
    db.commit()
    resp = signup(client, "blocked@example.org")
    assert resp.status_code == 200 and "Check your inbox" in resp.text
    assert outbox(synced) == [] and find_subscriber(db, "blocked@example.org") is None


def test_mail_failure_keeps_the_same_page_and_the_notice_waits_for_a_retry(synced: Settings, db: Session) -> None:
    from bulletin.audience.notices import send_due
    from bulletin.models import QueuedNotice

    broken = synced.model_copy(update={"transport": "smtp", "smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_timeout": 2.0})
    with make_client(broken) as c:
        resp = signup(c, "nomail@example.org")
    assert resp.status_code == 200 and "Check your inbox" in resp.text
    assert state_of(db, "nomail@example.org", "shared-services") == "pending"
    engine = make_engine(broken.effective_database_url, address_key=broken.address_key)
    report = send_due(engine, broken)
    engine.dispose()
    assert (report.sent, report.deferred) == (0, 1)
    db.expire_all()
    row = db.exec(select(QueuedNotice)).one()
    assert row.state == "queued" and row.attempts == 1 and row.last_error and row.next_attempt_at is not None
    assert outbox(synced) == []  # not due yet: the back-off holds it


def test_a_notice_whose_from_is_not_one_address_fails_at_once_naming_it(synced: Settings, db: Session) -> None:
    """A From that cannot be written as one mailbox cannot be sent by retrying: failed on the first
    attempt with the field named, not retried five times over days."""
    from bulletin.audience.notices import queue_notice, send_due
    from bulletin.messenger import Notice
    from bulletin.models import QueuedNotice

    queue_notice(db, Notice(to="pat@example.org", subject="Hello", text="Hi\n", from_addr="The Team, no address"),
                 kind="answer", subscriber_id=None)
    db.commit()
    engine = make_engine(synced.effective_database_url, address_key=synced.address_key)
    report = send_due(engine, synced)
    engine.dispose()
    assert (report.sent, report.failed, report.deferred) == (0, 1, 0)
    db.expire_all()
    row = db.exec(select(QueuedNotice)).one()
    assert row.state == "failed" and row.attempts == 1 and "From" in (row.last_error or "")
    assert outbox(synced) == []


def test_referral_link_shows_the_list_form_and_records_the_referrer(client: TestClient, db: Session, synced: Settings) -> None:
    from bulletin.audience.lifecycle import subscribe
    from bulletin.audience.links import Links

    lid = list_id(db, "workforce")
    friend = subscribe(db, "friend@example.org", [lid], confirmed=True, source="cli", actor="t")
    db.commit()
    url = Links.for_settings(synced).referral_url(friend.id, lid)
    page = client.get("/refer/" + url.rsplit("/", 1)[1])
    assert page.status_code == 200 and "Workforce e-bulletin" in page.text and 'name="ref"' in page.text
    ref = re.search(r'name="ref" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/signup/workforce", data={"csrf_token": token, "email": "colleague@example.org", "ref": ref})
    sub = find_subscriber(db, "colleague@example.org")
    assert sub is not None
    events = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.id)).all()
    assert any(e.detail.get("referrer") == friend.id for e in events)
    assert "%22r%22" not in outbox(synced)[0].as_string()  # the link is signed, not a readable query


def test_tampered_referral_link_is_refused_and_a_bad_ref_field_is_ignored(client: TestClient, db: Session) -> None:
    assert client.get("/refer/eyJzIjoxLCJsIjoxfQ.AAAAAA.forged").status_code == 400
    resp = signup(client, "noref@example.org", ref="forged.token.value")
    assert resp.status_code == 200
    sub = db.exec(select(Subscriber).where(Subscriber.email == "noref@example.org")).one()
    events = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.id)).all()
    assert all(e.detail.get("referrer") is None for e in events)


def test_the_answer_does_not_wait_on_mail_and_bulletin_notices_send_delivers_it(client: TestClient, synced: Settings,
                                                                               db: Session) -> None:
    from typer.testing import CliRunner

    from bulletin.cli import app
    from bulletin.models import QueuedNotice

    assert signup(client, "queued@example.org").status_code == 200
    folder = synced.outbox_path / "new"
    assert not folder.is_dir() or not list(folder.iterdir())  # nothing sent inside the request
    db.expire_all()
    row = db.exec(select(QueuedNotice)).one()
    assert row.state == "queued" and row.kind == "confirm" and row.to_addr == "queued@example.org"
    env = {"BULLETIN_DATABASE_URL": synced.effective_database_url, "BULLETIN_PUBLIC_BASE_URL": synced.public_base_url}
    result = CliRunner().invoke(app, ["-w", str(synced.workspace), "notices", "send"], env=env)
    assert result.exit_code == 0 and "1 sent" in result.output, result.output
    assert len(list(folder.iterdir())) == 1
    db.expire_all()
    row = db.exec(select(QueuedNotice)).one()
    assert row.state == "sent" and row.text == "" and row.message_id


def test_a_confirmation_from_a_long_organisation_has_one_from_mailbox(
        client: TestClient, synced: Settings, db: Session) -> None:
    """`Team, Organisation` of 77 characters or more was re-folded into three mailboxes (review finding)."""
    org = "Northshire, Westshire and Eastshire Councils Partnership"
    ml = db.exec(select(MailingList).where(MailingList.slug == "shared-services")).one()
    ml.organisation = org
    db.add(ml)
    db.commit()
    signup(client, "ann@example.org")
    send_notices(synced)
    [path] = read_outbox_paths(synced)
    raw = path.read_bytes()
    from_line = raw.split(b"\r\nTo:")[0]
    sent = email.message_from_bytes(raw, policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in sent["From"].addresses] == [
        (f"Shared Services Team, {org}", "bulletin@shared-services.example.gov.uk")], from_line
