"""Pre-send checks: the sample passes clean, and each kind of fault is caught."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from bulletin.config import Settings
from bulletin.render.build import compile_issue
from bulletin.render.checks import GMAIL_CLIP_BYTES, check_compiled, check_issue, link_problem
from bulletin.render.compiled import BlockRef, Compiled, Template, marker
from tests.render.conftest import SAMPLE_SLUG

U, P, V = marker("unsubscribe_url"), marker("preferences_url"), marker("view_online_url")
GOOD_BODY = (
    f'<p><a name="top" id="top"></a><a href="{V}">View online</a></p>'
    '<h2 id="contents">In this issue</h2><ol><li><a href="#one">One</a></li><li><a href="#two">Two</a></li></ol>'
    '<h2><a name="one" id="one">One</a></h2><p>x</p><a href="#top">Back to top</a>'
    '<h2><a name="two" id="two">Two</a></h2><p><a href="https://www.example.org/">y</a></p><a href="#top">Back to top</a>'
    f'<p id="footer"><a href="{U}">Unsubscribe</a> <a href="{P}">Preferences</a></p>'
)
GOOD_TEXT = f"1. One\n2. Two\nUnsubscribe: {U}\nPreferences: {P}\n"


def compiled(body: str = GOOD_BODY, text: str = GOOD_TEXT, preheader: str = "pre") -> Compiled:
    return Compiled(
        slug="t", title="T", subject="T", preheader=preheader, issue_date="2026-01-01", lists=("l",),
        html=Template.split(f"<!doctype html><html><body>{body}</body></html>", escape=True),
        text=Template.split(text, escape=False), web_html="",
        blocks=(BlockRef("one", "article", "One"), BlockRef("two", "article", "Two")),
    )


def test_the_sample_issue_passes_with_no_errors_or_warnings(sample: Compiled) -> None:
    report = check_compiled(sample)
    assert report.ok and report.errors == [] and report.warnings == []
    assert 0 < report.html_bytes < GMAIL_CLIP_BYTES


def test_a_good_minimal_issue_passes() -> None:
    assert check_compiled(compiled()).errors == []


def test_contents_link_without_target_is_an_error() -> None:
    report = check_compiled(compiled(GOOD_BODY.replace('href="#two"', 'href="#tow"')))
    assert "in-page link '#tow' has no target with that id" in report.errors
    assert "block 'two' is not linked from the contents" in report.errors


def test_block_without_back_to_top_is_an_error() -> None:
    body = GOOD_BODY.replace('<p>x</p><a href="#top">Back to top</a>', "<p>x</p>")
    assert check_compiled(compiled(body)).errors == ["block 'one' does not end with a 'Back to top' link"]


def test_missing_top_anchor_is_an_error() -> None:
    errors = check_compiled(compiled(GOOD_BODY.replace('<a name="top" id="top"></a>', ""))).errors
    assert any("no element with id 'top'" in e for e in errors)


def test_block_without_its_id_is_an_error() -> None:
    errors = check_compiled(compiled(GOOD_BODY.replace('<a name="two" id="two">', '<a name="two">'))).errors
    assert "block 'two' has no element with its id" in errors


def test_link_to_an_id_without_a_named_anchor_is_an_error() -> None:
    errors = check_compiled(compiled(GOOD_BODY.replace('<a name="two" id="two">', '<a id="two">'))).errors
    assert errors == ["in-page link '#two' has no <a name='two'>: Gmail, Outlook and Yahoo will not follow it"]


def test_top_anchor_without_a_name_is_an_error() -> None:
    errors = check_compiled(compiled(GOOD_BODY.replace('<a name="top" id="top">', '<a id="top">'))).errors
    assert "no <a name='top'>: 'Back to top' links go nowhere in Gmail and Outlook" in errors
    assert "in-page link '#top' has no <a name='top'>: Gmail, Outlook and Yahoo will not follow it" in errors


def test_duplicate_ids_are_an_error() -> None:
    errors = check_compiled(compiled(GOOD_BODY.replace("<p>x</p>", '<p id="two">x</p>'))).errors
    assert any("'two' is used more than once" in e for e in errors)


def test_image_without_alt_text_is_an_error() -> None:
    body = GOOD_BODY.replace("<p>x</p>", '<img src="https://img.example.org/a.png"><img src="https://img.example.org/b.png" alt="B">')
    assert check_compiled(compiled(body)).errors == ["image https://img.example.org/a.png has no alt text"]


def test_html_over_gmail_clip_size_is_an_error() -> None:
    body = GOOD_BODY.replace("<p>x</p>", "<p>" + "x" * GMAIL_CLIP_BYTES + "</p>")
    errors = check_compiled(compiled(body)).errors
    assert len(errors) == 1 and "Gmail clips" in errors[0]


def test_html_close_to_the_clip_size_is_a_warning() -> None:
    body = GOOD_BODY.replace("<p>x</p>", "<p>" + "x" * (95 * 1024) + "</p>")
    report = check_compiled(compiled(body))
    assert report.ok and any("close to Gmail" in w for w in report.warnings)


def test_missing_unsubscribe_slot_is_an_error_in_either_part() -> None:
    no_html = check_compiled(compiled(GOOD_BODY.replace(f'<a href="{U}">Unsubscribe</a>', "")))
    assert "HTML part has no unsubscribe link (unsubscribe_url slot)" in no_html.errors
    no_text = check_compiled(compiled(text=GOOD_TEXT.replace(f"Unsubscribe: {U}\n", "")))
    assert "text part has no unsubscribe link (unsubscribe_url slot)" in no_text.errors


def test_missing_preferences_and_view_online_are_warnings() -> None:
    body = GOOD_BODY.replace(f'<a href="{P}">Preferences</a>', "").replace(f'<a href="{V}">View online</a>', "")
    report = check_compiled(compiled(body))
    assert report.ok
    assert "HTML part has no preferences link (preferences_url slot)" in report.warnings
    assert "HTML part has no view-online link (view_online_url slot)" in report.warnings


def test_empty_plain_text_is_an_error() -> None:
    assert "plain-text part is empty" in check_compiled(compiled(text="  \n")).errors


def test_plain_text_missing_a_heading_is_an_error() -> None:
    errors = check_compiled(compiled(text=GOOD_TEXT.replace("2. Two\n", ""))).errors
    assert errors == ["plain-text part lacks the heading of block 'two'"]


def test_malformed_links_are_errors() -> None:
    for href, why in [("guide.html", "scheme"), ("javascript:alert(1)", "scheme"), ("https://exa mple.org", "spaces"),
                      ("mailto:nobody", "mailto"), ("https:///path", "no host"), ("", "empty")]:
        body = GOOD_BODY.replace("https://www.example.org/", href)
        errors = check_compiled(compiled(body)).errors
        assert len(errors) == 1 and why in errors[0], (href, errors)


def test_plain_http_links_are_warnings() -> None:
    report = check_compiled(compiled(GOOD_BODY.replace("https://www.example.org/", "http://www.example.org/")))
    assert report.ok and report.warnings == ["link 'http://www.example.org/' is plain http"]


def test_empty_preheader_is_a_warning() -> None:
    report = check_compiled(compiled(preheader=""))
    assert report.ok and any("preheader" in w for w in report.warnings)


def test_link_problem_accepts_well_formed_links() -> None:
    for href in ("https://www.example.org/a?b=c#d", "mailto:a@example.org?subject=x", "http://localhost:8000/x"):
        assert link_problem(href) is None


def test_check_issue_compiles_and_checks_by_slug(render_settings: Settings) -> None:
    assert check_issue(render_settings, SAMPLE_SLUG).ok


def test_check_issue_reports_an_image_without_alt_added_in_markdown(render_settings: Settings) -> None:
    block = Path(render_settings.workspace) / "content" / SAMPLE_SLUG / "12-pic.md"
    block.write_text("---\ntype: article\nheading: Pic\n---\n<img src=\"https://img.example.org/p.png\">\n")
    report = check_issue(render_settings, SAMPLE_SLUG)
    assert report.errors == ["image https://img.example.org/p.png has no alt text"]


def test_report_as_dict_is_json_ready(sample: Compiled) -> None:
    d = check_compiled(dataclasses.replace(sample)).as_dict()
    assert d["ok"] is True and set(d) == {"ok", "errors", "warnings", "html_bytes", "text_bytes"}


def test_compile_issue_result_is_checked_not_mutated(render_settings: Settings) -> None:
    c = compile_issue(render_settings, SAMPLE_SLUG)
    before = c.to_json()
    check_compiled(c)
    assert c.to_json() == before


def test_check_issue_fails_when_the_list_has_no_postal_address(render_settings: Settings) -> None:
    lists = Path(render_settings.workspace) / "subscribers" / "lists.toml"
    lists.write_text(re.sub(r'(?m)^postal_address = .*\n', "", lists.read_text()))
    errors = check_issue(render_settings, SAMPLE_SLUG).errors
    assert len(errors) == 1 and errors[0].startswith("list 'shared-services' has no postal address")


def test_the_workspace_postal_address_serves_lists_without_one(render_settings: Settings) -> None:
    lists = Path(render_settings.workspace) / "subscribers" / "lists.toml"
    lists.write_text(re.sub(r'(?m)^postal_address = .*\n', "", lists.read_text()))
    settings = render_settings.model_copy(update={"postal_address": "1 Council Way, Exton, EX1 1AA"})
    assert check_issue(settings, SAMPLE_SLUG).ok
