"""The fast path of `bulletin status` and `bulletin report`: no Typer, pydantic, SQLAlchemy or models.

People run these two over and over while an issue goes out (`watch bulletin
status ...`), and the full CLI spends about half a second importing libraries
before a 10 ms query. Here the common forms of the two commands run on the
bare driver (`bulletin.sqlread`) with the same queries (`delivery.readout`,
`report.figures`) and the same printing (`cli.show`) as the full commands.

Only what is certain is decided here. Any other argument (`--help`, `--html`,
`--log-level`, a typo), a settings file that does not read cleanly, a database
URL this path does not know, a missing database or one not at the newest
migration: `run` returns False and the full CLI handles the command, with its
own checks and error messages. Only the two settings these commands use are
read (`database_url`, `timezone`), with the full settings' precedence: the
environment (BULLETIN_*), then bulletin.toml, then the default.
Set BULLETIN_FULL_CLI=1 to always take the full path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE, STATE_DIR = "bulletin.toml", ".bulletin"  # as bulletin.config (tests hold them equal)
DEFAULT_TIMEZONE = "Europe/London"


@dataclass(frozen=True)
class Call:
    command: str  # "status" or "report"
    issue: str
    workspace: str | None
    as_json: bool
    as_csv: bool


def parse(argv: Sequence[str]) -> Call | None:
    """The command line, if it is one of the forms this path takes; else None."""
    args, workspace = list(argv), None
    while args and args[0] in ("-w", "--workspace") or args and args[0].startswith("--workspace="):
        head = args.pop(0)
        if "=" in head:
            workspace = head.split("=", 1)[1]
        elif args:
            workspace = args.pop(0)
        else:
            return None
    if not args or args[0] not in ("status", "report"):
        return None
    command, rest = args[0], args[1:]
    flags = {"status": {"--json"}, "report": {"--json", "--csv"}}[command]
    positional = [a for a in rest if not a.startswith("-")]
    options = [a for a in rest if a.startswith("-")]
    if len(positional) != 1 or not set(options) <= flags or len(set(options)) != len(options):
        return None
    return Call(command, positional[0], workspace, "--json" in options, "--csv" in options)


def run(argv: Sequence[str]) -> bool:
    """Run `bulletin <argv>` here if this path can; False leaves it to the full CLI."""
    if os.environ.get("BULLETIN_FULL_CLI"):
        return False
    call = parse(argv)
    if call is None:
        return False
    found = _settings(call.workspace)
    if found is None:
        return False
    url, zone = found
    from bulletin.schema import newest_revision
    from bulletin.sqlread import NoFastPath, driver_reader

    try:
        with driver_reader(url, newest_revision()) as reader:
            _answer(call, reader, zone)
    except NoFastPath:
        return False
    return True


def _answer(call: Call, reader: object, zone: object) -> None:
    from datetime import UTC, datetime

    from bulletin.cli.show import show_report, show_status

    if call.command == "status":
        from bulletin.delivery.readout import read_status

        show_status(read_status(reader, call.issue, datetime.now(UTC)), zone,  # type: ignore[arg-type]
                    as_json=call.as_json)
        return
    from bulletin.report import issue_report

    show_report(issue_report(reader, call.issue), zone, as_json=call.as_json,  # type: ignore[arg-type]
                as_csv=call.as_csv)


def _settings(workspace: str | None) -> tuple[str, object] | None:
    """(effective database URL, time zone) as the full settings would load them, or None when unsure."""
    import tomllib
    from zoneinfo import ZoneInfo

    ws = Path(workspace or os.environ.get("BULLETIN_WORKSPACE") or ".").resolve()
    env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith("BULLETIN_")}
    try:
        with (ws / CONFIG_FILE).open("rb") as fh:
            toml = tomllib.load(fh)
    except FileNotFoundError:
        toml = {}
    except (OSError, ValueError):
        return None  # the full path explains what is wrong with the file

    if not isinstance(toml.get("database_url", ""), str) or not isinstance(toml.get("timezone", ""), str):
        return None
    url = env.get("BULLETIN_DATABASE_URL", toml.get("database_url"))
    zone_name = env.get("BULLETIN_TIMEZONE", toml.get("timezone", DEFAULT_TIMEZONE))
    try:
        zone = ZoneInfo(zone_name or "")
    except (ValueError, KeyError, OSError):
        return None
    return url or f"sqlite:///{(ws / STATE_DIR / 'bulletin.db').resolve()}", zone
