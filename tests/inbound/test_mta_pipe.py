"""The README's Postfix pipe line, run as Postfix would run it: several recipients, never a permanent failure."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.models import InboundMessage
from tests.inbound.conftest import World, mail

ROOT = Path(__file__).resolve().parents[2]


def _readme_argv() -> list[str]:
    """The `argv=` of the master.cf pipe line in README.md."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^\s*argv=(.+)$", text, re.M)
    assert found, "README.md has no master.cf argv= line"
    return shlex.split(found.group(1))


def _expand(argv: list[str], sender: str, recipients: list[str]) -> list[str]:
    """Postfix pipe(8): an argument containing ${original_recipient} becomes one argument per recipient."""
    out: list[str] = []
    for arg in argv:
        if "${original_recipient}" in arg or "${recipient}" in arg:
            out += [arg.replace("${original_recipient}", r).replace("${recipient}", r) for r in recipients]
        else:
            out.append(arg.replace("${sender}", sender))
    return out


def _run(world: World, recipients: list[str], raw: bytes, workspace: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    ws = workspace or world.settings.workspace
    toml = ws / "bulletin.toml"
    if workspace is None and not toml.exists():
        toml.write_text(f'database_url = "{world.settings.effective_database_url}"\n'
                        f'sending_domain = "{world.settings.sending_domain}"\n'
                        f'public_base_url = "{world.settings.public_base_url}"\n')
    argv = _expand(_readme_argv(), "amina@example.gov.uk", recipients)
    assert argv[0].endswith("/bulletin") and argv[1:3] == ["-w", "/srv/bulletin"]
    cmd = [sys.executable, "-m", "bulletin", "-w", str(ws), *argv[3:]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, input=raw, capture_output=True, env=env, timeout=120, check=False)


def test_readme_pipe_with_two_recipients_stores_one_message(world: World) -> None:
    sid = world.subscribers["amina@example.gov.uk"]
    reply = world.links.reply_address(sid, world.issue_id)
    raw = mail(to=reply, headers={"Cc": "editor@news.example.org"}, body="Two recipients, one reply.\n")
    proc = _run(world, [reply, "editor@news.example.org"], raw)
    assert proc.returncode == 0, proc.stderr.decode()
    with session_scope(world.engine) as session:
        (row,) = session.exec(select(InboundMessage)).all()
        assert row.envelope_to == f"{reply}, editor@news.example.org"
        assert (row.classification, row.subscriber_id) == ("reply", sid)


def test_pipe_with_a_broken_workspace_exits_75_and_says_why(world: World, tmp_path: Path) -> None:
    (tmp_path / "bulletin.toml").write_text("this is = = not toml\n")
    proc = _run(world, ["x@news.example.org"], mail(to="x@news.example.org"), workspace=tmp_path)
    assert proc.returncode == 75
    assert b"try again later" in proc.stderr


def test_pipe_with_an_unknown_option_exits_75_not_2(world: World) -> None:
    from tests.inbound.conftest import run_cli

    out = run_cli(world, "inbound", "--no-such-option", input=mail(to="x@news.example.org"))
    assert out.exit_code == 75
