"""Rendering the sample issue: anchors, back-to-top links, inlined styles, text part, slots."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import lxml.html
import pytest

from bulletin.compose import load_issue
from bulletin.config import Settings, default_templates_dir
from bulletin.errors import ContentError
from bulletin.render.build import build_issue, compile_issue, issue_folder
from bulletin.render.compiled import LIST_SLOTS, SLOTS, Compiled, Recipient, marker
from bulletin.render.media import media_url
from bulletin.render.pipeline import render_html, render_text
from bulletin.render.templating import make_environments
from tests.render.conftest import ALICE, SAMPLE_SLUG, SENDER


def doc_of(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html.encode())


@pytest.fixture(scope="module")
def alice_html(sample: Compiled) -> str:
    return sample.fill(ALICE, SENDER).html


def test_every_contents_link_targets_an_existing_block_id(sample: Compiled, alice_html: str) -> None:
    doc = doc_of(alice_html)
    contents = doc.xpath('//*[@id="contents"]/following::ol[1]//a/@href')
    assert contents == [f"#{b.anchor}" for b in sample.blocks]
    ids = set(doc.xpath("//@id"))
    assert all(href[1:] in ids for href in contents)
    assert all(doc.get_element_by_id(b.anchor).text_content() == b.heading for b in sample.blocks)


def test_every_target_is_a_named_anchor_with_the_same_id(sample: Compiled, alice_html: str) -> None:
    doc = doc_of(alice_html)
    for anchor in ["top", "contents"] + [b.anchor for b in sample.blocks]:
        target = doc.get_element_by_id(anchor)
        assert (target.tag, target.get("name"), target.get("href")) == ("a", anchor, None)
        assert doc.xpath(f'//a[@name="{anchor}"]') == [target]
    headings = {b.anchor: doc.get_element_by_id(b.anchor).getparent().tag for b in sample.blocks}
    assert set(headings.values()) == {"h2"}


def test_every_block_ends_with_a_back_to_top_link_to_the_top_anchor(sample: Compiled, alice_html: str) -> None:
    doc = doc_of(alice_html)
    anchors = [b.anchor for b in sample.blocks]
    for this, nxt in zip(anchors, anchors[1:] + ["footer"], strict=True):
        between = doc.xpath(f'//*[@id="{this}"]/following::a[@href="#top"][1]/following::*[@id="{nxt}"]')
        assert between, f"no Back to top link between {this} and {nxt}"
    backs = doc.xpath('//a[@href="#top"]')
    assert len(backs) == len(anchors) and all(a.text_content() == "Back to top" for a in backs)
    top = doc.get_element_by_id("top").getparent()
    assert top.xpath(".//a/@href") == [ALICE.view_online_url]  # view online sits at the very top


def test_styles_are_inlined_and_only_media_rules_stay_in_style_tags(alice_html: str) -> None:
    doc = doc_of(alice_html)
    h2 = doc.get_element_by_id("contents").getparent()
    assert "color:#00587c" in h2.get("style", "").replace(" ", "")
    for style in doc.xpath("//style"):
        css = re.sub(r"/\*.*?\*/", "", style.text or "", flags=re.S).strip()
        assert css.startswith("@media") or ".mj-outlook-group-fix" in css or ".moz-text-html" in css, css[:80]


def test_doctype_colour_schemes_and_media_rules_survive(alice_html: str) -> None:
    assert alice_html.startswith("<!doctype html>")
    assert "@media (prefers-color-scheme: dark)" in alice_html
    assert "@media only screen and (max-width: 480px)" in alice_html
    assert '<meta name="color-scheme" content="light dark">' in alice_html
    assert "!important" in alice_html.split("prefers-color-scheme")[1][:400]


def test_nothing_remote_is_loaded(alice_html: str) -> None:
    doc = doc_of(alice_html)
    assert not doc.xpath("//link[@rel='stylesheet']") and not doc.xpath("//script")
    assert "googleapis" not in alice_html and "@import" not in alice_html


def test_text_part_holds_every_heading_numbered_and_every_link(sample: Compiled, alice_html: str) -> None:
    text = sample.fill(ALICE, SENDER).text
    for n, block in enumerate(sample.blocks, 1):
        assert f"\n{n}. {block.heading}\n" in text
    links = set(doc_of(alice_html).xpath("//a/@href"))
    for href in links:
        if href.startswith("#"):
            continue
        shown = href[7:].split("?")[0] if href.startswith("mailto:") else href
        assert shown in text, href
    assert "Back to top" not in text and "<" not in text.replace("<https://", "").replace("<mailto", "")


def test_feedback_button_replies_to_the_reply_slot_naming_the_block(sample: Compiled, alice_html: str) -> None:
    hrefs = [h for h in doc_of(alice_html).xpath("//a/@href") if h.startswith(f"mailto:{ALICE.reply_address}")]
    assert len(hrefs) == 1
    assert unquote(hrefs[0].split("?subject=")[1]) == f"Re: {sample.subject} [we-want-to-hear-from-you]"


def test_subscribe_block_links_to_signup_pages_on_the_public_base_url(alice_html: str) -> None:
    hrefs = doc_of(alice_html).xpath("//a/@href")
    assert "https://news.example.org/signup/productivity" in hrefs
    assert "https://news.example.org/signup/workforce" in hrefs


def test_footer_carries_unsubscribe_and_preferences(alice_html: str) -> None:
    footer = doc_of(alice_html).get_element_by_id("footer")
    assert set(footer.xpath(".//a/@href")) >= {ALICE.unsubscribe_url, ALICE.preferences_url}


def test_both_footers_name_the_sender_the_list_why_and_the_postal_address(sample: Compiled) -> None:
    filled = sample.fill(ALICE, SENDER)
    footer = doc_of(filled.html).get_element_by_id("footer").getparent().text_content()
    text_footer = filled.text.split("\n-- \n", 1)[1]
    for part in (footer, " ".join(text_footer.split())):
        assert SENDER.organisation in part and SENDER.list_name in part and SENDER.postal_address in part
        assert "because you subscribed" in part
    assert ALICE.unsubscribe_url in text_footer and ALICE.preferences_url in text_footer


def test_the_web_copy_names_the_first_list_from_lists_toml(render_settings: Settings) -> None:
    web = compile_issue(render_settings, SAMPLE_SLUG).web_html
    assert "Northshire Shared Services Partnership" in web and "Shared Services e-bulletin" in web
    assert "14 Guildhall Walk, Wellsbury, WB1 4QT, United Kingdom" in web


def test_fill_escapes_for_html_and_not_for_text(sample: Compiled) -> None:
    filled = sample.fill(ALICE, SENDER)
    assert "Dear Alice O&#x27;Neill &amp; co," in filled.html
    assert "Dear Alice O'Neill & co," in filled.text
    assert "tok-alice?x=1&amp;y=2" in filled.html and "tok-alice?x=1&y=2" in filled.text
    assert "BULLETINSLOT" not in filled.html + filled.text


def test_fill_equals_a_full_render_with_the_same_values(module_settings: Settings, sample: Compiled) -> None:
    """The cheap path and the slow path agree, so skipping the re-render loses nothing."""
    issue = load_issue(issue_folder(module_settings, SAMPLE_SLUG), media_url=media_url(module_settings, SAMPLE_SLUG))
    html_env, text_env = make_environments(module_settings)
    plain = {s: ALICE.value(s).replace("&", "").replace("'", "") for s in SLOTS}
    recipient = Recipient(**plain)
    filled = sample.fill(recipient, SENDER)
    values = plain | {s: SENDER.value(s) for s in LIST_SLOTS}
    assert filled.html == render_html(html_env, issue, values, module_settings.public_base_url)
    assert filled.text == render_text(text_env, issue, values, module_settings.public_base_url)


def test_compiled_survives_json(sample: Compiled) -> None:
    again = Compiled.from_json(sample.to_json())
    assert again == sample
    assert again.fill(ALICE, SENDER) == sample.fill(ALICE, SENDER)


def test_web_copy_has_no_personal_slots(sample: Compiled) -> None:
    assert "BULLETINSLOT" not in sample.web_html
    assert "Dear reader," in sample.web_html
    assert "https://news.example.org/signup/shared-services" in sample.web_html
    assert "reply@news.example.org" in sample.web_html


def test_every_slot_marker_survives_the_pipeline(sample: Compiled) -> None:
    assert set(sample.html.slots) == set(SLOTS + LIST_SLOTS)
    assert set(sample.text.slots) == set(SLOTS + LIST_SLOTS)
    assert marker("name") not in "".join(sample.html.chunks)


def test_build_writes_email_text_and_archive_page(render_settings: Settings) -> None:
    result = build_issue(render_settings, SAMPLE_SLUG)
    folder = render_settings.workspace / "build" / SAMPLE_SLUG
    assert result.folder == folder
    assert {p.name for p in folder.iterdir()} == {"email.html", "email.txt", "index.html", "compiled.json", "media"}
    assert result.email_html.read_text().startswith("<!doctype html>")
    assert "IN THIS ISSUE" in result.email_text.read_text()
    assert result.index_html.read_text() == result.compiled.web_html
    assert result.html_bytes == len(result.email_html.read_bytes())


def test_an_issue_can_be_named_by_folder_path(render_settings: Settings) -> None:
    folder = render_settings.workspace / "content" / SAMPLE_SLUG
    assert compile_issue(render_settings, str(folder)).slug == SAMPLE_SLUG


def test_unknown_issue_is_a_content_error(render_settings: Settings) -> None:
    with pytest.raises(ContentError, match="no issue 'nope'"):
        compile_issue(render_settings, "nope")


def test_bad_content_writes_nothing_and_keeps_the_last_build(render_settings: Settings) -> None:
    first = build_issue(render_settings, SAMPLE_SLUG)
    before = {p.relative_to(first.folder): p.read_bytes() for p in first.folder.rglob("*") if p.is_file()}
    bad = render_settings.workspace / "content" / SAMPLE_SLUG / "12-broken.md"
    bad.write_text("---\ntype: poem\nheading: x\n---\n")
    with pytest.raises(ContentError, match="12-broken.md:2: field 'type'"):
        build_issue(render_settings, SAMPLE_SLUG)
    assert {p.relative_to(first.folder): p.read_bytes() for p in first.folder.rglob("*") if p.is_file()} == before


def test_bad_content_on_a_first_build_creates_no_build_folder(render_settings: Settings) -> None:
    bad = render_settings.workspace / "content" / SAMPLE_SLUG / "12-broken.md"
    bad.write_text("---\ntype: article\n---\n")
    with pytest.raises(ContentError, match="field 'heading'"):
        build_issue(render_settings, SAMPLE_SLUG)
    assert not (render_settings.workspace / "build").exists()


def test_raw_html_in_markdown_arrives_sanitised_in_the_email(render_settings: Settings) -> None:
    block = render_settings.workspace / "content" / SAMPLE_SLUG / "12-raw.md"
    block.write_text('---\ntype: article\nheading: Raw\n---\n<p onmouseover="x()">Hi <script>evil()</script></p>\n')
    html = compile_issue(render_settings, SAMPLE_SLUG).fill(ALICE, SENDER).html
    assert "evil()" not in html and "onmouseover" not in html and "Hi" in html


def test_stats_series_renders_as_a_bar_table(render_settings: Settings) -> None:
    block = render_settings.workspace / "content" / SAMPLE_SLUG / "12-chart.md"
    block.write_text("---\ntype: stats\nheading: Chart\nfigures:\n  - value: 3\n    label: things\n"
                     "series:\n  title: By size\n  unit: '%'\n  points:\n    - label: Small\n      value: 5\n"
                     "    - label: Large\n      value: 20\n---\n")
    compiled = compile_issue(render_settings, SAMPLE_SLUG)
    doc = doc_of(compiled.fill(ALICE, SENDER).html)
    widths = doc.xpath('//*[@id="chart"]/following::table[@width="25%" or @width="100%"]/@width')
    assert "25%" in widths and "100%" in widths
    assert "Large: 20%" in compiled.fill(ALICE, SENDER).text


def test_stats_units_sit_where_a_reader_writes_them(render_settings: Settings) -> None:
    block = render_settings.workspace / "content" / SAMPLE_SLUG / "12-money.md"
    block.write_text("---\ntype: stats\nheading: Money\nfigures:\n  - value: 3\n    label: things\n"
                     "series:\n  title: Savings\n  unit: '£k'\n  points:\n    - label: Payroll\n      value: 1800\n"
                     "    - label: ICT\n      value: 2.5\n---\n")
    filled = compile_issue(render_settings, SAMPLE_SLUG).fill(ALICE, SENDER)
    cells = [c.text_content() for c in doc_of(filled.html).xpath('//td[@align="right"]')]
    assert "£1,800k" in cells and "£2.5k" in cells
    assert "Payroll: £1,800k" in filled.text and "1800£k" not in filled.text + filled.html


@pytest.mark.parametrize(("value", "unit", "shown"), [
    (1800, "£k", "£1,800k"), (1800, "£", "£1,800"), (2.5, "€m", "€2.5m"), (45, "%", "45%"),
    (1234567, "staff", "1,234,567 staff"), (12.25, " km ", "12.25 km"), (7, "", "7"),
])
def test_with_unit_places_currency_first_percent_close_and_words_after_a_space(value, unit, shown) -> None:  # type: ignore[no-untyped-def]
    from bulletin.render.templating import with_unit

    assert with_unit(value, unit) == shown


def test_template_errors_name_the_template(render_settings: Settings) -> None:
    shutil_copy_templates(render_settings.workspace)
    layout = render_settings.workspace / "templates" / "email" / "layout.mjml.j2"
    layout.write_text(layout.read_text().replace("{{ issue.title }}", "{{ issue.titel }}"))
    with pytest.raises(ContentError, match="layout.mjml.j2"):
        compile_issue(render_settings, SAMPLE_SLUG)


def shutil_copy_templates(ws: Path) -> None:
    shutil.copytree(default_templates_dir(), ws / "templates")


def test_the_preheader_is_hidden_once_without_a_colour_then_padded(sample: Compiled, alice_html: str) -> None:
    doc = doc_of(alice_html)
    hidden = doc.xpath('//div[contains(@class, "preheader")]')
    assert len(hidden) == 1
    style = hidden[0].get("style", "").replace(" ", "")
    for rule in ("display:none", "mso-hide:all", "max-height:0", "opacity:0"):
        assert rule in style
    assert "color" not in style
    text = hidden[0].text_content()
    assert text.startswith(sample.preheader)
    padding = text[len(sample.preheader):]
    assert len(padding) >= 100 and set(padding) == {"\u200c", "\u00a0"}
    assert alice_html.count(sample.preheader) == 1  # not repeated in the visible top bar
    topbar = doc.get_element_by_id("top").getparent()
    assert topbar.text_content().strip() == "View this email in your browser"


def test_plain_text_puts_urls_on_their_own_line_wraps_at_78_and_signs_off_with_dash_dash_space(
        sample: Compiled) -> None:
    text = sample.fill(ALICE, SENDER).text
    lines = text.splitlines()
    urls = [line for line in lines if "http://" in line or "https://" in line]
    assert len(urls) > 10
    for line in urls:
        assert re.fullmatch(r"\s*https?://\S+", line), line  # the label is on the line above
    for line in lines:
        if len(line) > 78:  # only what has no space to break at, or must be copied whole
            assert " " not in line.strip() or line.startswith("Re: "), line
    assert lines.count("-- ") == 1 and lines.index("-- ") > lines.index("11. Subscribe to our other e-bulletins")
    footer = lines[lines.index("-- "):]
    assert ALICE.unsubscribe_url in footer and footer[footer.index(ALICE.unsubscribe_url) - 1] == "Unsubscribe:"
    assert ALICE.unsubscribe_url not in lines[:lines.index("-- ")]  # replies quote nothing personal
