"""The sample email in headless Chromium: no sideways scrolling at phone or desktop width,
contents links scroll to their block, and the dark scheme applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulletin.config import Settings
from bulletin.render.build import build_issue
from tests.render.conftest import SAMPLE_SLUG

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def browser(chromium: object) -> object:
    return chromium


@pytest.fixture(scope="module")
def email_url(module_settings: Settings) -> str:
    return build_issue(module_settings, SAMPLE_SLUG).email_html.as_uri()


def open_page(browser, url: str, width: int, scheme: str = "light"):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme,
                                  java_script_enabled=True, offline=True)
    page = context.new_page()
    page.goto(url)
    return context, page


@pytest.mark.parametrize("width", [375, 700])
def test_no_horizontal_scrolling(browser, email_url: str, width: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, email_url, width)
    try:
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        page.screenshot(path=str(tmp_path / f"email-{width}.png"), full_page=True)
        assert overflow <= 0, f"page is {overflow}px wider than a {width}px screen"
    finally:
        context.close()


@pytest.mark.parametrize("width", [375, 700])
@pytest.mark.parametrize("anchor", ["briefing-papers", "learning-event"])
def test_clicking_a_contents_link_scrolls_to_its_block(browser, email_url: str, width: int, anchor: str) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, email_url, width)
    try:
        assert page.evaluate("window.scrollY") == 0
        page.click(f'ol a[href="#{anchor}"]')
        page.wait_for_function("location.hash.length > 1")
        top, scroll_y, max_y = page.evaluate(
            f"""[document.getElementById({anchor!r}).getBoundingClientRect().top, window.scrollY,
                document.documentElement.scrollHeight - window.innerHeight]"""
        )
        assert page.evaluate("location.hash") == f"#{anchor}"
        assert scroll_y > 0
        assert abs(top) <= 1 or scroll_y >= max_y - 1, f"block top at {top}px after the jump"
    finally:
        context.close()


@pytest.mark.parametrize("width", [375, 700])
def test_links_scroll_by_name_alone_as_in_gmail_and_outlook(browser, email_url: str, width: int) -> None:  # type: ignore[no-untyped-def]
    """Gmail web and Outlook drop ids: with every id removed, the named anchors still take the reader there."""
    context, page = open_page(browser, email_url, width)
    try:
        page.evaluate("document.querySelectorAll('[id]').forEach(e => e.removeAttribute('id'))")
        for anchor in ("match-making", "top"):
            page.click(f'a[href="#{anchor}"] >> nth=0' if anchor == "match-making" else 'a[href="#top"] >> nth=6')
            page.wait_for_function(f"location.hash === '#{anchor}'")
            top, scroll_y, max_y = page.evaluate(
                f"""[document.getElementsByName({anchor!r})[0].getBoundingClientRect().top, window.scrollY,
                    document.documentElement.scrollHeight - window.innerHeight]"""
            )
            if anchor == "top":
                assert scroll_y < 50 and top >= 0
            else:
                assert scroll_y > 0
                assert abs(top) <= 1 or scroll_y >= max_y - 1, f"{anchor} at {top}px after the jump"
    finally:
        context.close()


def test_back_to_top_returns_to_the_top(browser, email_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, email_url, 375)
    try:
        page.click('ol a[href="#match-making"]')
        assert page.evaluate("window.scrollY") > 0
        page.locator('a[href="#top"]').nth(6).click()
        page.wait_for_function("location.hash === '#top'")
        assert page.evaluate("document.getElementById('top').getBoundingClientRect().top") >= 0
        assert page.evaluate("window.scrollY") < 50
    finally:
        context.close()


@pytest.mark.parametrize(("scheme", "background"), [("light", "rgb(238, 242, 245)"), ("dark", "rgb(13, 17, 23)")])
def test_colour_scheme_follows_the_reader(browser, email_url: str, scheme: str, background: str) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, email_url, 700, scheme)
    try:
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
    finally:
        context.close()
