"""`bulletin inbound serve`: LMTP and SMTP listeners store before they answer 250."""

from __future__ import annotations

import smtplib

import pytest
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound import IngestResult
from bulletin.inbound.acting.listener import start_listener
from bulletin.models import InboundMessage
from tests.inbound.conftest import World, mail
from tests.smtp_sink import free_port


def test_lmtp_delivery_is_stored_and_answered_per_recipient(world: World) -> None:
    seen: list[IngestResult] = []
    port = free_port()
    controller = start_listener(world.engine, world.settings, port=port, lmtp=True, on_result=seen.append)
    try:
        sid = world.subscribers["ben@example.org"]
        reply_to = world.links.reply_address(sid, world.issue_id)
        client = smtplib.LMTP("127.0.0.1", port)
        refused = client.sendmail("ben@example.org", [reply_to, "reply@news.example.org"],
                                  mail(to=reply_to, frm="ben@example.org"))
        client.quit()
    finally:
        controller.stop()
    assert refused == {}
    assert [(r.classification, r.subscriber_id) for r in seen] == [("reply", sid)]
    with session_scope(world.engine) as session:
        row = session.exec(select(InboundMessage)).one()
        assert row.source == "lmtp" and row.envelope_from == "ben@example.org" and reply_to in (row.envelope_to or "")


def test_smtp_listener_answers_451_when_the_message_cannot_be_stored(world: World) -> None:
    from bulletin.db import make_engine

    port = free_port()
    gone = world.settings.workspace / "gone"
    engine = make_engine(f"sqlite:///{gone / 'x.db'}")  # a database whose folder then disappears
    engine.dispose()
    (gone / "x.db").unlink()
    gone.rmdir()
    controller = start_listener(engine, world.settings, port=port, lmtp=False)
    try:
        client = smtplib.SMTP("127.0.0.1", port)
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@example.org", ["reply@news.example.org"], mail(to="reply@news.example.org"))
        client.close()
    finally:
        controller.stop()
    assert info.value.smtp_code == 451


def test_cli_serve_runs_an_lmtp_server_that_stores_mail(world: World) -> None:
    import subprocess
    import sys
    import time

    from tests.inbound.conftest import run_cli

    run_cli(world, "inbound", "reprocess")  # writes bulletin.toml for this database
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bulletin", "-w", str(world.settings.workspace), "inbound",
                             "serve", "--port", str(port), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60  # a loaded CI machine can take many seconds to start Python
        while True:
            try:
                client = smtplib.LMTP("127.0.0.1", port)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the LMTP listener did not start within 60 s"
                time.sleep(0.05)
        refused = client.sendmail("x@example.net", ["reply@news.example.org"],
                                  mail(to="reply@news.example.org", frm="x@example.net", message_id="<serve@c>"))
        client.quit()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert refused == {}
    assert b'"message_id": "<serve@c>"' in out
    with session_scope(world.engine) as session:
        assert session.exec(select(InboundMessage)).one().message_id == "<serve@c>"


def test_concurrent_lmtp_sessions_are_group_committed_and_all_stored(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    controller = start_listener(world.engine, world.settings, port=port, lmtp=True)

    def send(n: int) -> dict[str, tuple[int, bytes]]:
        client = smtplib.LMTP("127.0.0.1", port)
        try:
            return client.sendmail(f"s{n}@example.net", ["reply@news.example.org"],
                                   mail(to="reply@news.example.org", frm=f"s{n}@example.net",
                                        message_id=f"<conc{n}@example.net>"))
        finally:
            client.quit()

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            refused = list(pool.map(send, range(24)))
    finally:
        controller.stop()
    assert refused == [{}] * 24
    with session_scope(world.engine) as session:
        rows = session.exec(select(InboundMessage)).all()
        assert sorted(r.message_id for r in rows) == sorted(f"<conc{n}@example.net>" for n in range(24))
        assert {r.status for r in rows} == {"processed"}
