"""Review h30: `send_processes` defaulting to one process per four `smtp_connections` (commit 5a87fd9), attacked.

The first test failed on the code it was written against; the others guard what held.
"""

from __future__ import annotations

import os

import pytest

from bulletin.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.startswith("BULLETIN_") and name != "BULLETIN_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def test_at_most_one_process_per_core_this_process_may_use(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    """"At most one per core" counts the host's cores (os.cpu_count), not the ones the process may run
    on: in a container pinned to one core of an 8-core host (docker --cpuset-cpus=0, taskset) 16
    connections get 4 processes on that one core, the case config.default_send_processes' own
    measurement found slower than one."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    (workspace / "bulletin.toml").write_text("smtp_connections = 16\n")
    assert load_settings(workspace).send_processes == 1


def test_held_environment_connections_and_processes(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # a platform without it: the host's count
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    monkeypatch.setenv("BULLETIN_SMTP_CONNECTIONS", "64")
    assert load_settings(workspace).send_processes == 1  # cpu_count() None: one core
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert load_settings(workspace).send_processes == 4
    (workspace / "bulletin.toml").write_text("smtp_connections = 4\nsend_processes = 3\n")
    assert load_settings(workspace).send_processes == 3  # the file's value, env connections notwithstanding
    monkeypatch.setenv("BULLETIN_SEND_PROCESSES", "2")
    assert load_settings(workspace).send_processes == 2
    assert load_settings(workspace, send_processes=5).send_processes == 5  # an init override wins
    monkeypatch.delenv("BULLETIN_SEND_PROCESSES")
    (workspace / "bulletin.toml").write_text("")
    assert load_settings(workspace, smtp_connections=12).send_processes == 3


@pytest.mark.parametrize(("toml", "env", "setting"), [
    ("send_processes = 0\n", {}, "send_processes"),
    ("", {"BULLETIN_SEND_PROCESSES": "33"}, "send_processes"),
    ("smtp_connections = 0\n", {}, "smtp_connections"),
    ("", {"BULLETIN_SMTP_CONNECTIONS": "many"}, "smtp_connections"),
])
def test_held_a_bad_value_names_its_setting(workspace, monkeypatch, toml, env, setting):  # type: ignore[no-untyped-def]
    from bulletin.errors import ConfigError

    (workspace / "bulletin.toml").write_text(toml)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        load_settings(workspace)


def test_held_direct_settings_and_copies(workspace, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    s = Settings(workspace=workspace, smtp_connections=8)
    assert s.send_processes == 2
    assert s.model_copy(update={"secret_keys": ["k"]}).send_processes == 2
    assert Settings(workspace=workspace, smtp_connections=64, send_processes=1).send_processes == 1
