"""The fast path of `bulletin status` and `bulletin report` (cli.quick) answers exactly as the full CLI does.

Every command runs as `python -X importtime -m bulletin ...` in a fresh interpreter, once as it is and
once with BULLETIN_FULL_CLI=1; importtime's lines on stderr tell which path ran (the fast one never
imports SQLAlchemy). Only the generation time of a report may differ between the two.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bulletin.cli import quick
from bulletin.config import CONFIG_FILE, STATE_DIR, Settings, load_settings
from bulletin.db import session_scope
from bulletin.delivery import retention
from bulletin.errors import ConfigError
from bulletin.models import IssueRecord, Send
from tests.report.ledger import compiled, generate

ROOT = Path(__file__).resolve().parent.parent
BASE_ENV = {**{k: v for k, v in os.environ.items() if not k.upper().startswith("BULLETIN_")},
            "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
ZONE = "America/New_York"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str  # stderr without importtime's lines
    imported: frozenset[str]

    @property
    def fast(self) -> bool:
        """Answered by cli.quick: the full CLI imports Typer for any command, and these read with SQLAlchemy."""
        return not {"typer", "click", "sqlalchemy"} & self.imported and "bulletin.cli.quick" in self.imported


def bulletin(*args: str, cwd: Path, env: dict[str, str] | None = None, full: bool = False) -> Run:
    """`python -m bulletin <args>` in a new interpreter: exit code, stdout, stderr and the modules it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "bulletin", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**BASE_ENV, **(env or {}), **({"BULLETIN_FULL_CLI": "1"} if full else {})})
    imported, err = set(), []
    for line in proc.stderr.splitlines(keepends=True):
        if line.startswith("import time:"):
            imported.add(line.rsplit("|", 1)[1].strip())
        else:
            err.append(line)
    return Run(proc.returncode, proc.stdout, "".join(err), frozenset(imported))


def both(*args: str, **kw: object) -> tuple[Run, Run]:
    """The same command on the default path and on the full one, side by side."""
    with ThreadPoolExecutor(2) as pool:
        default, full = pool.map(lambda f: bulletin(*args, full=f, **kw), (False, True))  # type: ignore[arg-type]
    assert not full.fast and "typer" in full.imported  # the probe does see the full path
    return default, full


def timeless(out: str) -> str:
    """Output without the generation time (the one thing two runs may disagree on)."""
    out = re.sub(r'"generated_at": "[^"]*"', '"generated_at": "-"', out)
    return re.sub(r"^Figures as of .*$", "Figures as of -", out, flags=re.M)


@pytest.fixture
def world(engine, settings: Settings, db_url: str, tmp_path: Path) -> dict[str, object]:
    """A filled ledger: "ours" (segments, errors, a paused and a scheduled send), "other" compacted,
    "unsent" published but never sent; the workspace's bulletin.toml names the database and a zone."""
    generate(engine, people=20)
    with session_scope(engine) as s:
        ours, other = (s.exec(text("SELECT id FROM issue WHERE slug = :s").bindparams(s=slug)).scalar_one()
                       for slug in ("ours", "other"))
        s.exec(text("UPDATE delivery SET segment = CASE WHEN subscriber_id % 3 = 0 THEN 'finance' "
                    "WHEN subscriber_id % 3 = 1 THEN 'north' END WHERE issue_id = :i").bindparams(i=ours))
        s.exec(text("UPDATE send SET status = 'paused', pause_reason = 'relay refused MAIL FROM: 530 5.7.0' "
                    "WHERE issue_id = :i").bindparams(i=ours))
        s.add(Send(issue_id=ours, list_id=2, scheduled_at=datetime(2026, 12, 24, 17, 30, tzinfo=UTC)))
        s.exec(text("UPDATE delivery SET state = 'cancelled' WHERE issue_id = :i "
                    "AND state IN ('queued', 'claimed', 'deferred')").bindparams(i=other))
        s.add(IssueRecord(slug="unsent", title="Unsent", subject="S", compiled=compiled("unsent").to_json(),
                          content_hash="1" * 64))
    (compacted,) = retention.compact(engine, timedelta(days=1))
    assert compacted.slug == "other" and compacted.rows > 0
    with session_scope(engine) as s:  # after compacting: "ours" then has no open row either
        s.exec(text("UPDATE delivery SET state = 'failed', smtp_code = 550, last_error = '5.1.1 no such user' "
                    "WHERE state = 'claimed' AND issue_id = (SELECT id FROM issue WHERE slug = 'ours')"))
    (settings.workspace / CONFIG_FILE).write_text(f'database_url = "{db_url}"\ntimezone = "{ZONE}"\n')
    here = tmp_path / "elsewhere"  # the current folder: neither a workspace nor holding one
    here.mkdir()
    return {"ws": str(settings.workspace), "cwd": here, "compacted": compacted.rows,
            "env": {"BULLETIN_WORKSPACE": str(settings.workspace)}}


