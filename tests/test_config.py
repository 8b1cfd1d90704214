import json
import os
import stat
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bulletin.cli import app
from bulletin.config import load_settings
from bulletin.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BULLETIN_") and name != "BULLETIN_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def write_toml(workspace, text):
    (workspace / "bulletin.toml").write_text(text)


def test_toml_values_are_used(workspace):
    write_toml(workspace, 'smtp_host = "relay.example.org"\nsmtp_port = 587\n')
    s = load_settings(workspace)
    assert (s.smtp_host, s.smtp_port) == ("relay.example.org", 587)


def test_environment_overrides_toml(workspace, monkeypatch):
    write_toml(workspace, 'smtp_host = "relay.example.org"\nsending_domain = "toml.example.org"\n')
    monkeypatch.setenv("BULLETIN_SMTP_HOST", "env-relay.example.org")
    s = load_settings(workspace)
    assert s.smtp_host == "env-relay.example.org"
    assert s.sending_domain == "toml.example.org"


def test_sending_processes_default_to_one_per_four_connections_at_most_one_per_core(workspace, monkeypatch):
    """Measured on 2 cores (config.default_send_processes): one process keeps the default 4 connections
    busy, and a second only split the ledger's group commits. More connections get more processes,
    never more than the cores; a value set in the file or the environment is taken as it is."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert load_settings(workspace).send_processes == 1  # the default 4 connections
    write_toml(workspace, "smtp_connections = 8\n")
    assert load_settings(workspace).send_processes == 2
    write_toml(workspace, "smtp_connections = 64\n")
    assert load_settings(workspace).send_processes == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert load_settings(workspace).send_processes == 2
    write_toml(workspace, "smtp_connections = 3\n")
    assert load_settings(workspace).send_processes == 1
    write_toml(workspace, "smtp_connections = 64\nsend_processes = 3\n")
    assert load_settings(workspace).send_processes == 3
    monkeypatch.setenv("BULLETIN_SEND_PROCESSES", "5")
    assert load_settings(workspace).send_processes == 5


@pytest.mark.parametrize(("toml", "env", "setting"), [
    ("smtp_port = 70000\n", {}, "smtp_port"),
    ("", {"BULLETIN_SMTP_PORT": "not-a-port"}, "smtp_port"),
    ('transport = "pigeon"\n', {}, "transport"),
    ('public_base_url = "news.example.org"\n', {}, "public_base_url"),
    ('smtp_hots = "typo.example.org"\n', {}, "smtp_hots"),
])
def test_a_bad_setting_gives_one_line_naming_it(workspace, monkeypatch, toml, env, setting):
    write_toml(workspace, toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings(workspace)
    message = str(info.value)
    assert f"'{setting}'" in message and f"BULLETIN_{setting.upper()}" in message
    assert "\n" not in message


def test_broken_toml_names_the_file(workspace):
    write_toml(workspace, "smtp_host = \n")
    with pytest.raises(ConfigError, match="bulletin.toml"):
        load_settings(workspace)


def test_signing_key_is_generated_once_and_kept_private(workspace):
    first = load_settings(workspace).secret_keys
    second = load_settings(workspace).secret_keys
    assert first == second and len(first[0]) >= 32
    key_file = workspace / ".bulletin" / "secret_keys.json"
    assert json.loads(key_file.read_text()) == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_config_show_masks_every_secret(workspace, monkeypatch):
    write_toml(workspace, 'smtp_username = "mailer"\nsmtp_password = "pa55word-smtp"\n'
                          'imap_password = "pa55word-imap"\n'
                          'database_url = "postgresql://bulletin:pa55word-db@db.example.org/bulletin"\n')
    monkeypatch.setenv("BULLETIN_SECRET_KEYS", '["key-that-must-not-show-0123456789"]')
    result = CliRunner().invoke(app, ["--workspace", str(workspace), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "pa55word" not in result.output and "key-that-must-not-show" not in result.output
    shown = json.loads(result.output)
    assert shown["smtp_password"] == shown["imap_password"] == "********"
    assert shown["smtp_username"] == "mailer"
    assert shown["database_url"] == "postgresql://bulletin:***@db.example.org/bulletin"
    assert shown["secret_keys"][0].startswith("key…")


def test_config_show_prints_the_effective_settings(workspace, monkeypatch):
    monkeypatch.setenv("BULLETIN_SENDING_DOMAIN", "env.example.org")
    result = CliRunner().invoke(app, ["--workspace", str(workspace), "config", "show"])
    assert result.exit_code == 0
    assert "sending_domain = env.example.org" in result.output


def test_cli_turns_a_bad_setting_into_one_line_and_exit_code_2(workspace):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env["BULLETIN_SMTP_PORT"] = "abc"
    proc = subprocess.run([sys.executable, "-m", "bulletin", "--workspace", str(workspace), "config", "show"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "smtp_port" in lines[0] and "Traceback" not in proc.stderr
