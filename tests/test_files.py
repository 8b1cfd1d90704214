"""Files bulletin creates: one signing key however many processes start at once, private modes, masked secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "BULLETIN_PUBLIC_BASE_URL": "https://news.example.org",
       "BULLETIN_SENDING_DOMAIN": "news.example.org"}
ENV.pop("BULLETIN_DATABASE_URL", None)
ENV.pop("BULLETIN_WORKSPACE", None)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_eight_processes_starting_together_end_with_one_signing_key(tmp_path: Path) -> None:
    code = "import sys; from bulletin.config import load_settings; print(load_settings(sys.argv[1]).secret_keys[0])"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    keys = {out.strip() for out, _ in results}
    assert len(keys) == 1 and len(keys.pop()) >= 40
    state = tmp_path / ".bulletin"
    assert _mode(state / "secret_keys.json") == 0o600
    assert not list(state.glob("*.tmp")), "no half-written key file is left behind"


def _bulletin(ws: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bulletin", "-w", str(ws), *args], env=env or ENV,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(0o022))  # a permissive login umask


def test_database_wal_outbox_keys_and_exports_are_private(workspace: Path) -> None:
    assert _bulletin(workspace, "lists", "sync").returncode == 0
    imported = _bulletin(workspace, "subscribers", "import", str(workspace / "subscribers" / "sample.csv"), "-q")
    assert imported.returncode == 0, imported.stderr
    sent = _bulletin(workspace, "send", "2016-shared-service-map", "--list", "shared-services", "--quiet")
    assert sent.returncode == 0, sent.stderr
    exported = _bulletin(workspace, "subscribers", "export", "-o", str(workspace / "people.csv"))
    assert exported.returncode == 0, exported.stderr
    state = workspace / ".bulletin"
    outbox = state / "outbox"
    assert _mode(state) == 0o700 and _mode(outbox) == 0o700 and _mode(outbox / "new") == 0o700
    files = [state / "bulletin.db", state / "secret_keys.json", workspace / "people.csv",
             *state.glob("bulletin.db-*"), *(outbox / "new").iterdir()]
    assert len(files) > 10
    assert {str(f.relative_to(workspace)): oct(_mode(f)) for f in files if _mode(f) != 0o600} == {}


def test_config_show_and_errors_mask_passwords_in_user_info_and_query_strings(tmp_path: Path) -> None:
    url = "postgresql://editor:pa55word@127.0.0.1:1/bulletin?sslmode=disable&password=qu3ry-secret"
    env = {**ENV, "BULLETIN_DATABASE_URL": url}
    shown = _bulletin(tmp_path, "config", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "editor:***@127.0.0.1" in shown.stdout and "password=***" in shown.stdout
    failed = _bulletin(tmp_path, "status", "any-issue", env=env)
    assert failed.returncode != 0 and "cannot reach the database" in failed.stderr
    for result in (shown, failed):
        assert "pa55word" not in result.stdout + result.stderr
        assert "qu3ry-secret" not in result.stdout + result.stderr