PARITY = [  # (arguments, extra environment): BULLETIN_WORKSPACE is set unless the arguments name it
    (["status", "ours"], {}), (["status", "ours", "--json"], {}), (["report", "ours"], {}),
    (["report", "ours", "--json"], {}), (["report", "ours", "--csv"], {}),
    (["-w", "{ws}", "status", "ours"], None), (["--workspace={ws}", "report", "ours", "--json"], None),
    (["report", "ours"], {"BULLETIN_TIMEZONE": "Asia/Tokyo"}), (["status", "other"], {}), (["report", "other"], {}),
]


def test_status_and_report_print_the_same_on_both_paths_and_the_fast_one_ran(world) -> None:
    jobs = [([a.format(ws=world["ws"]) for a in args], {} if env is None else {**world["env"], **env})
            for args, env in PARITY]
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda job: both(*job[0], cwd=world["cwd"], env=job[1]), jobs))
    out = {}
    for (args, env), (default, full) in zip(jobs, runs, strict=True):
        assert default.fast, args
        assert full.code == 0 and full.out, (args, full.err)
        assert (default.code, timeless(default.out)) == (full.code, timeless(full.out)), args
        assert default.err == full.err == "", args
        out[" ".join(args) + env.get("BULLETIN_TIMEZONE", "")] = default.out
    status = json.loads(out["status ours --json"])  # the fixture's details reached the output
    assert status["sends"][0]["status"] == "paused" and status["errors"][0]["code"] == 550
    assert "scheduled 2026-12-24 12:30 EST" in out["status ours"]  # the toml's zone
    assert "paused: relay refused MAIL FROM" in out["status ours"]
    assert "By segment" in out["report ours"] and "finance" in out["report ours"]
    assert " JST" in out["report oursAsia/Tokyo"] and " EST" in out["report ours"]  # env over toml
    assert f"sent {world['compacted']}, " in out["status other"]  # the compacted rows, from the tallies


ERRORS = [(["status", "nope"], 3, "error: issue 'nope': no such issue has been published"),
          (["report", "nope"], 3, "error: issue: no published issue with slug 'nope'"),
          (["status", "unsent"], 4, "error: issue #")]  # "...: this issue has not been sent to any list yet"


def test_errors_are_the_same_line_and_exit_code_on_both_paths(world) -> None:
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda e: both(*e[0], cwd=world["cwd"], env=world["env"]), ERRORS))
    for (args, code, says), (default, full) in zip(ERRORS, runs, strict=True):
        assert default.fast and (default.out, full.out) == ("", ""), args
        assert (default.code, default.err) == (full.code, full.err), args
        assert default.code == code and default.err.startswith(says) and default.err.count("\n") == 1, args
    assert runs[2][0].err.endswith(": this issue has not been sent to any list yet\n")  # a StateError


def test_help_and_a_mistyped_option_go_the_full_path(tmp_path: Path) -> None:
    helped = bulletin("status", "ours", "--help", cwd=tmp_path)
    assert not helped.fast and helped.code == 0 and "Usage: python -m bulletin status" in helped.out
    assert "--json" in helped.out and "Machine-readable output" in helped.out
    typo = bulletin("report", "ours", "--jsn", cwd=tmp_path)
    assert not typo.fast and typo.code == 2 and typo.out == "" and "No such option: --jsn" in typo.err
    assert not (tmp_path / STATE_DIR).exists()  # Typer stopped it before any settings or database


def test_an_unknown_log_level_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    for args, env in ((["--log-level", "bogus", "status", "ours"], {}), (["status", "ours"], {"BULLETIN_LOG_LEVEL": "loud"})):
        run = bulletin(*args, cwd=tmp_path, env=env, full=True)
        assert run.code == 2 and "Traceback" not in run.err and "--log-level" in run.err, run.err
        assert "not one of debug, info, warning, error" in run.err


