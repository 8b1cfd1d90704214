"""`bulletin lists` and `bulletin subscribers` through the real Typer app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.errors import NotFound, StateError
from tests.audience.conftest import write_csv


@pytest.fixture
def run(workspace, db_url):
    runner = CliRunner()

    def _run(*args: str, input: str | None = None):
        return runner.invoke(app, ["-w", str(workspace), *args], input=input,
                             env={"BULLETIN_DATABASE_URL": db_url, "COLUMNS": "200"})
    return _run


def _ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_lists_sync_then_lists_shows_counts_by_state(run, workspace):
    out = _ok(run("lists", "sync")).output
    assert "+ add shared-services" in out and "4 added" in out
    assert "0 added, 0 changed, 4 unchanged" in _ok(run("lists", "sync")).output
    _ok(run("subscribers", "import", str(workspace / "subscribers" / "sample.csv"), "--quiet"))
    shown = _ok(run("lists")).output
    assert "shared-services" in shown and "confirmed" in shown and "40" in shown
    data = json.loads(_ok(run("lists", "--json")).output)
    shared = next(x for x in data if x["slug"] == "shared-services")
    assert shared["counts"]["confirmed"] == 40 and shared["total"] == 40


def test_lists_sync_dry_run_writes_nothing(run):
    assert "would add" in _ok(run("lists", "sync", "--dry-run")).output
    assert json.loads(_ok(run("lists", "--json")).output) == []


def test_lists_sync_refuses_a_public_single_opt_in_list_without_the_flag(run, workspace):
    from bulletin.errors import ConfigError

    path = workspace / "subscribers" / "lists.toml"
    path.write_text(path.read_text().replace("double_opt_in = false\n", "double_opt_in = false\npublic_signup = true\n"))
    refused = run("lists", "sync")
    assert refused.exit_code != 0 and isinstance(refused.exception, ConfigError)
    assert "finance" in str(refused.exception) and "--allow-single-opt-in" in str(refused.exception)
    assert json.loads(_ok(run("lists", "--json")).output) == []
    assert "4 added" in _ok(run("lists", "sync", "--allow-single-opt-in")).output


def test_notices_command_sends_the_queue(run, workspace):
    assert "0 notice(s) waiting" in _ok(run("notices")).output
    assert "0 sent" in _ok(run("notices", "send")).output


def test_import_reports_bad_rows_by_line_and_exits_non_zero(run, tmp_path):
    _ok(run("lists", "sync"))
    f = write_csv(tmp_path / "x.csv", "email,name,lists\nok@example.org,OK,finance\nbroken,B,finance\n")
    result = run("subscribers", "import", str(f))
    assert result.exit_code == 1
    assert "x.csv:3" in result.output and "1 new" in result.output
    data = json.loads(run("subscribers", "import", str(f), "--json").output)
    assert data["errors"][0]["line"] == 3 and data["unchanged"] == 1


def test_add_show_unsubscribe_suppress_erase(run):
    _ok(run("lists", "sync"))
    _ok(run("subscribers", "add", "Sam@Example.org", "-l", "finance", "-l", "workforce", "--name", "Sam"))
    shown = json.loads(_ok(run("subscribers", "show", "sam@example.org", "--json")).output)
    assert shown["name"] == "Sam" and len(shown["events"]) == 3
    assert "consent log" in _ok(run("subscribers", "show", "sam@example.org")).output
    export = json.loads(_ok(run("subscribers", "show", "sam@example.org", "--export")).output)
    assert set(export) == {"subscriber", "subscriptions", "consent_log", "deliveries", "compacted_deliveries", "replies",
                           "bounces", "evidence"}
    assert export["subscriber"]["name"] == "Sam" and len(export["consent_log"]) == 3
    assert "1 subscription(s) unsubscribed" in _ok(run("subscribers", "unsubscribe", "sam@example.org", "-l", "finance")).output
    assert "suppressed" in _ok(run("subscribers", "suppress", "nobody@example.org", "--reason", "asked")).output
    assert "already suppressed" in _ok(run("subscribers", "suppress", "nobody@example.org")).output
    assert run("subscribers", "erase", "sam@example.org", input="n\n").exit_code == 1
    assert "erased" in _ok(run("subscribers", "erase", "sam@example.org", "--yes")).output
    result = run("subscribers", "show", "sam@example.org")
    assert isinstance(result.exception, NotFound)


def test_list_and_export_filter_and_paginate(run, workspace, tmp_path):
    _ok(run("lists", "sync"))
    _ok(run("subscribers", "import", str(workspace / "subscribers" / "sample.csv"), "-q"))
    page = json.loads(_ok(run("subscribers", "list", "--list", "finance", "--per-page", "5", "--json")).output)
    assert page["total"] > 5 and len(page["rows"]) == 5
    table = _ok(run("subscribers", "list", "--search", "riverside")).output
    assert "riverside" in table.lower()
    out = tmp_path / "finance.csv"
    assert f"{page['total']} subscribers written" in _ok(
        run("subscribers", "export", "--list", "finance", "--state", "confirmed", "-o", str(out))).output
    assert out.read_text().startswith("email,name,organisation,lists")
    lines = _ok(run("subscribers", "export", "--format", "json")).output.strip().splitlines()
    assert len(lines) == 40 and json.loads(lines[0])["email"]
    assert run("subscribers", "export", "--format", "xml").exit_code == 2


def test_user_mistakes_are_bulletin_errors_not_crashes(run):
    _ok(run("lists", "sync"))
    assert isinstance(run("subscribers", "add", "x@example.org").exception, StateError)
    assert isinstance(run("subscribers", "unsubscribe", "ghost@example.org").exception, NotFound)
    assert isinstance(run("subscribers", "list", "--list", "nope").exception, NotFound)
