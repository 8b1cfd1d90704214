"""End to end in Debian's chromium: `bulletin serve` in a subprocess, signup, mail, confirm, unsubscribe.

Screenshots of each page at phone width (375 px) go to test-artifacts/web/
(gitignored) for a human to look at; the assertions are on the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from bulletin.audience.links import Links
from bulletin.audience.subscribers import find_subscriber
from bulletin.config import Settings, load_settings
from tests.smtp_sink import free_port
from tests.web.conftest import confirm_link, list_id, outbox, state_of

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "web"



@pytest.fixture
def served(synced: Settings) -> Iterator[Settings]:
    """`bulletin serve` on a free port of 127.0.0.1, for the synced workspace and database."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (synced.workspace / "bulletin.toml").write_text(
        f'database_url = "{synced.effective_database_url}"\npublic_base_url = "{base}"\n'
        f'sending_domain = "news.example.org"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    proc = subprocess.Popen([sys.executable, "-m", "bulletin", "-w", str(synced.workspace), "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(base, proc)
        yield load_settings(synced.workspace)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_until_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"bulletin serve exited: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if httpx.get(f"{base}/signup", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("bulletin serve did not answer")


@pytest.fixture
def page(served: Settings, chromium) -> Iterator[object]:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2)
    yield context.new_page()
    context.close()


