"""The ledger mark overlaps the next message, but the relay never holds two unmarked messages of one sender.

A sender hands its outcome to the ledger writer and starts its next message at
once; the transport calls `before_commit` just before the final dot (or the
Maildir rename), which waits for that outcome's commit. These tests run the
real SMTP pool against an aiosmtpd sink and the real Maildir outbox.
"""

from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.delivery.engine import SendOptions
from bulletin.errors import DeliveryError
from bulletin.messenger import SMTPConfig
from bulletin.messenger.maildir import MaildirTransport
from bulletin.messenger.smtp import SMTPPool
from bulletin.models import Delivery
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled, smtp_settings

FAST = SendOptions(retry_base=0.01, retry_max=0.05, linger=30.0)


class _Refused(Exception):
    pass


def _refuse() -> None:
    raise _Refused("the ledger is gone")


def test_the_relay_takes_a_senders_next_message_only_once_its_previous_one_is_marked_sent(  # type: ignore[no-untyped-def]
        settings, engine, sink):
    s = smtp_settings(settings, sink, connections=3)
    emails = add_subscribers(engine, add_list(engine), 120)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    pool = SMTPPool(SMTPConfig.from_settings(s), connections=3)
    previous: dict[int, str] = {}  # sender thread -> recipient of its last message the relay took
    unmarked: list[str] = []
    unwaited: list[int] = []  # sender threads that sent without waiting for a commit

    def state_of(rcpt: str) -> str:
        with session_scope(engine) as session:
            from bulletin.models import Subscriber
            return session.exec(select(Delivery.state).join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                                .where(Subscriber.email == rcpt)).one()

    class Watching:
        """The real pool; at each final dot, checks the ledger holds this sender's previous message as sent."""

        concurrency = 3

        def send(self, envelope_from, recipients, message, message_id, *, before_commit=None, dot_free=False):  # type: ignore[no-untyped-def]
            me = threading.get_ident()

            if before_commit is None:
                unwaited.append(me)

            def checked() -> None:
                if before_commit is not None:
                    before_commit()
                if me in previous and state_of(previous[me]) != DeliveryState.SENT:
                    unmarked.append(previous[me])

            result = pool.send(envelope_from, recipients, message, message_id, before_commit=checked)
            previous[me] = recipients[0]
            return result

        def close(self) -> None:
            pool.close()

    tally = service.send_queued(engine, s, [queued.send_id], transport=Watching(), options=FAST)
    assert tally.sent == 120
    assert sink.copies() == {e: 1 for e in emails}
    assert unmarked == [], "a message went to the relay while its sender's previous one was not in the ledger"
    assert 1 <= len(unwaited) == len(set(unwaited)) <= 3, "only each sender's first message has nothing to wait for"


def test_a_refused_commit_drops_the_connection_before_the_dot_and_the_relay_keeps_nothing(settings, sink):  # type: ignore[no-untyped-def]
    s = smtp_settings(settings, sink, connections=1)
    pool = SMTPPool(SMTPConfig.from_settings(s), connections=1)
    try:
        with pytest.raises(_Refused):
            pool.send("b@news.example.org", ["one@example.org"], b"Subject: x\r\n\r\nbody\r\n", "<1@x>",
                      before_commit=_refuse)
        assert sink.count() == 0, "the message without its dot must not be delivered"
        # The pool's connection was dropped, not left mid-DATA: the next message goes through on a new one.
        result = pool.send("b@news.example.org", ["two@example.org"], b"Subject: y\r\n\r\nbody\r\n", "<2@x>",
                           before_commit=lambda: None)
        assert result.ok and list(sink.copies()) == ["two@example.org"]
    finally:
        pool.close()


def test_a_refused_commit_leaves_no_message_in_the_maildir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    box = MaildirTransport(tmp_path / "outbox", fsync=False)
    with pytest.raises(_Refused):
        box.send("b@news.example.org", ["one@example.org"], b"Subject: x\r\n\r\nbody\r\n", "<1@x>",
                 before_commit=_refuse)
    assert not any((tmp_path / "outbox" / "new").iterdir())
    assert not any((tmp_path / "outbox" / "tmp").iterdir()), "no half-written message is left behind"
    assert box.send("b@news.example.org", ["one@example.org"], b"Subject: x\r\n\r\nbody\r\n", "<1@x>",
                    before_commit=lambda: None).ok
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1


def test_a_ledger_that_fails_mid_send_stops_it_and_no_more_than_one_message_per_sender_is_unrecorded(  # type: ignore[no-untyped-def]
        settings, engine, sink, monkeypatch):
    from bulletin.delivery import sent

    s = smtp_settings(settings, sink, connections=2)
    add_subscribers(engine, add_list(engine), 200)
    queued = service.queue_issue(engine, s, make_compiled(), "shared-services")
    real_write = sent.SentWriter.write
    writes = {"n": 0}

    def failing_write(self, rows, at):  # type: ignore[no-untyped-def]
        writes["n"] += 1
        if writes["n"] > 20:
            raise OSError("disk full")
        return real_write(self, rows, at)

    monkeypatch.setattr(sent.SentWriter, "write", failing_write)
    with pytest.raises(DeliveryError, match="cannot write the ledger: disk full"):
        service.send_queued(engine, s, [queued.send_id], options=FAST)
    with session_scope(engine) as session:
        marked = {d.state: 0 for d in session.exec(select(Delivery)).all()}
        states = session.exec(select(Delivery.state)).all()
    for state in states:
        marked[state] += 1
    unrecorded = sink.count() - marked.get(DeliveryState.SENT, 0)
    assert 0 < unrecorded <= 2, f"{unrecorded} messages left with the relay but not marked (2 senders)"
    assert marked.get(DeliveryState.SENT, 0) >= 20


def test_the_ledger_writer_lets_every_waiter_go_once_committed_and_after_a_failure_makes_each_raise(  # type: ignore[no-untyped-def]
        settings, engine, monkeypatch):
    """The writer's hand-over: a commit's waiter returns once the row is marked (and again at once, as
    a transport's retry may call it twice); after the ledger fails, every waiter and `flush` raise
    instead of hanging, and `stop` still returns."""
    from bulletin.delivery import ledger, sent
    from bulletin.delivery.engine import Tally
    from bulletin.delivery.recorder import Recorder
    from bulletin.models import Send

    add_subscribers(engine, add_list(engine), 4)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    with session_scope(engine) as session:
        send = session.get(Send, queued.send_id)
    rows = ledger.claim(engine, queued.send_id, int(send.list_id), "test:1", 4)
    tally = Tally()
    writer = Recorder(settings, engine, send, FAST, tally)
    try:
        first = writer.submit(ledger.Outcome(rows[0], True, 250, "ok", False))
        first()
        first()
        with session_scope(engine) as session:
            assert session.get(Delivery, rows[0].delivery_id).state == DeliveryState.SENT
        monkeypatch.setattr(sent.SentWriter, "write", lambda self, r, at: (_ for _ in ()).throw(OSError("disk full")))
        waits = [writer.submit(ledger.Outcome(row, True, 250, "ok", False)) for row in rows[1:3]]
        for wait in waits:
            with pytest.raises(DeliveryError, match="disk full"):
                wait()
        with pytest.raises(DeliveryError, match="disk full"):
            writer.flush()
        with pytest.raises(DeliveryError, match="disk full"):
            writer.submit(ledger.Outcome(rows[3], True, 250, "ok", False))
    finally:
        stopper = threading.Thread(target=writer.stop)
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive(), "stop hung"
    assert tally.sent == 1
