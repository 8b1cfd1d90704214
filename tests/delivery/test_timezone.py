"""`--at` without an offset is wall-clock time in the workspace's `timezone`; status shows it there."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.config import Settings
from tests.delivery.conftest import add_list, add_subscribers

ISSUE = "2016-shared-service-map"


def run(settings: Settings, *args: str, zone: str | None = None):  # type: ignore[no-untyped-def]
    env = {"BULLETIN_DATABASE_URL": settings.effective_database_url, "COLUMNS": "200"}
    if zone:
        env["BULLETIN_TIMEZONE"] = zone
    result = CliRunner().invoke(app, ["-w", str(settings.workspace), *args], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def scheduled(settings: Settings) -> datetime:
    at = json.loads(run(settings, "status", ISSUE, "--json"))["sends"][0]["scheduled_at"]
    value = datetime.fromisoformat(at)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.mark.parametrize(("zone", "given", "utc_hour"), [
    (None, "2030-07-01T08:00", 7),                         # Europe/London in summer is UTC+1
    (None, "2030-12-01T08:00", 8),                         # and UTC in winter
    ("America/New_York", "2030-07-01T08:00", 12),
    ("America/New_York", "2030-07-01T08:00+00:00", 8),    # an explicit offset wins
])
def test_at_without_an_offset_is_read_in_the_workspace_zone(settings: Settings, engine, zone, given, utc_hour) -> None:  # type: ignore[no-untyped-def]
    add_subscribers(engine, add_list(engine), 1)
    run(settings, "send", ISSUE, "--list", "shared-services", "--at", given, zone=zone)
    assert scheduled(settings) == datetime.fromisoformat(given[:16]).replace(hour=utc_hour, tzinfo=UTC)


def test_status_shows_the_scheduled_time_in_the_workspace_zone(settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
    add_subscribers(engine, add_list(engine), 1)
    out = run(settings, "send", ISSUE, "--list", "shared-services", "--at", "2030-07-01T08:00")
    assert "at 2030-07-01 08:00 BST" in out
    assert "scheduled 2030-07-01 08:00 BST" in run(settings, "status", ISSUE)
    assert "scheduled 2030-07-01 03:00 EDT" in run(settings, "status", ISSUE, zone="America/New_York")


def test_an_unknown_zone_is_refused_naming_the_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["-w", str(tmp_path), "config", "show"],
                                env={"BULLETIN_TIMEZONE": "Europe/Lodon"})
    assert "setting 'timezone' (BULLETIN_TIMEZONE)" in str(result.exception)
