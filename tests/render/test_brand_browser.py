"""Two brands rendered in Chromium: the colours a reader sees are the ones each brand chose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bulletin.config import load_settings
from bulletin.render.build import build_issue
from tests.render.conftest import ROOT, SAMPLE_SLUG

pytestmark = pytest.mark.browser

BRANDS = {
    "plum": {"primary": "#5b2a86", "accent": "#c2185b", "link": "#1b5e20"},
    "navy": {"primary": "#0b3d91", "accent": "#00897b", "link": "#8b0000"},
}


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def seen_colours(browser, url: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 700, "height": 800}, color_scheme="light", offline=True)
    page = context.new_page()
    page.goto(url)
    try:
        return page.evaluate("""() => {
            const css = (el, prop) => getComputedStyle(el).getPropertyValue(prop);
            return {
                heading: css(document.getElementById('contents').closest('h2'), 'color'),
                button: css(document.querySelector('.btn td[bgcolor]'), 'background-color'),
                link: css(document.querySelector('h2:has(#contents) ~ ol a'), 'color'),
                rule: css(document.querySelector('blockquote'), 'border-left-color'),
            };
        }""")
    finally:
        context.close()


def test_two_brands_show_their_own_colours(chromium, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen = {}
    for name, brand in BRANDS.items():
        ws = tmp_path / name
        (ws / "content").mkdir(parents=True)
        shutil.copytree(ROOT / "content" / SAMPLE_SLUG, ws / "content" / SAMPLE_SLUG)
        (ws / "bulletin.toml").write_text("[brand]\n" + "".join(f'{k} = "{v}"\n' for k, v in brand.items()))
        settings = load_settings(ws, public_base_url="https://news.example.org", secret_keys=["k"])
        seen[name] = seen_colours(chromium, build_issue(settings, SAMPLE_SLUG).email_html.as_uri())
    for name, brand in BRANDS.items():
        assert seen[name] == {"heading": rgb(brand["primary"]), "button": rgb(brand["primary"]),
                              "link": rgb(brand["link"]), "rule": rgb(brand["accent"])}, name
    assert seen["plum"] != seen["navy"]
