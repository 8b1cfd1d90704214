"""`bulletin new`: a scaffold with one block of each type that loads as written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bulletin.compose import BLOCK_TYPES, load_issue
from bulletin.compose.scaffold import new_issue
from bulletin.errors import ConfigError, ContentError, StateError


def test_scaffold_has_one_block_of_each_type_and_loads(tmp_path: Path) -> None:
    folder = new_issue(tmp_path, "spring-2030", lists=["weekly"], today=dt.date(2030, 3, 1))
    issue = load_issue(folder)
    assert sorted(b.type for b in issue.blocks) == sorted(BLOCK_TYPES)
    assert issue.date == dt.date(2030, 3, 1)
    assert issue.title == "Spring 2030"


def test_scaffold_takes_its_list_from_lists_toml(tmp_path: Path) -> None:
    lists = tmp_path / "lists.toml"
    lists.write_text('[[list]]\nslug = "weekly"\nname = "Weekly"\n')
    lists.write_text('[[list]]\nslug = "weekly"\nname = "Weekly"\n[[list]]\nslug = "monthly"\nname = "Monthly"\n')
    issue = load_issue(new_issue(tmp_path, "one", subscribers_file=lists))
    assert issue.lists == ("weekly",)
    subscribe = next(b for b in issue.blocks if b.type == "subscribe")
    assert [(b.slug, b.title) for b in subscribe.fields.bulletins] == [("weekly", "Weekly"), ("monthly", "Monthly")]


def test_scaffold_without_a_list_refuses_rather_than_inventing_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bulletin init"):
        new_issue(tmp_path, "one", subscribers_file=tmp_path / "lists.toml")
    assert not (tmp_path / "one").exists()


def test_scaffold_never_overwrites(tmp_path: Path) -> None:
    new_issue(tmp_path, "one", lists=["weekly"])
    (tmp_path / "one" / "01-lead-story.md").write_text("edited")
    with pytest.raises(StateError):
        new_issue(tmp_path, "one")
    assert (tmp_path / "one" / "01-lead-story.md").read_text() == "edited"


def test_scaffold_refuses_a_bad_slug(tmp_path: Path) -> None:
    with pytest.raises(ContentError):
        new_issue(tmp_path, "Bad Slug", lists=["weekly"])
    assert not any(tmp_path.iterdir())