def test_html_and_log_level_go_the_full_path(world, tmp_path: Path) -> None:
    kw = {"cwd": world["cwd"], "env": world["env"]}
    page = tmp_path / "report.html"
    with ThreadPoolExecutor(3) as pool:
        html, logged, fast, as_json, both_flags = pool.map(lambda a: bulletin(*a, **kw), (
            ["report", "ours", "--html", str(page)], ["--log-level", "info", "report", "ours", "--csv"],
            ["report", "ours", "--csv"], ["report", "ours", "--json"], ["report", "ours", "--csv", "--json"]))
    assert both_flags.fast and timeless(both_flags.out) == timeless(as_json.out)  # --json wins, as in the command
    assert not html.fast and html.code == 0, html.err
    assert html.out.rstrip().endswith(f"HTML report written to {page}") and "By segment" in html.out
    assert 'src="data:image/png;base64,' in page.read_text() and "<td>17</td>" in page.read_text()
    assert not logged.fast and fast.fast and (logged.code, logged.out) == (fast.code, fast.out) == (0, fast.out)


@pytest.mark.parametrize(("toml", "says"), [
    ('timezone = "Europe/London\n', "error: {file}: "),  # not TOML: the full path names the file
    ('timezone = "Mars/Olympus"\n', "setting 'timezone' (BULLETIN_TIMEZONE): Value error, unknown IANA time zone"),
    ("timezone = 1\n", "setting 'timezone' (BULLETIN_TIMEZONE)"),
])
def test_a_bad_settings_file_gets_the_full_paths_error(tmp_path: Path, toml: str, says: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / CONFIG_FILE).write_text(toml)
    run = bulletin("status", "ours", cwd=tmp_path, env={"BULLETIN_WORKSPACE": str(ws)})
    assert not run.fast and run.code == ConfigError.exit_code and run.out == ""
    assert run.err.startswith("error: ") and run.err.count("\n") == 1 and says.format(file=ws / CONFIG_FILE) in run.err
    assert not (ws / STATE_DIR).exists()  # refused before making anything


@pytest.mark.parametrize("named", [True, False], ids=["database_url", "default"])
def test_a_missing_sqlite_file_is_made_by_the_full_path_and_then_read_fast(tmp_path: Path, named: bool) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    db = tmp_path / "new" / "b.db" if named else ws / STATE_DIR / "bulletin.db"
    env = {"BULLETIN_WORKSPACE": str(ws), **({"BULLETIN_DATABASE_URL": f"sqlite:///{db}"} if named else {})}
    first = bulletin("report", "ours", cwd=tmp_path, env=env)
    assert not first.fast and "alembic" in first.imported and db.is_file()  # created and migrated
    second = bulletin("report", "ours", cwd=tmp_path, env=env)
    assert second.fast, "the fast path does not find the file the full path made"
    assert first.code == second.code == 3 and first.out == second.out == ""
    assert first.err.splitlines()[-1] == second.err.strip() and "no published issue" in second.err


def test_a_database_one_migration_behind_is_upgraded_by_the_full_path(world, engine) -> None:
    from alembic import command

    from bulletin.db import _stamped_newest, alembic_config, upgrade_schema

    kw = {"cwd": world["cwd"], "env": world["env"]}
    before = bulletin("status", "ours", **kw)
    command.downgrade(alembic_config(engine), "-1")
    try:
        behind = bulletin("status", "ours", **kw)
        assert not behind.fast and "alembic" in behind.imported and _stamped_newest(engine)
        again = bulletin("status", "ours", **kw)
    finally:
        upgrade_schema(engine)
    assert before.fast and again.fast
    assert (before.code, before.out) == (behind.code, behind.out) == (again.code, again.out) == (0, before.out)
    assert before.out.startswith("ours: ")


