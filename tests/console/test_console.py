"""The console's doors: every route for every role, CSRF on every POST, sessions and `next`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bulletin.accounts import add_account, disable_account, list_audit, record_audit
from bulletin.db import make_engine, session_scope
from bulletin.models import StaffSession, SubscriberEvent
from tests.console.conftest import AMINA, COOKIE, PASSWORD, ROLES, Sample, sign_in, token_of

RANK = {None: -1, "editor": 0, "staff": 1, "admin": 2}


def routes(s: Sample) -> list[tuple[str, str, str, dict[str, str]]]:
    """(method, path, least role, form) of every console route and action."""
    fb, un, sid, issue = s.feedback_id, s.unmatched_id, s.amina_id, s.issue
    return [
        ("GET", "/admin", "editor", {}),
        ("GET", "/admin/issues", "editor", {}),
        ("GET", f"/admin/issues/{issue}", "editor", {}),
        ("GET", f"/admin/issues/{issue}/chart.png", "editor", {}),
        ("POST", f"/admin/issues/{issue}/pause", "editor", {}),
        ("POST", f"/admin/issues/{issue}/resume", "editor", {}),
        ("POST", f"/admin/issues/{issue}/cancel", "editor", {}),
        ("GET", "/admin/feedback", "editor", {}),
        ("GET", f"/admin/feedback?issue={issue}&block=we-want-to-hear-from-you", "editor", {}),
        ("GET", f"/admin/feedback/{fb}", "editor", {}),
        ("POST", f"/admin/feedback/{fb}/mark", "editor", {"status": "read", "add_tags": "payroll"}),
        ("POST", f"/admin/feedback/{fb}/answer", "editor", {"answer": "Thank you, we will."}),
        ("GET", "/admin/inbound", "editor", {}),
        ("POST", f"/admin/inbound/{un}/attach", "staff", {"subscriber": AMINA}),  # it looks anyone up
        ("GET", "/admin/subscribers?q=amina", "staff", {}),
        ("GET", f"/admin/subscribers/{sid}", "staff", {}),
        ("POST", "/admin/subscribers", "staff", {"email": "new.person@council.example", "list": "workforce"}),
        ("POST", f"/admin/subscribers/{sid}/unsubscribe", "staff", {"list": "workforce"}),
        ("POST", f"/admin/subscribers/{sid}/suppress", "staff", {"reason": "asked by phone"}),
        ("GET", "/admin/pending", "staff", {}),
        ("POST", f"/admin/pending/{sid}/resend", "staff", {}),
        ("GET", "/admin/bounces", "staff", {}),
        ("GET", "/admin/import", "staff", {}),
        ("POST", "/admin/import", "staff", {"csv": "email,name\nimported@council.example,Imported Person\n"}),
        ("GET", "/admin/export.csv", "staff", {}),
        ("POST", f"/admin/subscribers/{sid}/erase", "admin", {}),
        ("GET", "/admin/staff", "admin", {}),
        ("POST", "/admin/staff", "admin", {"email": "new.editor@council.example", "role": "editor",
                                           "password": "lantern-quay-stones-7"}),
        ("POST", "/admin/staff/role", "admin", {"email": "editor@council.example", "role": "editor"}),
        ("POST", "/admin/staff/disable", "admin", {"email": "new.editor@council.example"}),
        ("GET", "/admin/audit", "admin", {}),
    ]


def _request(c: TestClient, method: str, path: str, form: dict[str, str], csrf: bool = True):  # type: ignore[no-untyped-def]
    if method == "GET":
        return c.get(path)
    data = dict(form)
    if csrf:
        data["csrf_token"] = token_of(c, "/admin/login") if c.cookies.get("bulletin_csrf") is None else _token(c)
    return c.post(path, data=data)


def _token(c: TestClient) -> str:
    import re

    page = c.get("/admin/login?next=/admin")
    if page.status_code == 303:  # signed in: any console page carries the token
        page = c.get("/admin")
        if page.status_code != 200:
            page = c.get("/admin/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_route_and_action_answers_by_role(sample: Sample, signed_in: Callable[[str | None], TestClient],
                                                role: str | None) -> None:
    """Allowed: anything but the sign-in redirect or 403. Refused: 303 to sign-in (anonymous) or 403."""
    c = signed_in(role)
    for method, path, least, form in routes(sample):
        r = _request(c, method, path, form)
        went_to_login = r.status_code == 303 and r.headers["location"].startswith("/admin/login")
        if role is None:
            assert went_to_login, (method, path, r.status_code)
        elif RANK[role] >= RANK[least]:
            assert r.status_code != 403 and not went_to_login, (role, method, path, r.status_code, r.text[:300])
            assert r.status_code < 500, (role, method, path, r.text[:300])
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)


def test_anonymous_is_sent_to_sign_in_with_next(sample: Sample, signed_in: Callable[[str | None], TestClient]) -> None:
    r = signed_in(None).get("/admin/subscribers?q=amina")
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/login?next=/admin/subscribers%3Fq%3Damina"


def test_every_post_without_a_csrf_token_is_refused(sample: Sample,
                                                    signed_in: Callable[[str | None], TestClient]) -> None:
    c = signed_in("admin")
    for method, path, _least, form in routes(sample):
        if method != "POST":
            continue
        r = c.post(path, data=form)
        assert r.status_code == 403, (path, r.status_code)
        r = c.post(path, data={**form, "csrf_token": "forged" * 8})
        assert r.status_code == 403, (path, r.status_code)
    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    with session_scope(engine) as session:
        audit = list_audit(session).rows
        events = session.exec(select(SubscriberEvent).where(SubscriberEvent.source == "console")).all()
    engine.dispose()
    assert [a.action for a in audit if a.actor.startswith("staff:")] == ["sign-in"]
    assert events == []


def test_sign_in_and_sign_out_need_a_csrf_token(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(None)
    r = c.post("/admin/login", data={"email": "admin@council.example", "password": PASSWORD})
    assert r.status_code == 403
    c = signed_in("admin")
    assert c.post("/admin/logout", data={}).status_code == 403
    assert c.get("/admin").status_code == 200


def test_session_id_changes_at_sign_in(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(None)
    planted = "attacker-chosen-session-value"
    c.cookies.set(COOKIE, planted)
    r = sign_in(c, "staff")
    assert r.status_code == 303
    issued = r.cookies.get(COOKIE)
    assert issued and issued != planted
    again = sign_in(c, "staff")
    assert again.status_code == 303 and again.cookies.get(COOKIE) not in (issued, planted)
    engine = make_engine(accounts.effective_database_url, address_key=accounts.address_key)
    with session_scope(engine) as session:
        assert len(session.exec(select(StaffSession)).all()) == 1  # the earlier one ended at the new sign-in
    engine.dispose()
    old = signed_in(None)
    assert old.get("/admin", headers={"cookie": f"{COOKIE}={issued}"}).status_code == 303


def test_session_cookie_flags(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    r = sign_in(signed_in(None), "editor")
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert "domain=" not in header


def test_https_site_uses_a_host_prefixed_secure_cookie(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    header = sign_in(signed_in(None), "editor").headers["set-cookie"]
    assert header.startswith("__Host-bulletin_session=") and "Secure" in header


def test_plain_http_site_drops_the_prefix_browsers_would_refuse(accounts) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import make_client

    plain = accounts.model_copy(update={"public_base_url": "http://127.0.0.1:8000"})
    with make_client(plain) as c:
        r = sign_in(c, "editor")
        assert r.status_code == 303
        header = r.headers["set-cookie"]
        assert header.startswith("bulletin_session=") and "secure" not in header.lower()
        assert c.get("/admin").status_code == 200


def test_logout_deletes_the_session_row(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in("editor")
    token = c.cookies.get(COOKIE)
    r = c.post("/admin/logout", data={"csrf_token": _token(c)})
    assert r.status_code == 303
    engine = make_engine(accounts.effective_database_url, address_key=accounts.address_key)
    with session_scope(engine) as session:
        assert session.exec(select(StaffSession)).all() == []
    engine.dispose()
    assert signed_in(None).get("/admin", headers={"cookie": f"{COOKIE}={token}"}).status_code == 303


def test_a_disabled_accounts_open_session_stops_working(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in("staff")
    assert c.get("/admin/subscribers").status_code == 200
    engine = make_engine(accounts.effective_database_url, address_key=accounts.address_key)
    with session_scope(engine) as session:
        disable_account(session, "staff@council.example", actor="test")
    engine.dispose()
    r = c.get("/admin/subscribers")
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    assert sign_in(signed_in(None), "staff").status_code == 400


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example/admin", "/\\evil.example",
                                    "https:/evil.example", "/archive/"])
def test_next_accepts_only_local_console_paths(accounts, signed_in, target: str) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(None)
    r = sign_in(c, "editor", next_path=target)
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    page = c.get(f"/admin/login?next={target}")
    assert page.headers["location"] == "/admin"


def test_next_keeps_a_local_console_path(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    r = sign_in(signed_in(None), "staff", next_path="/admin/subscribers?q=amina")
    assert r.headers["location"] == "/admin/subscribers?q=amina"


def test_every_failure_reads_the_same_and_attempts_are_throttled(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in(None)
    wrong = sign_in(c, "editor", password="not-the-password-1")
    unknown = c.post("/admin/login", data={"csrf_token": token_of(c), "email": "nobody@council.example",
                                           "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 400
    message = "the address or password is wrong, or too many attempts were made; try again later"
    assert message in wrong.text and message in unknown.text
    for _ in range(4):
        sign_in(c, "editor", password="not-the-password-1")
    blocked = sign_in(c, "editor")  # the right password, after five failures
    assert blocked.status_code == 400 and message in blocked.text
    assert sign_in(signed_in(None), "staff").status_code == 303  # another account is not blocked


def test_a_throttled_sign_in_does_not_hash_the_password(accounts, signed_in, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past the limit a client hammering the form must not cost an Argon2id hash per request."""
    from bulletin.accounts import sessions

    c = signed_in(None)
    for _ in range(5):
        sign_in(c, "editor", password="not-the-password-1")
    hashed: list[str] = []
    real = sessions.verify_password
    monkeypatch.setattr(sessions, "verify_password", lambda stored, password: hashed.append(password) or real(
        stored, password))
    for _ in range(3):
        assert sign_in(c, "editor").status_code == 400
    assert hashed == []
    assert sign_in(signed_in(None), "staff").status_code == 303 and len(hashed) == 1  # others still checked


