"""Targeted blocks: one render, per-reader variants with renumbered contents, notes on the web copy."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bulletin.audience.conditions import Reader
from bulletin.config import Settings
from bulletin.errors import ContentError
from bulletin.render.build import compile_issue
from bulletin.render.checks import check_compiled
from bulletin.render.compiled import Compiled
from bulletin.render.parts import part_marker, resolve
from tests.render.conftest import ALICE, ROOT, SAMPLE_SLUG, SENDER, make_settings

TARGETS = {  # block file -> audience
    "03-template-documents.md": "role contains 'hr'",
    "06-briefing-papers.md": "role contains 'finance'",
    "08-impact-report.md": "region in ('north', 'east')",
    "09-learning-event.md": "not role exists",
}
FINANCE = Reader(attributes={"role": "Finance officer", "region": "south"})  # sees 8 of 11 blocks


def targeted_workspace(root: Path, targets: dict[str, str] = TARGETS) -> Settings:
    ws = root / "ws"
    shutil.copytree(ROOT / "content", ws / "content")
    folder = ws / "content" / SAMPLE_SLUG
    for name, audience in targets.items():
        text = (folder / name).read_text(encoding="utf-8")
        (folder / name).write_text(text.replace("---\n", f"---\naudience: \"{audience}\"\n", 1), encoding="utf-8")
    return make_settings(ws)


@pytest.fixture(scope="module")
def targeted(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return compile_issue(targeted_workspace(tmp_path_factory.mktemp("targeted")), SAMPLE_SLUG)


def anchors_in(html: str) -> list[str]:
    return re.findall(r'<h2\b[^>]*><a name="[a-z0-9-]+" id="([a-z0-9-]+)"', html)


def test_reader_gets_only_matching_blocks_and_a_renumbered_contents(targeted: Compiled) -> None:
    filled = targeted.fill(ALICE, SENDER, reader=FINANCE)
    seen = anchors_in(filled.html)
    assert "briefing-papers" in seen
    assert not {"template-documents", "impact-report", "learning-event"} & set(seen)
    assert len(seen) == 11 - 3 + 1  # + the contents heading
    contents = re.findall(r'<li><a href="#([a-z0-9-]+)"', filled.html)
    assert contents == [a for a in seen if a != "contents"]
    numbered = re.findall(r"^(\d+)\. (.+)$", filled.text, flags=re.M)
    assert [int(n) for n, _ in numbered] == list(range(1, 9)) * 2  # contents, then headings, 1..8 each
    for n, heading in numbered[8:]:
        line = f"{n}. {heading}"
        assert f"{line}\n{'-' * len(line)}\n" in filled.text
    assert "BULLETINPART" not in filled.html + filled.text


def test_untargeted_blocks_and_no_reader_show_everything(targeted: Compiled) -> None:
    everyone = targeted.fill(ALICE, SENDER)
    assert len(anchors_in(everyone.html)) == 12
    assert "For readers where" not in everyone.html
    nobody_matches = targeted.fill(ALICE, SENDER, reader=Reader(attributes={"role": "x"}))
    assert len(anchors_in(nobody_matches.html)) == 12 - 4  # has a role, so not even the last one


def test_every_variant_passes_the_anchor_checks(targeted: Compiled) -> None:
    """All 16 combinations of the 4 targeted blocks: ids unique, every contents link lands, back links present."""
    from dataclasses import replace

    from bulletin.render.checks import CheckReport, _check_anchors, _Scan

    targeted = targeted.for_sender(SENDER)
    bits = [1 << i for i, b in enumerate(targeted.blocks) if b.audience]
    always = (1 << len(targeted.blocks)) - 1 - sum(bits)
    for combo in range(1 << len(bits)):
        mask = always | sum(bit for k, bit in enumerate(bits) if combo >> k & 1)
        v = targeted.variant(mask)
        scan = _Scan()
        scan.feed(v.html.fill(v.html.values_for(ALICE)))
        report = CheckReport()
        _check_anchors(replace(targeted, blocks=targeted.visible_blocks(mask)), scan, report)
        assert not report.errors, (bin(mask), report.errors)
        assert len(anchors_in(v.html.chunks[0] + "".join(v.html.chunks[1:]))) == 1 + bin(mask).count("1")
    assert not check_compiled(targeted).errors


def test_web_copy_shows_every_block_with_who_it_was_for(targeted: Compiled) -> None:
    assert len(anchors_in(targeted.web_html)) == 12
    notes = re.findall(r"For readers where ([^<]+)</p>", targeted.web_html)
    assert [n.replace("&#x27;", "'") for n in notes] == list(TARGETS.values())


def test_targeting_survives_json(targeted: Compiled) -> None:
    again = Compiled.from_json(targeted.to_json())
    assert again.fill(ALICE, SENDER, reader=FINANCE) == targeted.fill(ALICE, SENDER, reader=FINANCE)
    assert [b.audience for b in again.blocks] == [b.audience for b in targeted.blocks]


def test_an_untargeted_issue_has_no_targeting(sample: Compiled) -> None:
    assert sample.targeting is None and not sample.targeted
    assert sample.fill(ALICE, SENDER, reader=FINANCE) == sample.fill(ALICE, SENDER)


def test_resolve_cuts_hidden_parts_and_numbers_the_rest() -> None:
    o, c, n = (lambda i: part_marker("open", i)), (lambda i: part_marker("close", i)), (lambda i: part_marker("num", i))
    marked = f"[{n(0)}]{o(1)}[{n(1)}]{c(1)}[{n(2)}]{o(1)}tail{c(1)}"
    assert resolve(marked, (True, False, True)) == "[1][2]"
    assert resolve(marked, (True, True, True)) == "[1][2][3]tail"
    with pytest.raises(KeyError):
        part_marker("bogus", 0)


@pytest.mark.parametrize(("front", "line", "column", "words"), [
    ('audience: "role contains"\n', 2, 25, "expected a quoted value"),
    ("audience: role = 'a' or\n", 2, 24, "expected a field name"),
    ("heading: X\naudience:    'region ~ 1'\n", 3, 22, "unexpected character '~'"),
])
def test_a_bad_audience_names_file_line_and_column(tmp_path: Path, front: str, line: int, column: int,
                                                   words: str) -> None:
    settings = targeted_workspace(tmp_path, {})
    block = settings.workspace / "content" / SAMPLE_SLUG / "01-map-relaunch.md"
    text = block.read_text(encoding="utf-8")
    if front.startswith("heading"):
        text = re.sub(r"^heading: .*\n", "", text, count=1, flags=re.M)
    block.write_text(text.replace("---\n", "---\n" + front, 1), encoding="utf-8")
    with pytest.raises(ContentError) as info:
        compile_issue(settings, SAMPLE_SLUG)
    assert info.value.where == f"{block}:{line}:{column}: field 'audience'"
    assert words in info.value.message
