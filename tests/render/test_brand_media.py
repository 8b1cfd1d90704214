"""[brand] and published images in the rendered issue, and the checks around the workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import lxml.html
import pytest
from PIL import Image

from bulletin.config import Settings, load_settings
from bulletin.errors import ConfigError
from bulletin.render.brand import Brand, contrast, contrast_problems
from bulletin.render.build import build_issue
from bulletin.render.checks import check_issue
from tests.render.conftest import SAMPLE_SLUG

DARK = '[brand]\nprimary = "#5b2a86"\naccent = "#c2185b"\nlink = "#1b5e20"\nfont = "Georgia, serif"\nfooter = "Made in Anytown"\n'


def with_toml(ws: Path, text: str, **overrides: object) -> Settings:
    (ws / "bulletin.toml").write_text(text)
    return load_settings(ws, public_base_url="https://news.example.org", sending_domain="news.example.org", **overrides)


def style_of(html: str, xpath: str) -> str:
    return lxml.html.document_fromstring(html.encode()).xpath(xpath)[0].get("style", "").replace(" ", "")


def test_contrast_is_the_wcag_ratio() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_problems(Brand()) == []


def test_brand_colours_font_and_footer_reach_the_email(workspace: Path) -> None:
    settings = with_toml(workspace, 'organisation = "Anytown Council"\npostal_address = "1 High St"\n' + DARK)
    html = build_issue(settings, SAMPLE_SLUG).email_html.read_text()
    assert "color:#5b2a86" in style_of(html, '//h2[.//*[@id="contents"]]')
    assert "font-family:Georgia,serif" in html.replace(" ", "")
    assert "#00587c" not in html
    # The list's own organisation (lists.toml) beats the workspace default; the brand's footer text leads.
    assert "Made in Anytown · Northshire Shared Services Partnership, Partnership Office" in html


@pytest.mark.parametrize(("line", "pair"), [
    ('primary = "#ffcc00"', "primary #ffcc00 gives"),
    ('link = "#9e9e9e"', "link #9e9e9e gives"),
    ('accent = "#f0f0f0"', "accent #f0f0f0 gives"),
])
def test_an_unreadable_brand_is_refused_and_nothing_is_built(workspace: Path, line: str, pair: str) -> None:
    settings = with_toml(workspace, f"[brand]\n{line}\n")
    with pytest.raises(ConfigError, match=f"bulletin.toml: \\[brand\\]: unreadable brand: {pair}"):
        build_issue(settings, SAMPLE_SLUG)
    assert not (workspace / "build").exists()


def test_a_list_brand_overrides_the_workspace_brand(workspace: Path) -> None:
    lists = workspace / "subscribers" / "lists.toml"
    lists.write_text(lists.read_text().replace('archive_public = true\n', 'archive_public = true\n[list.brand]\nprimary = "#8b0000"\n', 1))
    html = build_issue(with_toml(workspace, DARK), SAMPLE_SLUG).email_html.read_text()
    assert "color:#8b0000" in style_of(html, '//h2[.//*[@id="contents"]]')
    assert "Georgia" in html  # the rest still comes from bulletin.toml


def test_a_bad_list_brand_names_the_list(workspace: Path) -> None:
    lists = workspace / "subscribers" / "lists.toml"
    lists.write_text(lists.read_text().replace('archive_public = true\n', 'archive_public = true\n[list.brand]\nprimary = "#fff"\n', 1))
    with pytest.raises(ConfigError, match="list 'shared-services': brand: unreadable brand"):
        build_issue(with_toml(workspace, ""), SAMPLE_SLUG)


def test_a_logo_in_the_workspace_is_published_and_shown(workspace: Path) -> None:
    Image.new("RGB", (400, 100), "#5b2a86").save(workspace / "logo.png")
    settings = with_toml(workspace, '[brand]\nlogo = "logo.png"\nlogo_alt = "Anytown Council"\n')
    result = build_issue(settings, SAMPLE_SLUG)
    doc = lxml.html.document_fromstring(result.email_html.read_text().encode())
    (img,) = doc.xpath('//img[@alt="Anytown Council"]')
    name = img.get("src").rsplit("/", 1)[1]
    assert img.get("src") == f"https://news.example.org/media/{SAMPLE_SLUG}/{name}"
    assert (result.folder / "media" / name).read_bytes() == (workspace / "logo.png").read_bytes()
    assert img.get("width") == "200"


def test_a_logo_without_alt_text_is_refused(workspace: Path) -> None:
    Image.new("RGB", (40, 10)).save(workspace / "logo.png")
    with pytest.raises(ConfigError, match="logo logo.png has no alt text"):
        build_issue(with_toml(workspace, '[brand]\nlogo = "logo.png"\n'), SAMPLE_SLUG)


def test_the_sample_map_is_copied_sized_and_linked_absolutely(render_settings: Settings) -> None:
    result = build_issue(render_settings, SAMPLE_SLUG)
    (published,) = (result.folder / "media").iterdir()
    source = render_settings.workspace / "content" / SAMPLE_SLUG / "map.png"
    assert published.read_bytes() == source.read_bytes()
    doc = lxml.html.document_fromstring(result.email_html.read_text().encode())
    (img,) = doc.xpath('//img[contains(@src, "/media/")]')
    assert img.get("src") == f"https://news.example.org/media/{SAMPLE_SLUG}/{published.name}"
    width = Image.open(source).size[0]
    assert img.get("width") == str(min(width, 552))
    style = img.get("style").replace(" ", "")
    assert "max-width:100%" in style and "height:auto" in style


def test_check_fails_on_a_list_that_does_not_exist(render_settings: Settings) -> None:
    toml = render_settings.workspace / "content" / SAMPLE_SLUG / "issue.toml"
    toml.write_text(toml.read_text().replace('lists = ["shared-services"]', 'lists = ["shared-servces"]'))
    report = check_issue(render_settings, SAMPLE_SLUG)
    assert any("list 'shared-servces' does not exist in lists.toml" in e for e in report.errors)


def test_check_fails_on_a_subscribe_block_offering_an_unknown_list(render_settings: Settings) -> None:
    block = render_settings.workspace / "content" / SAMPLE_SLUG / "11-subscribe.md"
    block.write_text(block.read_text().replace("slug: workforce", "slug: workfarce"))
    report = check_issue(render_settings, SAMPLE_SLUG)
    assert [e for e in report.errors if "subscribe block" in e] == [
        f"{block}: subscribe block offers list 'workfarce', which does not exist in lists.toml"]


def test_the_sample_passes_check_on_https(render_settings: Settings) -> None:
    report = check_issue(render_settings, SAMPLE_SLUG)
    assert report.ok, report.errors
    assert not [w for w in report.warnings if "public_base_url" in w]


@pytest.mark.parametrize(("url", "words"), [("http://127.0.0.1:8000", "points at this machine"),
                                             ("http://news.example.org", "is not https")])
def test_check_warns_about_a_public_url_readers_cannot_use(workspace: Path, url: str, words: str) -> None:
    shutil.rmtree(workspace / "build", ignore_errors=True)
    settings = load_settings(workspace, public_base_url=url)
    assert any(words in w for w in check_issue(settings, SAMPLE_SLUG).warnings)
