"""Fixtures of the web tests: the app on the parametrized database, synced lists, the outbox."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlmodel import Session, select

from bulletin.audience.lists import load_lists, sync_lists
from bulletin.config import Settings
from bulletin.db import make_engine, session_scope, use_address_key
from bulletin.models import MailingList
from bulletin.web.app import create_app
from bulletin.web.options import WebOptions
from bulletin.workspace import Workspace

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CONFIRM_RE = re.compile(r"(https?://\S+/confirm/\S+)")
LINK_RE = re.compile(r"(https?://\S+/(?:my-data|erase|preferences)/\S+)")


@pytest.fixture
def synced(settings: Settings) -> Settings:
    """Settings whose database holds the lists of subscribers/lists.toml."""
    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    with session_scope(engine) as session:
        sync_lists(session, load_lists(settings.path(settings.subscribers_dir) / "lists.toml"))
    engine.dispose()
    return settings


def make_client(settings: Settings, **options: object) -> TestClient:
    """The app in-process; the in-app notice sender is off unless asked for (`outbox()` drains the queue).

    The client speaks https when `public_base_url` does, as a browser behind the TLS proxy would, so the
    Secure `__Host-` CSRF cookie is sent back.
    """
    options.setdefault("notice_interval", 0)
    scheme = "https" if settings.public_base_url.startswith("https://") else "http"
    return TestClient(create_app(Workspace(settings), WebOptions(**options)), follow_redirects=False,  # type: ignore[arg-type]
                      base_url=f"{scheme}://testserver")


@pytest.fixture
def client(synced: Settings) -> Iterator[TestClient]:
    with make_client(synced) as c:
        yield c


@pytest.fixture
def db(synced: Settings) -> Iterator[Session]:
    """A session for arranging and asserting; commit after writing so the app can write too."""
    url = synced.effective_database_url
    if url.startswith("sqlite"):
        # pysqlite's own transactions begin only at the first write, so reads here never hold
        # the lock the app needs and always see its latest commit (make_engine begins IMMEDIATE).
        engine = create_engine(url, connect_args={"timeout": 30})
        use_address_key(engine, synced.address_key or "")
    else:
        engine = make_engine(url, address_key=synced.address_key)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def list_id(session: Session, slug: str) -> int:
    session.expire_all()
    ml = session.exec(select(MailingList).where(MailingList.slug == slug)).one()
    assert ml.id is not None
    return ml.id


def state_of(db: Session, email_addr: str, slug: str) -> str | None:
    """The subscription state of an address on a list, read fresh from the database."""
    from bulletin.audience.subscribers import find_subscriber
    from bulletin.models import Subscription

    db.expire_all()
    sub = find_subscriber(db, email_addr)
    if sub is None:
        return None
    row = db.exec(select(Subscription).where(Subscription.subscriber_id == sub.id,
                                             Subscription.list_id == list_id(db, slug))).first()
    return row.state if row else None


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found, "page has no CSRF token"
    return found.group(1)


def send_notices(settings: Settings) -> None:
    """What the notice sender does in the background: send every queued notice now."""
    from bulletin.audience.notices import send_due

    engine = make_engine(settings.effective_database_url, address_key=settings.address_key)
    try:
        while send_due(engine, settings).total:
            pass
    finally:
        engine.dispose()


def outbox(settings: Settings) -> list[Message]:
    """The mail sent so far, after the notice sender has sent what is queued."""
    send_notices(settings)
    folder = settings.outbox_path / "new"
    if not folder.is_dir():
        return []
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.iterdir())]


def confirm_link(msg: Message) -> str:
    part = msg.get_body(("plain",)) if hasattr(msg, "get_body") else msg
    text = part.get_payload(decode=True).decode() if part and not part.is_multipart() else str(msg)
    found = CONFIRM_RE.search(text)
    assert found, f"no confirm link in: {text!r}"
    return found.group(1)


def link_in(msg: Message) -> str:
    """The data-request or preferences link in a notice."""
    text = msg.get_payload(decode=True).decode() if not msg.is_multipart() else str(msg)
    found = LINK_RE.search(text)
    assert found, f"no link in: {text!r}"
    return found.group(1)


def confirm_by_press(client: TestClient, link: str, user_agent: str = "testclient"):  # type: ignore[no-untyped-def]
    """Open the confirmation page and press its button, as a person does."""
    page = client.get(link, headers={"User-Agent": user_agent})
    found = CSRF_RE.search(page.text)
    if page.status_code != 200 or not found:
        return page
    return client.post(link, data={"csrf_token": found.group(1)}, headers={"User-Agent": user_agent})


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def signup(client: TestClient, email_addr: str, path: str = "/signup/shared-services", **fields: str):  # type: ignore[no-untyped-def]
    token = csrf(client, path)
    data = {"csrf_token": token, "email": email_addr, "name": "Ann Example", "organisation": "Example Council"}
    data.update(fields)
    return client.post(path, data=data)


def read_outbox_paths(settings: Settings) -> list[Path]:
    folder = settings.outbox_path / "new"
    return sorted(folder.iterdir()) if folder.is_dir() else []
