"""The CLI starts without loading the stages: `--help` and registering the commands import no stage
package, and the read-only `status` and `report` leave the rendering, migration, password and mail
libraries alone (the database layer and the models are what they need), and the send engine too.

Each check runs in a fresh interpreter and looks at `sys.modules`; nothing here measures time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.ledger import generate

ROOT = Path(__file__).resolve().parent.parent

# Loaded by some commands only (rendering, migrations, passwords, inbound mail, charts, the web app, DKIM).
HEAVY = {"premailer", "alembic", "argon2", "mrml", "playwright", "imap_tools", "flufl", "jinja2", "matplotlib",
         "PIL", "uvicorn", "fastapi", "starlette", "aiosmtpd", "dkim", "dns", "nh3", "frontmatter",
         "email_validator", "mailparser_reply"}
# The sending side: the engine and the ledger's writers, the message builder, transports and DKIM, the
# audience stage, and rendering an issue. `status` and `report` read counts and never send.
SENDING = ("bulletin.delivery.service", "bulletin.delivery.engine", "bulletin.delivery.ledger", "bulletin.delivery.claims",
           "bulletin.delivery.message", "bulletin.delivery.queueing", "bulletin.messenger", "bulletin.audience",
           "bulletin.render.build")
# Not even these for `--help`: no command has run, so no workspace, settings or database. (Not pydantic:
# Typer itself imports it to parse a subcommand's parameters.)
NOT_FOR_HELP = HEAVY | {"sqlalchemy", "sqlmodel", "pydantic_settings", "psycopg"}

PROBE = """
import json, sys
from bulletin.cli import main
for argv in json.loads(sys.argv[1]):
    sys.argv = ["bulletin", *argv]
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
import gc
print("\\nFROZEN " + str(gc.get_freeze_count()))
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def loaded_after(*runs: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Module names in `sys.modules` after `bulletin <args>` ran for each of `runs` in one new interpreter."""
    return set(json.loads(probe(*runs, env=env).rsplit("MODULES ", 1)[1]))


def probe(*runs: list[str], env: dict[str, str] | None = None) -> str:
    """What PROBE printed after running `bulletin <args>` for each of `runs` in one new interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(runs))], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120", **(env or {})}, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_importing_the_cli_loads_no_stage_and_no_heavy_library() -> None:
    modules = loaded_after()
    assert packages(modules) & NOT_FOR_HELP == set()
    stages = {m for m in modules if m.startswith("bulletin.") and not m.startswith("bulletin.cli")}
    assert stages <= {"bulletin.errors", "bulletin.logs", "bulletin.statuses"}


def test_help_of_every_group_loads_no_stage_and_no_heavy_library() -> None:
    modules = loaded_after(["--help"], ["subscribers", "--help"], ["inbound", "--help"], ["inbound", "list", "--help"],
                           ["staff", "--help"], ["staff", "add", "--help"], ["send", "--help"], ["db", "--help"],
                           ["feedback", "--help"], ["report", "--help"], ["templates", "--help"])
    assert packages(modules) & NOT_FOR_HELP == set()
    assert "bulletin.models" not in modules and "bulletin.workspace" not in modules


def test_help_still_names_the_roles_and_review_classes() -> None:
    """They moved to bulletin.statuses so the help can name them without loading their stages."""
    from bulletin.accounts import ROLES
    from bulletin.inbound import CLASSES

    def helptext(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "bulletin", *args, "--help"], cwd=ROOT, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}, timeout=120)
        assert out.returncode == 0, out.stderr
        return " ".join(out.stdout.split())

    assert f"One of {', '.join(ROLES)}." in helptext("staff", "add")
    assert f"Only {', '.join(CLASSES)} mail." in helptext("inbound", "list")


@pytest.fixture
def filled(engine, settings, db_url: str) -> dict[str, str]:
    """A migrated database holding the issue "ours" (sent, bounced, replied to), and how to reach it."""
    generate(engine, people=20)
    return {"BULLETIN_WORKSPACE": str(settings.workspace), "BULLETIN_DATABASE_URL": db_url}


# What the fast path of `status` and `report` (cli.quick) must not load: it reads on the bare driver.
NOT_FOR_QUICK = HEAVY | {"sqlalchemy", "sqlmodel", "pydantic", "pydantic_settings", "typer", "click"}


def test_status_and_report_run_on_the_driver_without_sqlalchemy_pydantic_or_typer(filled: dict[str, str]) -> None:
    for command, forms in (("status", (["--json"],)), ("report", (["--json"], ["--csv"]))):
        modules = loaded_after([command, "ours"], *([command, "ours", *f] for f in forms), env=filled)
        assert packages(modules) & NOT_FOR_QUICK == set(), command
        assert "bulletin.models" not in modules and "bulletin.cli.commands" not in modules, command
        assert "bulletin.delivery.readout" in modules  # it did read the counts
        driver = "psycopg" if filled["BULLETIN_DATABASE_URL"].startswith("postgresql") else "sqlite3"
        assert driver in modules


def test_status_and_report_on_the_full_path_load_the_database_layer_but_no_heavy_library(
        filled: dict[str, str]) -> None:
    for command in ("status", "report"):
        modules = loaded_after([command, "ours"], [command, "ours", "--json"], env={**filled, "BULLETIN_FULL_CLI": "1"})
        assert packages(modules) & HEAVY == set(), command
        assert {"sqlalchemy", "bulletin.workspace", "bulletin.cli.commands"} <= modules  # the full path it was


def test_a_finished_command_leaves_its_objects_to_no_collection(filled: dict[str, str]) -> None:
    """The interpreter's final collections walked SQLAlchemy's, pydantic's and the models' objects for
    0.4 s after `status` had printed; main() freezes them on the way out, whether the command
    succeeded or failed."""
    assert int(probe(env=filled).split("FROZEN ", 1)[1].split()[0]) == 0  # nothing ran: nothing frozen
    for runs in ([["status", "ours"]], [["status", "no-such-issue"]]):
        text = subprocess.run(
            [sys.executable, "-c", PROBE.replace("raise", "pass"), json.dumps(runs)], cwd=ROOT, capture_output=True,
            text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **filled}, timeout=120).stdout
        assert int(text.split("FROZEN ", 1)[1].split()[0]) > 10_000, runs


def loaded(modules: set[str], names: tuple[str, ...] | set[str]) -> set[str]:
    """The modules of `modules` that are one of `names` or inside one of them."""
    return {m for m in modules if any(m == n or m.startswith(n + ".") for n in names)}


def test_status_and_report_do_not_load_the_send_engine(filled: dict[str, str]) -> None:
    """`status` once imported `delivery.service` for `issue_status`, and with it everything that sends;
    now `delivery.status`, which needs neither the compiled render nor the report's figures."""
    for env in (filled, {**filled, "BULLETIN_FULL_CLI": "1"}):
        status = loaded_after(["status", "ours"], ["status", "ours", "--json"], env=env)
        assert loaded(status, SENDING) == set()
        assert "bulletin.delivery.readout" in status  # it did read the counts
        assert loaded(status, {"bulletin.render.compiled", "bulletin.report.figures"}) == set()
        report = loaded_after(["report", "ours"], ["report", "ours", "--json"], ["report", "ours", "--csv"], env=env)
        assert "bulletin.report.figures" in report
        assert loaded(report, SENDING) == set()