def test_staff_actions_are_attributed_in_consent_and_audit_logs(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in("staff")
    r = c.post(f"/admin/subscribers/{sample.amina_id}/unsubscribe", data={"list": "workforce",
                                                                          "csrf_token": _token(c)})
    assert r.status_code == 303
    page = c.get(f"/admin/subscribers/{sample.amina_id}")
    assert "staff:staff@council.example" in page.text
    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    with session_scope(engine) as session:
        audit = list_audit(session).rows
        ev = session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "unsubscribe")).one()
    engine.dispose()
    assert ev.actor == "staff:staff@council.example" and ev.source == "console"
    entry = next(a for a in audit if a.action == "subscriber.unsubscribe")
    assert entry.actor == "staff:staff@council.example"
    assert entry.target == f"subscriber #{sample.amina_id} list=workforce"
    assert all("amina" not in a.target.lower() for a in audit)


def test_search_finds_by_address_name_and_organisation_prefix(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in("staff")
    for q in ("amina", "AMINA.KHAN@", "riverside borough"):
        page = c.get(f"/admin/subscribers?q={q}")
        assert AMINA in page.text, q
    assert "ben.lewis" not in c.get("/admin/subscribers?q=amina").text
    assert "Nobody matches" in c.get("/admin/subscribers?q=zzzz").text


def test_audit_page_and_command_list_staff_actions(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in("editor")
    c.post(f"/admin/feedback/{sample.feedback_id}/mark", data={"status": "read", "csrf_token": _token(c)})
    admin = signed_in("admin")
    page = admin.get("/admin/audit")
    assert "feedback.mark" in page.text and f"feedback #{sample.feedback_id}" in page.text
    assert "staff:editor@council.example" in page.text


def test_a_page_number_past_the_end_shows_the_last_page(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    """10**19 once became an OFFSET SQLite cannot bind: a 500 on every paged list."""
    c = signed_in("admin")
    for path in ("/admin/audit", "/admin/pending", "/admin/inbound", "/admin/subscribers", "/admin/feedback"):
        r = c.get(path, params={"page_no": str(10**19)})
        assert r.status_code == 200, (path, r.status_code)
    assert "A question" in c.get("/admin/inbound", params={"page_no": str(10**19)}).text  # the last page's mail


def test_the_paged_lists_say_which_page_they_read(sample: Sample) -> None:
    """The stage clamps the page once and returns it with the page count; the console used to clamp
    again from the total, a second rule that could drift from the first."""
    from bulletin.audience import directory
    from bulletin.inbound import list_unmatched

    engine = make_engine(sample.settings.effective_database_url, address_key=sample.settings.address_key)
    with session_scope(engine) as session:
        for i in range(3):
            record_audit(session, "staff:test", "test.entry", f"entry {i}")
        audit = list_audit(session, page=10**19, per_page=2)
        unmatched = list_unmatched(session, page=10**19, per_page=50)
        pending = directory.pending_signups(session, page=-5, per_page=2)
    engine.dispose()
    assert audit.total >= 3 and audit.pages == (audit.total + 1) // 2 and audit.page == audit.pages
    assert len(audit.rows) == 2 - audit.total % 2  # the last page's rows
    assert (unmatched.page, unmatched.pages, unmatched.total) == (1, 1, 1)
    assert [m.id for m in unmatched.rows] == [sample.unmatched_id]
    assert (pending.page, pending.pages, pending.total, pending.rows) == (1, 1, 0, [])


def test_the_done_notice_is_a_message_of_ours_never_the_querys_text(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    """`?done=` once put any text on the page (escaped, but in our layout, in front of signed-in staff)."""
    c = signed_in("admin")
    forged = "Your session has expired: sign in again at https://evil.example/login"
    for path in ("/admin/staff", f"/admin/feedback/{sample.feedback_id}", "/admin/inbound",
                 f"/admin/issues/{sample.issue}", "/admin/subscribers", f"/admin/subscribers/{sample.amina_id}",
                 "/admin/pending", "/admin/audit", "/admin"):
        for value in (forged, "<b>saved</b>", "saved", "__class__", ""):
            r = c.get(path, params={"done": value})
            assert r.status_code == 200, (path, value, r.status_code)
            assert "evil.example" not in r.text and 'class="ok" role="status"' not in r.text, (path, value)
    r = c.get(f"/admin/feedback/{sample.feedback_id}", params={"done": "feedback-saved"})
    assert '<p class="ok" role="status">Saved.</p>' in r.text
    token = _token(c)
    r = c.post(f"/admin/subscribers/{sample.amina_id}/unsubscribe", data={"list": "workforce", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=unsubscribed")
    assert '<p class="ok" role="status">Unsubscribed.</p>' in c.get(r.headers["location"]).text
    r = c.post(f"/admin/subscribers/{sample.amina_id}/unsubscribe", data={"list": "workforce", "csrf_token": token})
    assert "Nothing changed: there was no active subscription to end." in c.get(r.headers["location"]).text


def test_a_reply_is_answered_once_from_the_console(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    """The answer is queued with the "answered" mark; a second answer (a colleague, a double click) is refused."""
    from tests.web.conftest import outbox

    first, second = signed_in("editor"), signed_in("staff")
    path = f"/admin/feedback/{sample.feedback_id}/answer"
    r = first.post(path, data={"answer": "Thank you, Amina.", "csrf_token": _token(first)})
    assert r.status_code == 303 and r.headers["location"].endswith("?done=answer-queued")
    assert "Answer queued" in first.get(r.headers["location"]).text
    r = second.post(path, data={"answer": "Thanks from me too.", "csrf_token": _token(second)})
    assert r.status_code == 400 and f"feedback #{sample.feedback_id}: already answered (" in r.text
    answers = [m for m in outbox(sample.settings) if m["In-Reply-To"] == "<reply-1@riverside.example>"]
    assert len(answers) == 1 and "Thank you, Amina." in answers[0].get_payload(decode=True).decode()
    assert "the answer is sent" in second.get(f"/admin/feedback/{sample.feedback_id}").text


def test_ids_out_of_range_are_not_found(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    c = signed_in("admin")
    huge = "9" * 30
    for path in (f"/admin/subscribers/{huge}", f"/admin/feedback/{huge}", f"/admin/subscribers/{2**63}",
                 "/admin/subscribers/0"):
        assert c.get(path).status_code == 404, path
    for path, form in ((f"/admin/feedback/{huge}/mark", {"status": "read"}),
                       (f"/admin/subscribers/{huge}/suppress", {}),
                       (f"/admin/pending/{huge}/resend", {}),
                       (f"/admin/inbound/{huge}/attach", {"subscriber": AMINA}),
                       (f"/admin/inbound/{sample.unmatched_id}/attach", {"subscriber": f"#{huge}"})):
        r = c.post(path, data={**form, "csrf_token": _token(c)})
        assert r.status_code == 404, (path, r.status_code, r.text[:200])


def test_search_for_the_last_code_point_is_answered(sample: Sample, signed_in) -> None:  # type: ignore[no-untyped-def]
    """A prefix is searched as a range up to its successor; U+10FFFF has none (chr() raised: a 500)."""
    c = signed_in("staff")
    for q in ("a\U0010ffff", "\U0010ffff", "a\ud7ff"):
        r = c.get("/admin/subscribers", params={"q": q})
        assert r.status_code == 200 and "Nobody matches" in r.text, q


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(accounts, signed_in) -> None:  # type: ignore[no-untyped-def]
    """Nobody could manage accounts from the console after; the admin once did it to themselves."""
    c = signed_in("admin")
    for action, form in (("role", {"role": "editor"}), ("disable", {})):
        r = c.post(f"/admin/staff/{action}", data={"email": "admin@council.example", **form, "csrf_token": _token(c)})
        assert r.status_code == 400 and "admin@council.example: is the last enabled admin" in r.text, action
    assert c.get("/admin/staff").status_code == 200
    engine = make_engine(accounts.effective_database_url, address_key=accounts.address_key)
    with session_scope(engine) as session:
        add_account(session, "second.admin@council.example", "admin", PASSWORD, actor="test")
    engine.dispose()
    r = c.post("/admin/staff/role", data={"email": "admin@council.example", "role": "editor", "csrf_token": _token(c)})
    assert r.status_code == 303 and c.get("/admin/staff").status_code == 403