@pytest.mark.parametrize(("argv", "call"), [
    (["status", "ours"], quick.Call("status", "ours", None, False, False)),
    (["-w", "/a", "report", "ours", "--csv"], quick.Call("report", "ours", "/a", False, True)),
    (["--workspace=/a", "status", "--json", "ours"], quick.Call("status", "ours", "/a", True, False)),
    (["--workspace", "/a", "-w", "/b", "report", "--csv", "x", "--json"], quick.Call("report", "x", "/b", True, True)),
    (["-w"], None), (["--workspace"], None), (["-w", "status", "ours"], None), (["status", "ours", "-w", "/a"], None),
    (["status", "ours", "--json", "--json"], None), (["report", "ours", "--csv", "--csv"], None),
    (["status", "ours", "--csv"], None), (["status", "ours", "--jsn"], None), (["status", "ours", "--help"], None),
    (["report", "ours", "--html", "f.html"], None), (["--log-level", "info", "status", "ours"], None),
    (["status"], None), (["status", "a", "b"], None), (["status", "--", "ours"], None), ([], None),
    (["send", "ours"], None), (["-wa", "status", "ours"], None),
])
def test_parse_takes_only_the_common_forms(argv: list[str], call: quick.Call | None) -> None:
    assert quick.parse(argv) == call


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("BULLETIN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


SETTINGS = [  # (environment, bulletin.toml, expected (URL, zone), "" the default URL; None: refused, so full path)
    ({}, None, ("", "Europe/London")),
    ({}, 'database_url = "sqlite:////t/toml.db"\ntimezone = "Asia/Tokyo"\n', ("sqlite:////t/toml.db", "Asia/Tokyo")),
    ({"BULLETIN_DATABASE_URL": "postgresql://h/env", "BULLETIN_TIMEZONE": "America/Chicago"},
     'database_url = "sqlite:////t/toml.db"\ntimezone = "Asia/Tokyo"\n', ("postgresql://h/env", "America/Chicago")),
    ({"BULLETIN_TIMEZONE": "America/Chicago"}, 'database_url = "sqlite:////t/toml.db"\n',
     ("sqlite:////t/toml.db", "America/Chicago")),
    ({"bulletin_database_url": "postgresql://h/lower", "Bulletin_Timezone": "Africa/Cairo"},
     'timezone = "Asia/Tokyo"\n', ("postgresql://h/lower", "Africa/Cairo")),
    ({"BULLETIN_DATABASE_URL": ""}, 'database_url = "sqlite:////t/toml.db"\n', ("", "Europe/London")),
    ({}, "database_url = 5\n", None), ({}, 'timezone = ["UTC"]\n', None), ({}, "[timezone]\nx = 1\n", None),
    ({"BULLETIN_TIMEZONE": "UTC"}, "timezone = 1\n", "unsure"),  # the full path takes it: unsure is fine
    ({}, 'timezone = "Mars/Olympus"\n', None), ({"BULLETIN_TIMEZONE": ""}, None, None), ({}, "timezone = \n", None),
]


@pytest.mark.parametrize(("env", "toml", "expected"), SETTINGS)
def test_settings_are_read_with_the_full_settings_precedence(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                             env: dict[str, str], toml: str | None,
                                                             expected: tuple[str, str] | str | None) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if toml is not None:
        (ws / CONFIG_FILE).write_text(toml)
    found = quick._settings(str(ws))
    monkeypatch.setenv("BULLETIN_WORKSPACE", str(ws))
    assert quick._settings(None) == found  # the same workspace from BULLETIN_WORKSPACE
    if not isinstance(expected, tuple):
        assert found is None
        if expected is None:
            with pytest.raises(ConfigError):  # the full path explains what is wrong
                load_settings(ws, create_state=False)
        return
    url, zone = expected
    assert found == (url or f"sqlite:///{ws / STATE_DIR / 'bulletin.db'}", ZoneInfo(zone))
    full = load_settings(ws, create_state=False)  # and exactly what the full settings make of it
    assert found == (full.effective_database_url, full.zone)


def test_settings_default_to_the_current_folder(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ws)
    (ws / CONFIG_FILE).write_text('timezone = "Asia/Tokyo"\n')
    assert quick._settings(None) == (f"sqlite:///{ws / STATE_DIR / 'bulletin.db'}", ZoneInfo("Asia/Tokyo"))


def test_the_fast_paths_constants_are_the_settings_own() -> None:
    assert (quick.CONFIG_FILE, quick.STATE_DIR) == (CONFIG_FILE, STATE_DIR)
    assert quick.DEFAULT_TIMEZONE == Settings.model_fields["timezone"].default
