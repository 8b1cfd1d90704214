"""IMAP polling against a real Dovecot on 127.0.0.1, configured in a temporary folder.

Dovecot refuses to give mail to uid 0, so when the tests run as root the
mailboxes belong to `nobody`. The server is started by the fixture and
stopped by its own pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import select

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.inbound import ingest
from bulletin.inbound.acting.sources import imap_poll
from bulletin.models import InboundMessage
from tests.inbound.conftest import World, dsn, mail
from tests.smtp_sink import free_port

DOVECOT = Path("/usr/sbin/dovecot")
USER, PASSWORD = "bulletin", "not-a-secret"


@dataclass
class Imap:
    host: str
    port: int



def _config(root: Path, mail_root: Path, port: int, uid: int, gid: int) -> str:
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = bulletin-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail_root}/%u
}}
mail_location = maildir:{mail_root}/%u/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@pytest.fixture
def dovecot() -> Iterator[Imap]:
    if not DOVECOT.exists():
        pytest.skip("Dovecot is not installed (.ci/run installs dovecot-imapd)")
    # Dovecot's auth and mail processes drop privileges: pytest's 0700 tmp_path is out of their reach.
    root = Path(tempfile.mkdtemp(prefix="bulletin-dovecot-"))
    os.chmod(root, 0o755)
    mail_root = root / "mail"
    mail_root.mkdir(mode=0o755)
    uid, gid = (65534, 65534) if os.getuid() == 0 else (os.getuid(), os.getgid())
    if os.getuid() == 0:
        os.chown(mail_root, uid, gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port = free_port()
    (root / "dovecot.conf").write_text(_config(root, mail_root, port, uid, gid))
    proc = subprocess.Popen([str(DOVECOT), "-c", str(root / "dovecot.conf"), "-F"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"dovecot exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                time.sleep(0.1)
        yield Imap("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _settings(world: World, imap: Imap) -> Settings:
    return world.settings.model_copy(update={"imap_host": imap.host, "imap_port": imap.port, "imap_ssl": False,
                                             "imap_username": USER, "imap_password": PASSWORD})


def _append(imap: Imap, *messages: bytes) -> None:
    from imap_tools import MailBoxUnencrypted

    with MailBoxUnencrypted(imap.host, imap.port).login(USER, PASSWORD) as box:
        for raw in messages:
            box.append(raw, "INBOX")


def _counts(imap: Imap, settings: Settings) -> tuple[int, int]:
    from imap_tools import MailBoxUnencrypted

    with MailBoxUnencrypted(imap.host, imap.port).login(USER, PASSWORD) as box:
        inbox = len(box.uids())
        if not box.folder.exists(settings.imap_done_folder):
            return inbox, 0
        box.folder.set(settings.imap_done_folder)
        return inbox, len(box.uids())


def test_imap_poll_stores_classifies_and_moves_to_done_folder(world: World, dovecot: Imap) -> None:
    settings = _settings(world, dovecot)
    sid = world.subscribers["amina@example.gov.uk"]
    reply = mail(to=world.links.reply_address(sid, world.issue_id), message_id="<imap1@c>")
    bounce = dsn(to=world.links.bounce_address(sid, world.issue_id), recipient="amina@example.gov.uk",
                 status="5.1.1")
    _append(dovecot, reply, bounce, reply)
    results = list(imap_poll(world.engine, settings))
    assert [r.classification for r in results] == ["reply", "bounce", "reply"]
    assert [r.duplicate for r in results] == [False, False, True]
    assert _counts(dovecot, settings) == (0, 3)
    with session_scope(world.engine) as session:
        rows = session.exec(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [r.source for r in rows] == ["imap", "imap"] and rows[0].raw.startswith(b"From: Amina")


def test_imap_interrupted_poll_resumes_without_double_processing(world: World, dovecot: Imap) -> None:
    settings = _settings(world, dovecot)
    first = mail(to="x@example.org", frm="stranger@example.net", message_id="<a@c>")
    second = mail(to="x@example.org", frm="stranger@example.net", message_id="<b@c>")
    _append(dovecot, first, second)
    assert len(list(imap_poll(world.engine, settings, limit=1))) == 1
    assert _counts(dovecot, settings) == (1, 1)
    # A crash after storing but before the move: the next poll finds it stored and only moves it.
    ingest(world.engine, world.settings, second, source="imap")
    [again] = list(imap_poll(world.engine, settings))
    assert again.duplicate and _counts(dovecot, settings) == (0, 2)


def test_imap_without_credentials_is_a_config_error(world: World) -> None:
    from bulletin.errors import ConfigError

    with pytest.raises(ConfigError):
        list(imap_poll(world.engine, world.settings))


def test_cli_imap_prints_json_lines(world: World, dovecot: Imap) -> None:
    import json

    from tests.inbound.conftest import run_cli

    _append(dovecot, mail(to="x@example.org", frm="stranger@example.net", message_id="<cli@c>"))
    (world.settings.workspace / "bulletin.toml").write_text(
        f'database_url = "{world.settings.effective_database_url}"\nsending_domain = "news.example.org"\n'
        f'imap_host = "127.0.0.1"\nimap_port = {dovecot.port}\nimap_ssl = false\n'
        f'imap_username = "{USER}"\nimap_password = "{PASSWORD}"\n')
    out = run_cli(world, "inbound", "--imap", "--json")
    [line] = [json.loads(x) for x in out.stdout.splitlines()]
    assert (line["message_id"], line["classification"]) == ("<cli@c>", "unmatched")
