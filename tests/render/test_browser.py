"""The sample email in headless Chromium: no sideways scrolling at phone or desktop width,
contents links scroll to their block, and the dark scheme applies."""

from __future__ import annotations

import shutil
import struct
import zlib
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


@pytest.fixture(scope="module")
def chart_url(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample issue with a bar chart added, built in its own workspace."""
    ws = tmp_path_factory.mktemp("chart-ws")
    shutil.copytree(module_settings.workspace / "content", ws / "content")
    (ws / "content" / SAMPLE_SLUG / "12-chart.md").write_text(
        "---\ntype: stats\nheading: Savings\nfigures:\n  - value: 3\n    label: things\nseries:\n"
        "  title: Savings by service\n  unit: '£k'\n  points:\n    - label: Payroll\n      value: 1800\n"
        "    - label: ICT\n      value: 900\n---\n")
    settings = module_settings.model_copy(update={"workspace": ws})
    return build_issue(settings, SAMPLE_SLUG).email_html.as_uri()


def bar_pixel(page) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """The colour of the screen pixel in the middle of the first bar, from a real screenshot."""
    bar = page.locator("td.bar").first
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    png = page.screenshot(clip={"x": box["x"] + box["width"] / 2 - 1, "y": box["y"] + box["height"] / 2 - 1,
                                "width": 2, "height": 2})
    return png_pixel(png, 1, 1)


def _paeth(a: int, b: int, c: int) -> int:
    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def png_pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    """One RGB pixel of an 8-bit RGB/RGBA PNG (what Chromium writes), without an imaging library."""
    width, _height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    step = 3 if colour == 2 else 4
    data, pos = b"", 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw, stride, prev = zlib.decompress(data), width * step, bytearray(width * step)
    for row in range(y + 1):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - step] if i >= step else 0, prev[i]
            c = prev[i - step] if i >= step else 0
            line[i] = (line[i] + [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]) % 256
        prev = line
    return tuple(prev[x * step:x * step + 3])  # type: ignore[return-value]


def test_stats_bars_keep_their_colour_in_dark_mode(browser, chart_url: str) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, chart_url, 700)
    try:
        page.emulate_media(color_scheme="light")
        light = bar_pixel(page)
        card = page.evaluate("getComputedStyle(document.querySelector('td.bar').closest('.card')).backgroundColor")
        page.emulate_media(color_scheme="dark")
        dark = bar_pixel(page)
        dark_card = page.evaluate(
            "getComputedStyle(document.querySelector('td.bar').closest('.card')).backgroundColor")
    finally:
        context.close()
    assert light == (0x00, 0xA1, 0xB0), light
    assert dark == (0x7C, 0xC4, 0xFF), dark  # the bar, not the card's #161b22 behind it
    assert card != dark_card  # the dark scheme did apply to the card


@pytest.mark.parametrize(("scheme", "background"), [("light", "rgb(238, 242, 245)"), ("dark", "rgb(13, 17, 23)")])
def test_colour_scheme_follows_the_reader(browser, email_url: str, scheme: str, background: str) -> None:  # type: ignore[no-untyped-def]
    context, page = open_page(browser, email_url, 700, scheme)
    try:
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
    finally:
        context.close()
