"""Group commit keeps store-first: after a SIGKILL, every message already acknowledged (moved to cur/) is stored."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound.acting.store import message_id_from_raw
from bulletin.models import InboundMessage
from tests.inbound.conftest import World, mail

ROOT = Path(__file__).resolve().parents[2]
COUNT = 600


def _start(world: World, box: Path) -> subprocess.Popen[bytes]:
    ws = world.settings.workspace
    (ws / "bulletin.toml").write_text(f'database_url = "{world.settings.effective_database_url}"\n'
                                      f'sending_domain = "{world.settings.sending_domain}"\n'
                                      f'public_base_url = "{world.settings.public_base_url}"\n'
                                      "inbound_batch_size = 20\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bulletin", "-w", str(ws), "inbound", "--maildir", str(box), "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _acknowledged(box: Path) -> list[Path]:
    return [p for p in (box / "cur").iterdir() if p.name.endswith(":2,S")]


def test_sigkill_mid_batch_loses_no_acknowledged_message(world: World, tmp_path: Path) -> None:
    box_path = tmp_path / "md"
    box = mailbox.Maildir(box_path, create=True)
    for n in range(COUNT):
        box.add(mail(to="x@news.example.org", frm=f"sender{n}@example.net", message_id=f"<kill{n}@example.net>",
                     body=f"message {n}\n"))
    box.close()
    proc = _start(world, box_path)
    deadline = time.monotonic() + 120
    while len(_acknowledged(box_path)) < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    acked = {message_id_from_raw(p.read_bytes()) for p in _acknowledged(box_path)}
    assert acked, "nothing was acknowledged before the kill"
    with session_scope(world.engine) as session:
        stored = set(session.exec(select(InboundMessage.message_id)).all())
    assert acked <= stored
    assert len(acked) < COUNT or proc.returncode == 0  # killed mid-run (the usual case), or it had finished
    # A second run stores the rest, finishes any message stored but not processed, and stores nothing twice.
    again = _start(world, box_path)
    assert again.wait(timeout=300) == 0, again.stderr.read() if again.stderr else b""
    with session_scope(world.engine) as session:
        rows = session.exec(select(InboundMessage)).all()
        assert len(rows) == COUNT and {r.status for r in rows} == {"processed"}
    assert len(_acknowledged(box_path)) == COUNT and list((box_path / "new").iterdir()) == []
