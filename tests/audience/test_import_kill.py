"""A real crash: `bulletin subscribers import` killed with SIGKILL mid-file leaves only whole batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from bulletin.db import make_engine, session_scope
from bulletin.models import Subscriber, SubscriberEvent, Subscription

pytestmark = pytest.mark.slow


def _counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return tuple(s.exec(select(func.count()).select_from(m)).one() for m in (Subscriber, Subscription, SubscriberEvent))


def test_killing_an_import_mid_file_leaves_no_half_written_subscriber(workspace, db_url, tmp_path):
    engine = make_engine(db_url)
    big = tmp_path / "big.csv"
    with big.open("w") as fh:
        fh.write("email,name,lists\n")
        for i in range(40_000):
            fh.write(f"k{i}@example.org,K {i},shared-services;finance\n")
    env = {**os.environ, "BULLETIN_DATABASE_URL": db_url}
    cli = [sys.executable, "-m", "bulletin", "-w", str(workspace)]
    subprocess.run([*cli, "lists", "sync"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*cli, "subscribers", "import", str(big), "--batch-size", "500", "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and _counts(engine)[0] == 0:  # wait for the first committed batch
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    subscribers, subscriptions, events = _counts(engine)
    assert 0 < subscribers < 40_000 and subscribers % 500 == 0  # killed mid-file, on a batch boundary
    assert subscriptions == events == 2 * subscribers
    with session_scope(engine) as s:
        orphans = s.exec(select(func.count()).select_from(Subscriber).where(
            ~Subscriber.id.in_(select(Subscription.subscriber_id)))).one()
    assert orphans == 0
    engine.dispose()
