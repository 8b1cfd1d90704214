"""Fixtures of the console tests: one account per role, a signed-in client for each, sample people."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from bulletin.accounts import add_account
from bulletin.audience import importer
from bulletin.audience.links import Links
from bulletin.audience.subscribers import find_subscriber
from bulletin.config import Settings
from bulletin.db import make_engine, session_scope
from bulletin.delivery.issues import publish_issue
from bulletin.inbound import ingest
from bulletin.models import id_of
from bulletin.render.compiled import BlockRef, Compiled, Template
from bulletin.web.app import create_app
from bulletin.web.options import WebOptions
from bulletin.workspace import Workspace
from tests.web.conftest import synced  # noqa: F401 - a shared fixture

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "plum-orchard-window-42"
ROLES = ("editor", "staff", "admin")


COOKIE = "__Host-bulletin_session"  # the test workspace's public_base_url is https


def console_client(settings: Settings) -> TestClient:
    """A client over https, as the Secure session cookie needs."""
    return TestClient(create_app(Workspace(settings), WebOptions()), base_url="https://testserver",
                      follow_redirects=False)


def email_of(role: str) -> str:
    return f"{role}@council.example"


@pytest.fixture
def accounts(synced: Settings) -> Settings:  # noqa: F811
    """Settings whose database has the sample subscribers and one account per role."""
    engine = make_engine(synced.effective_database_url, address_key=synced.address_key)
    importer.import_csv(engine, synced.path(synced.subscribers_dir) / "sample.csv", actor="test")
    with session_scope(engine) as session:
        for role in ROLES:
            add_account(session, email_of(role), role, PASSWORD, actor="test")
    engine.dispose()
    return synced


def token_of(client: TestClient, path: str = "/admin/login") -> str:
    page = client.get(path)
    if page.status_code == 303:  # signed in already: any console page carries the token
        page = client.get(page.headers["location"])
    found = CSRF_RE.search(page.text)
    assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:300]}"
    return found.group(1)


def sign_in(client: TestClient, role: str, password: str = PASSWORD, next_path: str = "/admin"):  # type: ignore[no-untyped-def]
    token = token_of(client)
    return client.post("/admin/login", data={"csrf_token": token, "email": email_of(role), "password": password,
                                             "next": next_path})


@pytest.fixture
def signed_in(accounts: Settings) -> Iterator[Callable[[str | None], TestClient]]:
    """A factory of clients, each signed in with one role (None: anonymous)."""
    opened: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        c = console_client(accounts)
        c.__enter__()
        opened.append(c)
        if role:
            r = sign_in(c, role)
            assert r.status_code == 303, r.text
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


ISSUE_SUBJECT = "Shared Services e-bulletin: June 2016"
AMINA = "amina.khan@riverside.example.gov.uk"


@dataclass
class Sample:
    """What the console tests act on: a published issue, a reply to its feedback block, unmatched mail."""

    settings: Settings
    issue: str
    amina_id: int
    feedback_id: int
    unmatched_id: int


def _mail(*, to: str, frm: str, subject: str, body: str, message_id: str, headers: dict[str, str]) -> bytes:
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}", f"Message-ID: {message_id}",
             "Date: Wed, 01 Jun 2016 10:00:00 +0000", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


@pytest.fixture
def sample(accounts: Settings) -> Sample:
    engine = make_engine(accounts.effective_database_url, address_key=accounts.address_key)
    links = Links.for_settings(accounts)
    text = Template(chunks=("Hello",), slots=(), escape=False)
    compiled = Compiled(slug="2016-06", title="June 2016", subject=ISSUE_SUBJECT, preheader="",
                        issue_date="2016-06-01", lists=("shared-services",), html=text, text=text,
                        web_html="<p>Hello</p>",
                        blocks=(BlockRef("payroll-merger", "story", "Payroll merger"),
                                BlockRef("we-want-to-hear-from-you", "feedback", "We want to hear from you")))
    with session_scope(engine) as session:
        issue_id = id_of(publish_issue(session, compiled))
        amina = find_subscriber(session, AMINA)
        assert amina is not None and amina.id is not None
        amina_id = amina.id
    reply = _mail(to=links.reply_address(amina_id, issue_id), frm=f"Amina Khan <{AMINA}>",
                  subject=f"Re: {ISSUE_SUBJECT} [we-want-to-hear-from-you]",
                  body="We would like a piece on the payroll merger timetable.\n", message_id="<reply-1@riverside.example>",
                  headers={"References": links.message_id(amina_id, issue_id)})
    fb = ingest(engine, accounts, reply, source="test")
    stray = _mail(to="hello@council.example", frm="Stranger <someone@elsewhere.example>", subject="A question",
                  body="Who do I talk to about the map?\n", message_id="<stray-1@elsewhere.example>", headers={})
    un = ingest(engine, accounts, stray, source="test")
    engine.dispose()
    assert fb.feedback_id is not None and un.classification == "unmatched", (fb, un)
    return Sample(accounts, "2016-06", amina_id, fb.feedback_id, un.inbound_id)
