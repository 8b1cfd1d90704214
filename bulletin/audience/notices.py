"""The notice queue: single mails the stages ask for, sent later by the notice sender.

A web signup (or a data request, or staff answering feedback) commits its row
here in the same transaction as the change itself, so the response never
waits on a mail server, a crash loses nothing, and a change that fails to
commit sends nothing: the mail leaves only after the commit that asked for it.
`send_due` drains the queue; the web app runs it in the background of every
worker and `bulletin notices send` runs it from cron or a service. Several senders may run at once: a row is claimed
(state `sending`) in its own short transaction before it is sent, and a claim
older than `STALE_CLAIM` is taken to be a crashed sender's and released, so
at worst a notice goes twice, never not at all. The outcomes of a batch are
written in one transaction (a crash before it resends the batch, with new
Message-IDs: these are person-to-person notices, not ledger deliveries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.errors import AddressError, DeliveryError
from bulletin.messenger import (
    Notice,
    Transport,
    bounce_address,
    deliver,
    make_transport,
    simple_message,
)
from bulletin.models import NoticeState, QueuedNotice, utcnow

STALE_CLAIM = timedelta(minutes=10)
MAX_ATTEMPTS = 8  # about 4 hours of retries with the back-off below


@dataclass
class SendReport:
    sent: int = 0
    deferred: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.deferred + self.failed


def queue_notice(session: Session, notice: Notice, *, kind: str, subscriber_id: int | None,
                 envelope_from: str | None = None) -> QueuedNotice:
    """Add `notice` to the queue inside the caller's unit of work (committed with it or not at all).

    Its threading headers travel with it; `envelope_from` None means the bounce address.
    """
    row = QueuedNotice(subscriber_id=subscriber_id, kind=kind, to_addr=notice.to, from_addr=notice.from_addr,
                       reply_to=notice.reply_to, subject=notice.subject, text=notice.text,
                       in_reply_to=notice.in_reply_to, references=notice.references, envelope_from=envelope_from)
    session.add(row)
    return row


def forget_notices(session: Session, subscriber_id: int) -> None:
    """Drop every notice of a person being erased: they hold the address and signed links."""
    session.exec(delete(QueuedNotice).where(QueuedNotice.subscriber_id == subscriber_id))  # type: ignore[call-overload]


def pending_count(session: Session) -> int:
    rows = session.exec(select(QueuedNotice.id).where(QueuedNotice.state.in_(  # type: ignore[attr-defined]
        (NoticeState.QUEUED, NoticeState.SENDING)))).all()
    return len(rows)


def send_due(engine: Engine, settings: Settings, *, limit: int = 200,
             transport: Transport | None = None) -> SendReport:
    """Send up to `limit` due notices; a transport is opened only when there is something to send."""
    claimed = _claim(engine, limit)
    report = SendReport()
    if not claimed:
        return report
    own = transport is None
    transport = transport or make_transport(settings)
    outcomes: list[tuple[int, bool, bool, str, str]] = []
    try:
        for row in claimed:
            outcomes.append(_send_one(settings, transport, row))
    finally:
        if own:
            transport.close()
        _record(engine, outcomes, report)  # one write for the batch: SQLite writers queue for the lock
    return report


def _claim(engine: Engine, limit: int) -> list[QueuedNotice]:
    now = utcnow()
    due = or_(QueuedNotice.next_attempt_at.is_(None), QueuedNotice.next_attempt_at <= now)  # type: ignore[union-attr,operator]
    with session_scope(engine) as session:
        session.exec(update(QueuedNotice).where(  # type: ignore[call-overload]
            QueuedNotice.state == NoticeState.SENDING, QueuedNotice.claimed_at < now - STALE_CLAIM,  # type: ignore[operator]
        ).values(state=NoticeState.QUEUED))
        rows = list(session.exec(
            select(QueuedNotice).where(QueuedNotice.state == NoticeState.QUEUED, due)
            .order_by(QueuedNotice.id).limit(limit).with_for_update(skip_locked=True)  # type: ignore[arg-type]
        ).all())
        for row in rows:
            row.state, row.claimed_at = NoticeState.SENDING, now
            session.add(row)
    return rows


def _send_one(settings: Settings, transport: Transport, row: QueuedNotice) -> tuple[int, bool, bool, str, str]:
    """(row id, sent, permanent failure, error, Message-ID) of one attempt."""
    message_id = ""
    try:
        data, message_id = simple_message(settings, to=row.to_addr, subject=row.subject, text=row.text,
                                          from_addr=row.from_addr, reply_to=row.reply_to,
                                          in_reply_to=row.in_reply_to, references=row.references)
        envelope = row.envelope_from or bounce_address(settings)
        result = deliver(settings, envelope, [row.to_addr], data, message_id, transport=transport)
        return row.id or 0, result.ok, result.permanent, f"{result.code} {result.detail}", message_id
    except (OSError, DeliveryError) as exc:  # the server or the folder could not be reached: retry
        return row.id or 0, False, False, str(exc), message_id
    except (ValueError, UnicodeError, AddressError) as exc:  # the message cannot be built: retrying will not help
        return row.id or 0, False, True, str(exc), message_id


def _record(engine: Engine, outcomes: list[tuple[int, bool, bool, str, str]], report: SendReport) -> None:
    if not outcomes:
        return
    now = utcnow()
    with session_scope(engine) as session:
        for row_id, ok, permanent, error, message_id in outcomes:
            fresh = session.get(QueuedNotice, row_id)
            if fresh is None:  # erased while we were sending
                continue
            fresh.attempts += 1
            if ok:
                fresh.state, fresh.sent_at, fresh.message_id, fresh.text = NoticeState.SENT, now, message_id, ""
                fresh.last_error = None
                report.sent += 1
            elif permanent or fresh.attempts >= MAX_ATTEMPTS:
                fresh.state, fresh.last_error, fresh.text = NoticeState.FAILED, error[:500], ""
                report.failed += 1
            else:
                fresh.state, fresh.last_error = NoticeState.QUEUED, error[:500]
                fresh.next_attempt_at = now + timedelta(minutes=2 ** fresh.attempts)
                report.deferred += 1
            session.add(fresh)
