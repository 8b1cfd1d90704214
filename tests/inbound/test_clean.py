"""Visible reply text against the email-reply-parser and mail-parser-reply test emails."""

from __future__ import annotations

import json
import re

import pytest

from bulletin.inbound.reading.clean import visible_text
from tests.conftest import CORPORA, corpus


def _hand() -> dict[str, dict[str, object]]:
    path = CORPORA / "email-reply-parser" / "expected.json"
    return json.loads(path.read_text())["hand"] if path.exists() else {}


CHECKED = {k: v for k, v in _hand().items()
           if any(key in v for key in ("fragment0_equals", "fragment0_matches", "fragment0_contains"))}


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_email_reply_parser_visible_text(name: str) -> None:
    expect = CHECKED[name]
    text = visible_text(corpus("email-reply-parser", "test", "emails", f"{name}.txt").read_text(errors="replace"))
    if "fragment0_equals" in expect:
        assert text.strip() == str(expect["fragment0_equals"]).strip()
    if "fragment0_matches" in expect:
        assert re.search(str(expect["fragment0_matches"]), text)
    if "fragment0_contains" in expect:
        assert str(expect["fragment0_contains"]) in text


@pytest.mark.parametrize("name", ["pathological", "email_long_quote"])
def test_pathological_inputs_finish(name: str) -> None:
    text = corpus("email-reply-parser", "test", "emails", f"{name}.txt").read_text(errors="replace")
    assert visible_text(text)


def test_mail_parser_reply_corpus_agrees_with_the_reference() -> None:
    root = corpus("mail-parser-reply")
    ref = json.loads((root / "expected_generated.json").read_text())["generated_mail_parser_reply_1_36"]

    def norm(s: str | None) -> str:
        return " ".join((s or "").split())

    same = [n for n, e in ref.items()
            if norm(visible_text((root / "test" / "emails" / f"{n}.txt").read_text(errors="replace")))
            == norm(e["latest_reply_body"])]
    # The known differences are deliberate: bulletin keeps bullet lists that the reference drops as signature.
    assert len(same) >= 40, f"{len(same)}/{len(ref)}"


def test_email_reply_parser_reference_mostly_agrees() -> None:
    root = corpus("email-reply-parser")
    ref = json.loads((root / "expected.json").read_text())["generated_parse_reply_email_reply_parser_0_5_12"]
    same = [n for n, want in ref.items()
            if " ".join(visible_text((root / "test" / "emails" / f"{n}.txt").read_text(errors="replace")).split())
            == " ".join(want.split())]
    assert len(same) >= 16, f"{len(same)}/{len(ref)}"


def test_bullet_lists_are_kept_but_a_dash_signature_goes() -> None:
    text = "Two points:\n\n- more on payroll\n- less on ICT\n\nOn Wed, Team wrote:\n> Hello\n"
    assert visible_text(text) == "Two points:\n\n- more on payroll\n- less on ICT"
    assert visible_text("Great issue.\n\n-Amina\n") == "Great issue."


@pytest.mark.parametrize(("text", "want"), [
    ("Ja, gerne.\n\nAm 01.06.2016 um 10:00 schrieb Team <t@example.org>:\n> Hallo\n", "Ja, gerne."),
    ("Oui.\n\nLe 1 juin 2016 à 10:00, Team <t@example.org> a écrit :\n> Bonjour\n", "Oui."),
    ("Yes please.\n\n-- \nAmina Khan\nPayroll\n", "Yes please."),
    ("Count me in.\n\nSent from my iPhone\n", "Count me in."),
    ("No quotes at all.\n", "No quotes at all."),
    ("We would value help.\n\nBest wishes,\nAlan Green\nNorthshire\n", "We would value help."),
    ("Gerne.\n\nMit freundlichen Grüßen\nJ. Weber\n", "Gerne."),
    ("Thanks,\nAmina\n", "Thanks,\nAmina"),
])
def test_quotes_and_signatures_in_several_languages(text: str, want: str) -> None:
    assert visible_text(text) == want


def test_reply_that_is_only_a_quote_keeps_the_text() -> None:
    assert visible_text("> only quoted\n") != ""
