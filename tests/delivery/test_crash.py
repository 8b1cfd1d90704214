"""Stops of the sending process, for real: SIGTERM, Ctrl-C and SIGKILL of `python -m bulletin`.

The sender runs as a subprocess against an aiosmtpd sink in this process and a
shared 2,000-recipient ledger. Kill points are chosen by what the sink has seen
(and, for start-up, a few short delays), never asserted on time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.models import Delivery, Send
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled, smtp_settings
from tests.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
N = 2000
CONNECTIONS = 4
pytestmark = pytest.mark.slow


def _env(settings: Settings, sink: SmtpSink, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "BULLETIN_WORKSPACE": str(settings.workspace),
        "BULLETIN_DATABASE_URL": settings.effective_database_url,
        "BULLETIN_TRANSPORT": "smtp",
        "BULLETIN_SMTP_HOST": sink.host,
        "BULLETIN_SMTP_PORT": str(sink.port),
        "BULLETIN_SMTP_CONNECTIONS": str(CONNECTIONS),
        "BULLETIN_PUBLIC_BASE_URL": settings.public_base_url,
        "BULLETIN_SENDING_DOMAIN": settings.sending_domain,
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bulletin", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(sink: SmtpSink, proc: subprocess.Popen[bytes], count: int) -> None:
    while sink.count() < count and proc.poll() is None:
        time.sleep(0.002)


def _settle(sink: SmtpSink) -> None:
    """Let the sink finish any message whose last byte arrived before the kill."""
    last = -1
    while sink.count() != last:
        last = sink.count()
        time.sleep(0.2)


@dataclass(frozen=True)
class _Row:
    state: str
    message_id: str  # the one the message carried: kept by the row, or derived as the build derives it
    claimed_by: str | None


def _rows(engine: Engine, settings: Settings) -> list[_Row]:
    links = Links.for_settings(settings)
    with session_scope(engine) as session:
        rows = session.exec(select(Delivery.state, Delivery.message_id, Delivery.subscriber_id, Delivery.issue_id,
                                   Send.list_id, Delivery.claimed_by).join(Send, Send.id == Delivery.send_id)).all()
    return [_Row(state, kept or links.for_message(sid, list_id, issue_id).message_id, by)
            for state, kept, sid, issue_id, list_id, by in rows]


def _queue(settings: Settings, engine: Engine, sink: SmtpSink) -> tuple[list[str], str]:
    s = smtp_settings(settings, sink, CONNECTIONS)
    emails = add_subscribers(engine, add_list(engine), N)
    compiled = make_compiled("2026-06-crash")
    service.queue_issue(engine, s, compiled, "shared-services")
    return emails, compiled.slug


@pytest.fixture
def sqlite_engine(settings: Settings, engine: Engine) -> Engine:
    if engine.dialect.name != "sqlite":
        pytest.skip("the kill tests run the embedded default; PostgreSQL has the worker test")
    return engine


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_and_ctrl_c_finish_in_flight_messages_and_resume_completes(settings, sqlite_engine, sink,  # type: ignore[no-untyped-def]
                                                                           processes):
    emails, slug = _queue(settings, sqlite_engine, sink)
    env = _env(settings, sink, BULLETIN_SEND_PROCESSES=processes)
    for signum, at in ((signal.SIGINT, 300), (signal.SIGTERM, 900)):
        proc = _start(env, "resume", slug, "--quiet")
        _wait_for(sink, proc, at)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert b"resume" in out
        _settle(sink)
        rows = _rows(sqlite_engine, settings)
        sent = {r.message_id for r in rows if r.state == DeliveryState.SENT}
        assert not [r for r in rows if r.state == DeliveryState.CLAIMED], "in-flight messages were finished"
        assert set(sink.copies().values()) == {1}
        assert set(sink.message_ids()) == sent, "exactly the messages the server took are marked sent"
        assert len(sent) < N
    proc = _start(env, "resume", slug, "--quiet")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert sink.copies() == {e: 1 for e in emails}
    assert {r.state for r in _rows(sqlite_engine, settings)} == {DeliveryState.SENT}


# Kill points: by messages seen since the last start, or ("delay", seconds) for start-up and first claim.
KILLS: list[tuple[str, float]] = [
    ("delay", 0.05), ("delay", 0.4), ("seen", 1), ("seen", 3), ("seen", 40), ("seen", 150),
    ("seen", 201), ("seen", 333), ("seen", 90), ("seen", 17), ("seen", 400),
]


def test_sigkill_at_many_points_never_skips_and_only_duplicates_claimed_rows(settings, sqlite_engine, sink):  # type: ignore[no-untyped-def]
    emails, slug = _queue(settings, sqlite_engine, sink)
    env = _env(settings, sink)
    claimed_at_kill: set[str] = set()
    budget = 0  # messages the server took whose rows were still claimed at a kill
    kills = 0
    for how, value in KILLS:
        before = sink.count()
        proc = _start(env, "resume", slug, "--quiet")
        if how == "delay":
            time.sleep(value)
        else:
            _wait_for(sink, proc, before + int(value))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        kills += 1
        _settle(sink)
        rows = _rows(sqlite_engine, settings)
        claimed = {r.message_id for r in rows if r.state == DeliveryState.CLAIMED}
        got = set(sink.message_ids())
        assert len(claimed & got) <= CONNECTIONS, "sent-but-unrecorded is bounded by the connections"
        claimed_at_kill |= claimed & got
        budget += len(claimed & got)
    assert kills >= 10
    proc = _start(env, "resume", slug, "--quiet")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    copies = sink.copies()
    left = {r.state for r in _rows(sqlite_engine, settings)} - {DeliveryState.SENT}
    assert set(copies) == set(emails), f"no recipient is skipped (rows left {left}; resume said {out!r} {err!r})"
    twice = {rcpt for rcpt, n in copies.items() if n > 1}
    ids = sink.ids_by_rcpt()
    assert all(len(ids[r]) == 1 for r in twice), "a duplicate carries its twin's Message-ID"
    assert {next(iter(ids[r])) for r in twice} <= claimed_at_kill, "only rows claimed at a kill repeat"
    extra = sum(n - 1 for n in copies.values())
    assert extra <= budget <= CONNECTIONS * kills
    assert {r.state for r in _rows(sqlite_engine, settings)} == {DeliveryState.SENT}


def test_sigkill_of_a_multi_process_send_stops_its_children_and_resume_completes(settings, sqlite_engine, sink):  # type: ignore[no-untyped-def]
    emails, slug = _queue(settings, sqlite_engine, sink)
    env = _env(settings, sink, BULLETIN_SEND_PROCESSES="2")
    proc = _start(env, "resume", slug, "--quiet")
    _wait_for(sink, proc, 100)
    assert proc.poll() is None, proc.communicate()
    proc.kill()
    proc.wait()
    _settle(sink)
    assert sink.count() < N, "the forked sender stopped with its parent instead of finishing alone"
    rows = _rows(sqlite_engine, settings)
    claimed_at_kill = {r.message_id for r in rows if r.state == DeliveryState.CLAIMED} & set(sink.message_ids())
    assert len(claimed_at_kill) <= CONNECTIONS
    proc = _start(env, "resume", slug, "--quiet")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()
    copies = sink.copies()
    assert set(copies) == set(emails), "no recipient is skipped"
    ids = sink.ids_by_rcpt()
    assert {next(iter(ids[r])) for r, n in copies.items() if n > 1} <= claimed_at_kill
    assert {r.state for r in _rows(sqlite_engine, settings)} == {DeliveryState.SENT}


def test_three_workers_on_postgresql_share_one_issue(settings, engine, sink):  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql":
        pytest.skip("workers share a ledger on PostgreSQL")
    emails, slug = _queue(settings, engine, sink)
    env = _env(settings, sink, BULLETIN_SMTP_RATE="400", BULLETIN_SMTP_CONNECTIONS="2")
    workers = [_start(env, "worker", "--poll", "0.2") for _ in range(3)]
    try:
        while sink.count() < N and all(w.poll() is None for w in workers):
            time.sleep(0.05)
        _settle(sink)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            _, err = w.communicate(timeout=60)
            assert w.returncode == 0, err.decode()
    assert sink.copies() == {e: 1 for e in emails}
    rows = _rows(engine, settings)
    assert {r.state for r in rows} == {DeliveryState.SENT}
    assert len({r.claimed_by for r in rows}) == 3, "every worker took a share"
