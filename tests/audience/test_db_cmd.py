"""`bulletin db status` and `bulletin db upgrade` on a fresh SQLite workspace."""

from __future__ import annotations

from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.db import head_revision


def test_status_reports_a_fresh_database_needs_upgrade_then_upgrade_brings_it_to_head(tmp_path):
    runner = CliRunner()
    env = {"BULLETIN_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "COLUMNS": "200"}
    before = runner.invoke(app, ["-w", str(tmp_path), "db", "status"], env=env)
    assert before.exit_code == 1 and "needs `bulletin db upgrade`" in before.output
    up = runner.invoke(app, ["-w", str(tmp_path), "db", "upgrade"], env=env)
    assert up.exit_code == 0 and head_revision() in up.output
    after = runner.invoke(app, ["-w", str(tmp_path), "db", "status"], env=env)
    assert after.exit_code == 0 and "up to date" in after.output


def test_upgrade_is_idempotent(tmp_path):
    runner = CliRunner()
    env = {"BULLETIN_DATABASE_URL": f"sqlite:///{tmp_path / 'again.db'}"}
    for _ in range(2):
        result = runner.invoke(app, ["-w", str(tmp_path), "db", "upgrade"], env=env)
        assert result.exit_code == 0, result.output


def test_status_of_a_migrated_database_is_up_to_date_on_both_backends(db_url, tmp_path):
    result = CliRunner().invoke(app, ["-w", str(tmp_path), "db", "status"], env={"BULLETIN_DATABASE_URL": db_url})
    assert result.exit_code == 0 and "up to date" in result.output


def test_an_unreachable_database_is_a_config_error_naming_the_setting(tmp_path):
    from bulletin.errors import ConfigError

    env = {"BULLETIN_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = CliRunner().invoke(app, ["-w", str(tmp_path), "db", "upgrade"], env=env)
    assert isinstance(result.exception, ConfigError) and "database_url" in str(result.exception)
