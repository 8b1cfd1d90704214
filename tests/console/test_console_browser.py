"""The console end to end in Debian's chromium: staff unsubscribes Amina, an editor answers a reply.

Every console page visited is checked with axe-core (axe-playwright-python): no
serious or critical violation. The dashboard screenshot for the README is
written to docs/console.png by the SQLite run.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bulletin.config import Settings, load_settings
from tests.console.conftest import AMINA, PASSWORD, Sample, email_of
from tests.smtp_sink import free_port

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "console.png"



@pytest.fixture
def served(sample: Sample) -> Iterator[Settings]:
    """`bulletin serve` over plain http on 127.0.0.1 for the sample workspace and database."""
    settings = sample.settings
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (settings.workspace / "bulletin.toml").write_text(
        f'database_url = "{settings.effective_database_url}"\npublic_base_url = "{base}"\n'
        f'sending_domain = "news.example.org"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    proc = subprocess.Popen([sys.executable, "-m", "bulletin", "-w", str(settings.workspace), "serve", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "serve exited")
            try:
                if httpx.get(f"{base}/admin/login", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield load_settings(settings.workspace)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _axe(page) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']}" for v in bad)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} scrolls sideways at 375 px ({width}px)"


def _sign_in(page, base: str, role: str, path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}{path}")
    assert "/admin/login" in page.url
    _axe(page)
    page.get_by_label("Email address").fill(email_of(role))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(f"{base}{path}")


def test_staff_unsubscribes_amina_and_the_consent_log_names_them(served: Settings, chromium, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    base = served.public_base_url
    context = chromium.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    _sign_in(page, base, "staff", "/admin/subscribers")
    _axe(page)
    page.get_by_label("Address, name or organisation starts with").fill("amina")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=AMINA).click()
    page.wait_for_selector("#consent-log")
    _axe(page)
    page.get_by_role("button", name="Unsubscribe from workforce").click()
    page.wait_for_selector("text=Unsubscribed.")
    log = page.locator("#consent-log").inner_text()
    assert "unsubscribe" in log and "staff:staff@council.example" in log
    for path in ("/admin", "/admin/issues", f"/admin/issues/{sample.issue}", "/admin/feedback",
                 f"/admin/feedback/{sample.feedback_id}", "/admin/inbound", "/admin/pending", "/admin/bounces",
                 "/admin/import"):
        page.goto(f"{base}{path}")
        _axe(page)
    context.close()


def test_admin_pages_pass_axe_and_the_readme_screenshot(served: Settings, chromium) -> None:  # type: ignore[no-untyped-def]
    base = served.public_base_url
    context = chromium.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    _sign_in(page, base, "admin", "/admin")
    for path in ("/admin/staff", "/admin/audit", "/admin"):
        page.goto(f"{base}{path}")
        _axe(page)
    if served.effective_database_url.startswith("sqlite"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 900, "height": 560})
        page.screenshot(path=str(SCREENSHOT))
    context.close()


def test_editor_reads_a_reply_and_answers_it_in_the_thread(served: Settings, chromium, sample: Sample) -> None:  # type: ignore[no-untyped-def]
    base = served.public_base_url
    context = chromium.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    _sign_in(page, base, "editor", "/admin/feedback")
    page.get_by_label("Block").select_option("we-want-to-hear-from-you")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="We would like a piece on the payroll merger timetable.").click()
    page.wait_for_selector("text=What they wrote")
    _axe(page)
    page.get_by_label("Your answer to").fill("Thank you, Amina: the timetable is in the next issue.")
    page.get_by_role("button", name="Send answer").click()
    page.wait_for_selector("text=Answer queued")
    assert "status answered" in page.content()
    assert page.get_by_role("button", name="Send answer").count() == 0  # answered once: no second answer
    # A staff page is refused to an editor (403), and says so.
    assert page.goto(f"{base}/admin/subscribers").status == 403  # type: ignore[union-attr]
    context.close()
    for _ in range(100):  # the app's notice sender mails the queued answer after the commit
        folder = served.outbox_path / "new"
        mails = [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.iterdir())] if folder.is_dir() else []
        answers = [m for m in mails if m["In-Reply-To"] == "<reply-1@riverside.example>"]
        if answers:
            break
        time.sleep(0.1)
    assert len(answers) == 1 and answers[0]["To"] == AMINA
    assert "<reply-1@riverside.example>" in answers[0]["References"]
