"""A reader who sees 7 of the 11 blocks, in headless Chromium: every contents link scrolls to a visible block."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulletin.audience.conditions import Reader
from bulletin.render.build import compile_issue
from tests.render.conftest import ALICE, SAMPLE_SLUG, SENDER
from tests.render.test_targeting import targeted_workspace

pytestmark = pytest.mark.browser

ICT = Reader(attributes={"role": "ICT architect", "region": "west"})  # matches none of the 4 targeted blocks


@pytest.fixture(scope="module")
def seven_of_eleven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("targeted-browser")
    compiled = compile_issue(targeted_workspace(root), SAMPLE_SLUG)
    assert len(compiled.visible_blocks(compiled.choose(ICT))) == 7
    path = root / "email.html"
    path.write_text(compiled.fill(ALICE, SENDER, reader=ICT).html, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", [375, 700])
def test_every_contents_link_scrolls_to_a_visible_block(chromium, seven_of_eleven: Path, width: int) -> None:  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": width, "height": 800}, offline=True)
    page = context.new_page()
    try:
        page.goto(seven_of_eleven.as_uri())
        links = page.eval_on_selector_all("ol a[href^='#']", "els => els.map(e => e.getAttribute('href'))")
        assert len(links) == 7
        for href in links:
            page.evaluate("window.scrollTo(0, 0); history.replaceState(null, '', ' ')")
            page.click(f'ol a[href="{href}"]')
            page.wait_for_function(f"location.hash === {href!r}")
            box = page.evaluate(f"""(() => {{ const el = document.getElementById({href[1:]!r});
                const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                return [r.top, r.height, s.visibility, s.display, window.scrollY,
                        document.documentElement.scrollHeight - window.innerHeight]; }})()""")
            top, height, visibility, display, scroll_y, max_y = box
            assert height > 0 and visibility == "visible" and display != "none", href
            assert abs(top) <= 1 or scroll_y >= max_y - 1, f"{href}: block top at {top}px after the jump"
            assert top < 800, href
        assert page.locator('a[href="#top"]').count() == 7
        assert page.evaluate("document.querySelectorAll('h2 a[name][id]').length") == 8  # 7 blocks + contents
    finally:
        context.close()
