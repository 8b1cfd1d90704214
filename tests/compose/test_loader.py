"""Loading an issue folder: the sample loads whole, and every bad input is one error with file, line, field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bulletin.compose import load_issue
from bulletin.compose.blocks import Article, Stats
from bulletin.errors import ContentError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "content" / "2016-shared-service-map"


def error_of(folder: Path) -> ContentError:
    with pytest.raises(ContentError) as info:
        load_issue(folder)
    return info.value


def test_sample_issue_has_every_section_of_the_seed_in_order() -> None:
    issue = load_issue(SAMPLE)
    assert issue.slug == "2016-shared-service-map"
    assert issue.lists == ("shared-services",)
    assert [b.anchor for b in issue.blocks] == [
        "map-relaunch", "how-the-map-can-help", "template-documents", "headline-statistics",
        "where-are-the-sharing-councils", "briefing-papers", "match-making", "impact-report",
        "learning-event", "we-want-to-hear-from-you", "subscribe",
    ]
    assert {b.type for b in issue.blocks} == {"article", "documents", "stats", "briefing", "callout",
                                              "event", "feedback", "subscribe"}


def test_sample_keeps_the_quote_and_the_headline_figures() -> None:
    blocks = {b.anchor: b for b in load_issue(SAMPLE).blocks}
    relaunch = blocks["map-relaunch"].fields
    assert isinstance(relaunch, Article) and relaunch.quote is not None
    assert "David Simmonds" in relaunch.quote.attribution
    stats = blocks["headline-statistics"].fields
    assert isinstance(stats, Stats)
    assert [f.value for f in stats.figures] == ["1,327", "224", "Legal", "211"]
    assert "Does size matter?" in blocks["where-are-the-sharing-councils"].body_html


def test_valid_minimal_issue_loads(issue_dir: Path) -> None:
    issue = load_issue(issue_dir)
    assert issue.date == dt.date(2026, 3, 1)
    assert issue.subject == "Test bulletin"  # defaults to the title
    assert issue.blocks[0].anchor == "first"
    assert "link <https://www.example.org/page>" in issue.blocks[0].body_text


def test_unknown_block_type_names_file_line_and_field(issue_dir: Path) -> None:
    (issue_dir / "02-odd.md").write_text("---\nheading: Odd\ntype: poem\n---\n")
    err = error_of(issue_dir)
    assert "unknown block type 'poem'" in err.message
    assert err.where == f"{issue_dir / '02-odd.md'}:3: field 'type'"


def test_missing_block_type_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-odd.md").write_text("---\nheading: Odd\n---\n")
    err = error_of(issue_dir)
    assert "missing block type" in err.message and "field 'type'" in str(err)


def test_missing_field_names_the_field(issue_dir: Path) -> None:
    (issue_dir / "02-offer.md").write_text("---\ntype: callout\nheading: Offer\n---\nText\n")
    err = error_of(issue_dir)
    assert err.where == f"{issue_dir / '02-offer.md'}:2: field 'contact'"
    assert "required" in err.message.lower()


def test_wrong_nested_field_points_at_its_line(issue_dir: Path) -> None:
    (issue_dir / "02-stats.md").write_text(
        "---\ntype: stats\nheading: Numbers\nfigures:\n  - value: 1\n    label: one\n  - value: 2\n    label: [a, b]\n---\n"
    )
    err = error_of(issue_dir)
    assert err.where == f"{issue_dir / '02-stats.md'}:8: field 'figures.1.label'"


def test_wrong_type_of_field_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-stats.md").write_text("---\ntype: stats\nheading: Numbers\nfigures: many\n---\n")
    err = error_of(issue_dir)
    assert "field 'figures'" in str(err) and ":4:" in str(err)


def test_misspelt_field_is_rejected_not_ignored(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\nqoute:\n  text: x\n  attribution: y\n---\n")
    err = error_of(issue_dir)
    assert "field 'qoute'" in str(err) and ":4:" in str(err)


def test_bad_url_in_a_field_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-docs.md").write_text(
        "---\ntype: documents\nheading: Docs\ndocuments:\n  - title: T\n    url: javascript:alert(1)\n---\n"
    )
    err = error_of(issue_dir)
    assert "field 'documents.0.url'" in str(err) and ":6:" in str(err)


def test_bad_contact_address_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-offer.md").write_text("---\ntype: callout\nheading: Offer\ncontact: not an address\n---\n")
    assert "field 'contact'" in str(error_of(issue_dir))


def test_relative_link_in_markdown_body_names_its_line(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\n---\nfirst para\n\nsee [the guide](guide.html)\n")
    err = error_of(issue_dir)
    assert err.where == f"{issue_dir / '02-a.md'}:7"
    assert "bad link" in err.message


def test_bad_yaml_names_its_line(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: [unclosed\n---\n")
    err = error_of(issue_dir)
    assert "bad YAML" in err.message
    assert str(err).startswith(f"{issue_dir / '02-a.md'}:")


def test_front_matter_that_is_not_a_mapping_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("---\n- just\n- a list\n---\n")
    assert "mapping" in error_of(issue_dir).message


def test_missing_front_matter_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("# Just markdown\n")
    err = error_of(issue_dir)
    assert "missing front matter" in err.message and err.where == f"{issue_dir / '02-a.md'}:1"


def test_unclosed_front_matter_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: A\n")
    assert "not closed" in error_of(issue_dir).message


def test_bad_toml_names_its_line(issue_dir: Path) -> None:
    (issue_dir / "issue.toml").write_text('title = "T"\ndate = 2026-03-01\npreheader "x"\n')
    err = error_of(issue_dir)
    assert "bad TOML" in err.message and err.where == f"{issue_dir / 'issue.toml'}:3"


def test_missing_issue_field_names_it(issue_dir: Path) -> None:
    (issue_dir / "issue.toml").write_text('title = "T"\ndate = 2026-03-01\npreheader = "x"\n')
    assert "field 'lists'" in str(error_of(issue_dir))


def test_wrong_issue_field_type_names_its_line(issue_dir: Path) -> None:
    (issue_dir / "issue.toml").write_text('title = "T"\ndate = "soon"\npreheader = "x"\nlists = ["a"]\n')
    assert str(error_of(issue_dir)) .startswith(f"{issue_dir / 'issue.toml'}:2: field 'date'")


def test_bad_list_slug_in_issue_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "issue.toml").write_text('title = "T"\ndate = 2026-03-01\npreheader = "x"\nlists = ["Not A Slug"]\n')
    assert "field 'lists.0'" in str(error_of(issue_dir))


def test_badly_named_block_file_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "Second Story.md").write_text("---\ntype: article\nheading: A\n---\n")
    assert "NN-<name>.md" in error_of(issue_dir).message


def test_two_blocks_with_one_name_are_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-first.md").write_text("---\ntype: article\nheading: Again\n---\n")
    assert "already used by 01-first.md" in error_of(issue_dir).message


def test_reserved_block_name_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "02-top.md").write_text("---\ntype: article\nheading: Top\n---\n")
    assert "reserved" in error_of(issue_dir).message


def test_issue_without_blocks_is_an_error(issue_dir: Path) -> None:
    (issue_dir / "01-first.md").unlink()
    assert "no NN-<name>.md" in error_of(issue_dir).message


def test_folder_without_issue_toml_is_an_error(tmp_path: Path) -> None:
    assert "no issue.toml" in error_of(tmp_path).message


def test_line_breaks_in_headings_cannot_reach_a_header(issue_dir: Path) -> None:
    (issue_dir / "issue.toml").write_text(
        'title = "T"\ndate = 2026-03-01\npreheader = "x"\nlists = ["a"]\nsubject = "Hi\\r\\nBcc: x@example.org"\n'
    )
    (issue_dir / "02-a.md").write_text("---\ntype: article\nheading: \"Two\\nlines\"\n---\n")
    issue = load_issue(issue_dir)
    assert issue.subject == "Hi Bcc: x@example.org"
    assert issue.blocks[1].heading == "Two lines"


def test_issue_folder_name_must_be_a_url_safe_slug(issue_dir: Path) -> None:
    odd = issue_dir.rename(issue_dir.with_name("My Issue"))
    assert "slug" in error_of(odd).message
