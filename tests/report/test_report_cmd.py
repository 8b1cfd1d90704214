import csv
import io
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.db import session_scope
from bulletin.errors import NotFound
from bulletin.report import issue_report
from tests.report.ledger import generate
from tests.report.servers import http_server


@pytest.fixture
def cli(workspace, db_url, monkeypatch):
    for name in list(os.environ):
        if name.startswith("BULLETIN_") and name != "BULLETIN_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("BULLETIN_DATABASE_URL", db_url)

    def run(*args):
        return CliRunner().invoke(app, ["--workspace", str(workspace), *args])
    return run


@pytest.fixture
def expected(engine):
    generate(engine, people=50)
    with session_scope(engine) as s:
        return issue_report(s, "ours")


def test_report_table_shows_the_figures_and_blocks(cli, expected):
    result = cli("report", "ours")
    assert result.exit_code == 0, result.output
    assert "Title ours (ours)" in result.output
    line = next(x for x in result.output.splitlines() if "Hard bounces" in x)
    assert line.split()[-1] == str(expected.hard_bounces)
    assert "We want to hear from you" in result.output


def test_report_json_and_csv_match_the_stage_figures(cli, expected):
    data = json.loads(cli("report", "ours", "--json").output)
    assert (data["sent"], data["complaints"], data["replies"]) == (expected.sent, expected.complaints,
                                                                   expected.replies)
    rows = dict(list(csv.reader(io.StringIO(cli("report", "ours", "--csv").output)))[1:])
    assert int(rows["unsubscribes"]) == expected.unsubscribes
    assert int(rows["auto_replies"]) == expected.auto_replies


def test_report_html_writes_a_page_with_the_chart(cli, expected, tmp_path):
    target = tmp_path / "report.html"
    result = cli("report", "ours", "--html", str(target))
    assert result.exit_code == 0 and "HTML report written" in result.output
    page = target.read_text()
    assert 'src="data:image/png;base64,' in page and f"<td>{expected.sent}</td>" in page


def test_report_of_an_unknown_issue_raises_not_found(cli, engine):
    result = cli("report", "nope")
    assert isinstance(result.exception, NotFound)


def test_unknown_issue_is_one_line_and_exit_code_3(workspace, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env["BULLETIN_DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    proc = subprocess.run([sys.executable, "-m", "bulletin", "-w", str(workspace), "report", "nope"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.strip().count("\n") == 0 and "'nope'" in proc.stderr


def test_doctor_exits_0_when_nothing_fails(cli, engine, monkeypatch):
    with http_server(400) as base:
        monkeypatch.setenv("BULLETIN_PUBLIC_BASE_URL", base)
        result = cli("doctor", "--offline", "--json")
    assert result.exit_code == 0, result.output
    statuses = {c["name"]: c["status"] for c in json.loads(result.output)}
    assert statuses["database"] == "pass" and statuses["public_url"] == "pass"
    assert statuses["smtp"] == "warn"


def test_doctor_exits_1_and_shows_the_fix_when_a_check_fails(cli, engine, monkeypatch):
    monkeypatch.setenv("BULLETIN_PUBLIC_BASE_URL", "http://127.0.0.1:9")
    result = cli("doctor", "--offline")
    assert result.exit_code == 1
    assert "public_url" in result.output and "fail" in result.output
    checks = {c["name"]: c for c in json.loads(cli("doctor", "--offline", "--json").output)}
    assert checks["public_url"]["status"] == "fail" and "bulletin serve" in checks["public_url"]["fix"]
