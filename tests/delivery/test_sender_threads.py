"""A sender thread must not die: `drain` waits at a barrier that every sender takes once."""

from __future__ import annotations

import threading

from sqlmodel import select

from bulletin.db import session_scope
from bulletin.delivery import service
from bulletin.delivery.engine import SendOptions
from bulletin.messenger.maildir import MaildirTransport
from bulletin.models import Delivery
from bulletin.statuses import DeliveryState
from tests.delivery.conftest import add_list, add_subscribers, make_compiled

FAST = SendOptions(retry_base=0.01, retry_max=0.05, linger=5.0)


def test_a_progress_callback_that_fails_in_a_sender_stops_the_send_instead_of_hanging_it(  # type: ignore[no-untyped-def]
        settings, engine, tmp_path):
    """A progress bar that raises in a sender thread (found by review: the thread died, and the next
    `drain` waited for it for ever, its claims held). Now the error stops the send, and every row is
    sent or given back: none is left claimed."""
    add_subscribers(engine, add_list(engine), 20)
    queued = service.queue_issue(engine, settings, make_compiled(), "shared-services")
    box = MaildirTransport(tmp_path / "outbox", fsync=False)

    class Two:
        concurrency = 2

        def send(self, *a, **kw):  # type: ignore[no-untyped-def]
            return box.send(*a, **kw)

        def close(self) -> None:
            pass

    fired: list[int] = []

    def progress(tally) -> None:  # type: ignore[no-untyped-def]
        if threading.current_thread().name.startswith("sender-") and not fired:
            fired.append(1)
            raise RuntimeError("progress bar broke")

    out: list[object] = []

    def run() -> None:
        try:
            out.append(service.send_queued(engine, settings, [queued.send_id], transport=Two(), options=FAST,
                                           progress=progress))
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the send hung: drain waited for a sender thread that died"
    assert isinstance(out[0], RuntimeError) and "progress bar broke" in str(out[0])
    with session_scope(engine) as session:
        states = set(session.exec(select(Delivery.state)).all())
    assert DeliveryState.CLAIMED not in states and states <= {DeliveryState.SENT, DeliveryState.QUEUED}
    assert len(list((tmp_path / "outbox" / "new").iterdir())) >= 1
