"""`bulletin init`, `bulletin templates` and read-only commands, through the command line."""

from __future__ import annotations

import tomllib
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.config import Settings, load_settings
from bulletin.errors import NotFound, StateError


def bulletin(ws: Path, *args: str):
    return CliRunner().invoke(app, ["-w", str(ws), *args], env={"COLUMNS": "200"})


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_init_makes_a_workspace_that_syncs_builds_and_sends(tmp_path: Path) -> None:
    ws = tmp_path / "my-bulletin"
    ok(CliRunner().invoke(app, ["init", str(ws)]))
    assert (ws / ".gitignore").read_text().split() == [".bulletin/", "build/"]
    ok(bulletin(ws, "lists", "sync"))
    ok(bulletin(ws, "subscribers", "add", "jo@example.org", "--list", "newsletter", "--name", "Jo"))
    ok(bulletin(ws, "check", "first-issue"))
    ok(bulletin(ws, "send", "first-issue", "--list", "newsletter", "--quiet"))
    sent = list((ws / ".bulletin" / "outbox" / "new").iterdir())
    msg = message_from_bytes(sent[0].read_bytes(), policy=policy.default)
    assert len(sent) == 1 and msg["To"] == "Jo <jo@example.org>" and msg["Subject"] == "Our first issue"


def test_init_lists_every_setting_and_loads_as_the_defaults(tmp_path: Path) -> None:
    ok(CliRunner().invoke(app, ["init", str(tmp_path)]))
    text = (tmp_path / "bulletin.toml").read_text()
    for name in Settings.model_fields:
        if name not in ("workspace", "brand"):
            assert f"\n{name} = " in text or f"\n# {name} = " in text, name
    for table in ("[brand]",):
        assert table in text
    settings = load_settings(tmp_path, create_state=False)
    assert settings.timezone == "Europe/London" and settings.transport == "maildir"
    assert settings.organisation == tomllib.loads(text)["organisation"]
    assert settings.brand.model_dump() == type(settings.brand)().model_dump()


def test_init_refuses_a_folder_that_is_already_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "bulletin.toml").write_text('organisation = "Mine"\n')
    result = bulletin(tmp_path, "init", str(tmp_path))
    assert isinstance(result.exception, StateError) and "already holds a bulletin.toml" in str(result.exception)
    assert (tmp_path / "bulletin.toml").read_text() == 'organisation = "Mine"\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bulletin.toml"]


def test_init_refuses_a_folder_with_content_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    result = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert isinstance(result.exception, StateError) and "content" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content"]


@pytest.mark.parametrize("command", [["config", "show"], ["doctor", "--offline"], ["lists"], ["templates", "list"]])
def test_read_only_commands_never_create_the_state_folder(tmp_path: Path, command: list[str]) -> None:
    result = bulletin(tmp_path, *command)
    assert result.exit_code == 0 or (command[0] == "doctor" and "database" in result.output), result.output
    assert not (tmp_path / ".bulletin").exists()


def test_demo_accepts_a_folder_that_config_show_looked_at(tmp_path: Path) -> None:
    ok(bulletin(tmp_path, "config", "show"))
    ok(CliRunner().invoke(app, ["demo", str(tmp_path), "--json"]))


def test_lists_sync_in_an_empty_folder_says_to_run_init(tmp_path: Path) -> None:
    result = bulletin(tmp_path, "lists", "sync")
    assert "bulletin init" in str(result.exception)


def test_new_in_an_initialised_workspace_sends_to_its_first_list(tmp_path: Path) -> None:
    ok(CliRunner().invoke(app, ["init", str(tmp_path)]))
    ok(bulletin(tmp_path, "new", "2030-spring"))
    assert tomllib.loads((tmp_path / "content" / "2030-spring" / "issue.toml").read_text())["lists"] == ["newsletter"]


def test_one_copied_template_overrides_only_itself(tmp_path: Path) -> None:
    ok(CliRunner().invoke(app, ["init", str(tmp_path)]))
    ok(bulletin(tmp_path, "templates", "copy", "article.mjml.j2"))
    own = tmp_path / "templates" / "email" / "blocks" / "article.mjml.j2"
    own.write_text(own.read_text().replace("<mj-text>", "<mj-text><p>OUR OWN ARTICLE</p>", 1))
    listed = {row.split()[0]: row.split()[1] for row in ok(bulletin(tmp_path, "templates", "list")).output.splitlines()
              if row.startswith(("│ email/", "│ web/")) for row in [row.strip("│ ").replace("│", " ")]}
    assert listed["email/blocks/article.mjml.j2"] == "workspace"
    assert listed["email/layout.mjml.j2"] == "packaged" and listed["web/signup.html"] == "packaged"
    ok(bulletin(tmp_path, "build", "first-issue", "--quiet"))
    html = (tmp_path / "build" / "first-issue" / "email.html").read_text()
    assert html.count("OUR OWN ARTICLE") == 1  # the one article block; layout and other blocks still render
    assert "In numbers" in html


def test_templates_copy_refuses_to_overwrite_and_unknown_names(tmp_path: Path) -> None:
    ok(bulletin(tmp_path, "templates", "copy", "web/base.html"))
    assert isinstance(bulletin(tmp_path, "templates", "copy", "base.html").exception, StateError)
    assert isinstance(bulletin(tmp_path, "templates", "copy", "nope.html").exception, NotFound)
    ok(bulletin(tmp_path, "templates", "copy", "base.html", "--force"))