def _shot(page, name: str, db_kind: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(SHOTS / f"{db_kind}-{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{name} scrolls sideways on a phone ({width}px)"


def test_signup_confirm_and_unsubscribe_in_chromium(page, served: Settings, db: Session) -> None:  # type: ignore[no-untyped-def]
    kind = "pg" if served.effective_database_url.startswith("postgresql") else "sqlite"
    base = served.public_base_url
    page.goto(f"{base}/signup")
    _shot(page, "signup-all", kind)
    page.goto(f"{base}/signup/shared-services")
    _shot(page, "signup", kind)
    # Filled through the labels (every field must have one) and submitted from the keyboard.
    page.get_by_label("Email address").fill("e2e.officer@example.org")
    page.get_by_label("Name").fill("Edith Example")
    page.get_by_label("Organisation").fill("Example Borough Council")
    page.get_by_label("Organisation").press("Enter")
    page.wait_for_selector("text=Check your inbox")
    _shot(page, "signup-done", kind)
    assert state_of(db, "e2e.officer@example.org", "shared-services") == "pending"

    mails = outbox(served)
    assert len(mails) == 1 and mails[0]["To"] == "e2e.officer@example.org"
    page.goto(confirm_link(mails[0]))
    _shot(page, "confirm", kind)
    assert state_of(db, "e2e.officer@example.org", "shared-services") == "pending"  # the GET changed nothing
    page.get_by_role("button", name="Confirm my subscription").click()
    page.wait_for_selector("text=Subscription confirmed")
    _shot(page, "confirmed", kind)
    assert state_of(db, "e2e.officer@example.org", "shared-services") == "confirmed"

    sub = find_subscriber(db, "e2e.officer@example.org")
    assert sub is not None and sub.id is not None
    links = Links.for_settings(served)
    page.goto(links.preferences_url(sub.id))
    _shot(page, "preferences", kind)
    page.goto(links.unsubscribe_url(sub.id, list_id(db, "shared-services")))
    _shot(page, "unsubscribe", kind)
    assert state_of(db, "e2e.officer@example.org", "shared-services") == "confirmed"  # GET changed nothing
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_selector("text=You have been unsubscribed")
    _shot(page, "unsubscribed", kind)
    assert state_of(db, "e2e.officer@example.org", "shared-services") == "unsubscribed"

    page.goto(f"{base}/archive/")
    _shot(page, "archive", kind)
    page.goto(f"{base}/confirm/forged-token")
    _shot(page, "bad-link", kind)
    assert "cannot be used" in page.content()


SERIOUS = ("serious", "critical")


def _axe(page) -> None:  # type: ignore[no-untyped-def]
    """axe-core on the current page: no serious or critical accessibility violation."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in violations if v["impact"] in SERIOUS]
    assert not bad, bad


def test_a_scanner_fetch_confirms_nothing_and_the_button_does(page, served: Settings, db: Session) -> None:  # type: ignore[no-untyped-def]
    kind = "pg" if served.effective_database_url.startswith("postgresql") else "sqlite"
    base = served.public_base_url
    page.goto(f"{base}/signup/workforce")
    page.get_by_label("Email address").fill("scanned.officer@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_selector("text=Check your inbox")
    _axe(page)
    link = confirm_link(outbox(served)[0])
    # What Safe Links / Mimecast / Proofpoint do: fetch the link with their own user agent.
    scanner = httpx.get(link, headers={"User-Agent": "Mozilla/5.0 (compatible; Microsoft SafeLinks scanner)"})
    assert scanner.status_code == 200
    assert state_of(db, "scanned.officer@example.org", "workforce") == "pending"
    page.goto(link)
    assert "s•••r@e•••e.org" in page.content() and "Workforce e-bulletin" in page.content()
    _shot(page, "confirm-page", kind)
    _axe(page)
    assert state_of(db, "scanned.officer@example.org", "workforce") == "pending"
    page.get_by_role("button", name="Confirm my subscription").click()
    page.wait_for_selector("text=Subscription confirmed")
    _axe(page)
    assert state_of(db, "scanned.officer@example.org", "workforce") == "confirmed"
    sub = find_subscriber(db, "scanned.officer@example.org")
    from sqlmodel import select

    from bulletin.models import SubscriberEvent

    db.expire_all()
    event = db.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.id,  # type: ignore[union-attr]
                                                  SubscriberEvent.new_state == "confirmed")).one()
    assert "SafeLinks" not in (event.user_agent or "") and "Chrome" in (event.user_agent or "")


def test_data_request_flow_in_chromium(page, served: Settings, db: Session) -> None:  # type: ignore[no-untyped-def]
    from bulletin.audience.lifecycle import subscribe
    from bulletin.models import Subscriber
    from tests.web.conftest import link_in

    kind = "pg" if served.effective_database_url.startswith("postgresql") else "sqlite"
    sub = subscribe(db, "asks@example.org", [list_id(db, "shared-services")], name="Asha", confirmed=True,
                    source="cli", actor="t")
    db.commit()
    page.goto(Links.for_settings(served).preferences_url(sub.id))  # type: ignore[arg-type]
    _axe(page)
    page.get_by_role("button", name="Email me my data").click()
    page.wait_for_selector("text=We are sending a link")
    _axe(page)
    export_link = link_in([m for m in outbox(served) if m["Subject"] == "Your bulletin data"][0])
    page.goto(export_link)
    _shot(page, "my-data", kind)
    _axe(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data (JSON)").click()
    assert b'"asks@example.org"' in open(download.value.path(), "rb").read()
    page.goto(export_link)
    assert "cannot be used" in page.content()

    page.goto(Links.for_settings(served).preferences_url(sub.id))  # type: ignore[arg-type]
    page.get_by_role("button", name="Erase me").click()
    page.wait_for_selector("text=We are sending a link")
    erase_link = link_in([m for m in outbox(served) if "erase" in m["Subject"]][0])
    page.goto(erase_link)
    _shot(page, "erase", kind)
    _axe(page)
    page.get_by_label("I want all my details erased and to receive no more bulletins").check()
    page.get_by_role("button", name="Erase me").click()
    page.wait_for_selector("text=Your data has been erased")
    _axe(page)
    db.expire_all()
    assert db.get(Subscriber, sub.id).email is None  # type: ignore[union-attr]
    page.goto(erase_link)
    assert "cannot be used" in page.content()


def test_a_suppressed_person_leaves_a_list_from_the_preferences_page_in_chromium(  # type: ignore[no-untyped-def]
        page, served: Settings, db: Session) -> None:
    """What a browser really posts: the page disables only the boxes of lists the address is not on,
    so saving a new name keeps its lists, and unticking one leaves it; the disabled box cannot be ticked."""
    from bulletin.audience.lifecycle import subscribe, suppress

    sub = subscribe(db, "blocked@example.org", [list_id(db, "shared-services"), list_id(db, "workforce")],
                    name="Bea", confirmed=True, source="cli", actor="t")
    assert sub.id is not None
    suppress(db, sub.id, "manual", source="cli", actor="t")
    db.commit()
    page.goto(Links.for_settings(served).preferences_url(sub.id))
    assert page.get_by_label("Productivity and Digital e-bulletin").is_disabled()
    page.get_by_label("Name", exact=True).fill("Bea Q")
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_selector("text=Your preferences have been saved")
    assert state_of(db, "blocked@example.org", "shared-services") == "confirmed"
    assert state_of(db, "blocked@example.org", "workforce") == "confirmed"
    page.get_by_label("Workforce e-bulletin").uncheck(timeout=5000)
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_selector("text=Your preferences have been saved")
    assert state_of(db, "blocked@example.org", "workforce") == "unsubscribed"
    assert state_of(db, "blocked@example.org", "shared-services") == "confirmed"
    assert not page.get_by_label("Workforce e-bulletin").is_checked()
    assert page.get_by_label("Workforce e-bulletin").is_disabled()  # left: now a list it is not on
