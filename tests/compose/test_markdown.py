"""Markdown bodies: raw HTML is sanitised, the text part spells links out."""

from __future__ import annotations

import pytest

from bulletin.compose.markdown import render_body


def no_check(href: str, line: int) -> None:
    return None


def test_script_style_and_handlers_are_removed_from_raw_html() -> None:
    body = render_body('Hi <b onclick="steal()">there</b><script>alert(1)</script>'
                       '<style>p{}</style> <a href="javascript:x()">x</a>', no_check)
    assert "<b>there</b>" in body.html
    for bad in ("onclick", "<script", "alert(1)", "<style", "javascript:"):
        assert bad not in body.html


def test_links_become_label_and_url_in_text() -> None:
    body = render_body("See [the map](https://example.org/map) or https://x.example.org", no_check)
    assert "See the map <https://example.org/map>" in body.text


def test_mailto_links_show_the_bare_address_in_text() -> None:
    body = render_body("Write to [us](mailto:team@example.org).", no_check)
    assert "us <team@example.org>" in body.text


def test_lists_and_quotes_keep_their_markers_in_text() -> None:
    body = render_body("- one\n- two\n\n1. first\n2. second\n\n> quoted", no_check)
    assert "- one\n\n- two" in body.text or "- one\n- two" in body.text
    assert "1. first" in body.text and "2. second" in body.text
    assert "> quoted" in body.text


def test_every_link_is_passed_to_the_checker_with_its_line() -> None:
    seen: list[tuple[str, int]] = []
    render_body("para\n\n[a](https://a.example.org)\n\n[b](https://b.example.org)",
                lambda h, ln: seen.append((h, ln)))
    assert seen == [("https://a.example.org", 2), ("https://b.example.org", 4)]


def test_checker_errors_propagate() -> None:
    def refuse(href: str, line: int) -> None:
        raise ValueError(href)

    with pytest.raises(ValueError, match="rel.html"):
        render_body("[x](rel.html)", refuse)
