"""The delivery ledger: every SQL statement about sends and deliveries lives here, but for
the reads of `bulletin status` (an issue's sends, a send's state, the last minute's rate,
the commonest errors): those are in `status.py`, so that `status` loads without this
module's imports (the audience's `sendable` and, through it, the audience stage); and for
the sent marks of the hot path, in driver SQL: `sent.SentWriter`.

One row per (issue, subscriber). A row is committed as claimed before its SMTP
transaction and as sent only after the server's 250, so after any stop the rows
still open are exactly the ones left to send. The claim itself (`FOR UPDATE SKIP
LOCKED` on PostgreSQL, the SQLite write lock on the embedded default) is in
`claims`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from bulletin.config import Settings
from bulletin.delivery.claims import Claimed as Claimed  # re-exported: the claim lives in `claims`
from bulletin.delivery.claims import claim as claim
from bulletin.delivery.claims import recipients as recipients
from bulletin.delivery.claims import release_stale_claims as release_stale_claims
from bulletin.delivery.claims import renew_claims as renew_claims
from bulletin.delivery.claims import unclaim as unclaim
from bulletin.delivery.claims import worker_id as worker_id
from bulletin.models import DERIVED_MESSAGE_ID, Delivery, Send, utcnow
from bulletin.statuses import DeliveryState, SendStatus

D = DeliveryState


# Sends --------------------------------------------------------------------------------------------


def open_send(session: Session, issue_id: int, list_id: int, scheduled_at: datetime | None = None) -> Send:
    """The unfinished send of this issue to this list, or a new one: a second `send` tops it up."""
    stmt = select(Send).where(Send.issue_id == issue_id, Send.list_id == list_id,
                              Send.status.not_in(SendStatus.FINISHED)).order_by(Send.id.desc())
    send = session.exec(stmt).first()
    status = SendStatus.SCHEDULED if scheduled_at else SendStatus.QUEUED
    if send is None:
        send = Send(issue_id=issue_id, list_id=list_id, status=status, scheduled_at=scheduled_at)
    elif scheduled_at is not None or send.status in (SendStatus.SCHEDULED, SendStatus.PAUSED):
        send.status, send.scheduled_at = status, scheduled_at  # `send` without --at means now
        send.pause_reason = send.pause_stage = None
    session.add(send)
    session.flush()
    return send


def set_status(session: Session, send_id: int, status: str, *, only_from: Iterable[str] | None = None) -> bool:
    stmt = update(Send).where(Send.id == send_id).values(status=status)
    if only_from is not None:
        stmt = stmt.where(Send.status.in_(list(only_from)))
    if status == SendStatus.SENDING:
        stmt = stmt.values(started_at=func.coalesce(Send.started_at, utcnow()))
    if status in (SendStatus.QUEUED, SendStatus.SCHEDULED, SendStatus.CANCELLED):
        stmt = stmt.values(pause_reason=None, pause_stage=None)
    if status in SendStatus.FINISHED:
        stmt = stmt.values(finished_at=utcnow())
    return bool(session.execute(stmt).rowcount)


def due_sends(session: Session, now: datetime | None = None) -> list[Send]:
    """Sends a worker should work on: queued or sending, and scheduled ones whose time has come."""
    now = now or utcnow()
    session.execute(update(Send).where(Send.status == SendStatus.SCHEDULED, Send.scheduled_at <= now)
                    .values(status=SendStatus.QUEUED))
    stmt = select(Send).where(Send.status.in_(SendStatus.RUNNABLE)).order_by(Send.id)
    return list(session.exec(stmt).all())


def cancel_send(session: Session, send_id: int) -> int:
    """Cancel a send: open rows become cancelled; rows being sent right now finish."""
    set_status(session, send_id, SendStatus.CANCELLED)
    stmt = (update(Delivery).where(Delivery.send_id == send_id, Delivery.state.in_((D.QUEUED, D.DEFERRED)))
            .values(state=D.CANCELLED, next_attempt_at=None))
    return int(session.execute(stmt).rowcount or 0)


# Rows ---------------------------------------------------------------------------------------------


def already_queued(session: Session, issue_id: int) -> set[int]:
    """Subscribers who have a row for this issue (whatever list): they never get a second one."""
    stmt = select(Delivery.subscriber_id).where(Delivery.issue_id == issue_id)
    return set(session.exec(stmt).all())


def enqueue_chosen(session: Session, send: Send, subscriber_ids: Iterable[int], deadline: datetime,
                   segment: str) -> int:
    """Queue rows for subscribers a segment chose (the caller left out those who have one); each
    row records the segment, for `report` by segment."""
    now = utcnow()
    batch = [{"issue_id": send.issue_id, "subscriber_id": sid, "send_id": send.id, "segment": segment,
              "state": D.QUEUED, "message_id": DERIVED_MESSAGE_ID, "attempts": 0, "deadline": deadline,
              "created_at": now}
             for sid in subscriber_ids]
    for start in range(0, len(batch), 5000):
        session.execute(insert(Delivery), batch[start:start + 5000])
    return len(batch)


def open_count(session: Session, send_id: int) -> int:
    stmt = select(func.count()).select_from(Delivery).where(
        Delivery.send_id == send_id, Delivery.state.in_(D.OPEN))
    return int(session.exec(stmt).one())


def queued_count(session: Session, send_id: int) -> int:
    stmt = select(func.count()).select_from(Delivery).where(Delivery.send_id == send_id, Delivery.state == D.QUEUED)
    return int(session.exec(stmt).one())


def claimants(session: Session, send_id: int) -> dict[str, int]:
    """Who holds claimed rows of the send (worker id: rows), so a wait for them can name them."""
    stmt = select(Delivery.claimed_by, func.count()).where(
        Delivery.send_id == send_id, Delivery.state == D.CLAIMED).group_by(Delivery.claimed_by)
    return {str(by): int(n) for by, n in session.exec(stmt).all()}


def next_retry_at(session: Session, send_id: int) -> datetime | None:
    stmt = select(func.min(Delivery.next_attempt_at)).where(
        Delivery.send_id == send_id, Delivery.state == D.DEFERRED)
    value = session.exec(stmt).one()
    return value if value else None


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed row; written by the engine's single ledger writer.

    `kind` is the messenger's verdict (faults.RECIPIENT, TRANSPORT, TEMPORARY,
    UNKNOWN; empty for a 250) and `reason` the one-line account of a refusal.
    """

    row: Claimed
    ok: bool
    code: int
    detail: str
    permanent: bool
    kind: str = ""
    stage: str = ""
    reason: str = ""


def record_outcomes(session: Session, outcomes: list[Outcome], *, issue_id: int, list_id: int,
                    worker: str, retry_base: float, retry_max: float, settings: Settings) -> None:
    """Mark rows sent / deferred / failed / unknown / queued again in one transaction.

    Only a recipient's own refusal is bounce evidence; a relay's refusal puts the
    row back in the queue and never touches the subscription.
    """
    from bulletin.messenger import faults

    now = utcnow()
    sent = [o for o in outcomes if o.ok]
    if sent:
        mark_sent(session.connection(), [(o.row.delivery_id, o.code) for o in sent], now)
    for o in outcomes:
        if o.ok:
            continue
        detail = (o.reason or o.detail)[:500]
        where = update(Delivery).where(Delivery.id == o.row.delivery_id)
        if o.kind == faults.TRANSPORT:
            session.execute(where.values(state=D.QUEUED, claimed_by=None, attempts=Delivery.attempts - 1,
                                         smtp_code=o.code, last_error=detail))
            continue
        if o.kind == faults.UNKNOWN:
            session.execute(where.values(state=D.UNKNOWN, claimed_by=None, smtp_code=o.code, last_error=detail))
            continue
        if o.kind == faults.RECIPIENT:
            _fail(session, settings, o, issue_id, worker, detail, permanent=o.permanent)
            continue
        wait = retry_wait(o.row.attempts, retry_base, retry_max)
        retry_at = now + timedelta(seconds=wait)
        if o.row.deadline is not None and retry_at > o.row.deadline:
            _fail(session, settings, o, issue_id, worker, f"gave up at deadline: {detail}", permanent=False)
            continue
        session.execute(where.values(state=D.DEFERRED, next_attempt_at=retry_at, smtp_code=o.code,
                                     last_error=detail))


def retry_wait(attempts: int, base: float, ceiling: float) -> float:
    """Seconds before the next try: doubling from `base`, never past `ceiling`.

    The exponent is capped first: `2 ** attempts` overflows a float after about a
    thousand tries of one row (a short `retry_base` and a long deadline get there).
    """
    return min(base * 2.0 ** min(max(attempts - 1, 0), 64), ceiling)


def pause_send(session: Session, send_id: int, reason: str, stage: str) -> bool:
    """The circuit breaker: stop claiming, keep why and where; `resume` clears it."""
    stmt = (update(Send).where(Send.id == send_id, Send.status.in_(SendStatus.RUNNABLE))
            .values(status=SendStatus.PAUSED, pause_reason=reason[:500], pause_stage=stage[:16]))
    return bool(session.execute(stmt).rowcount)


def requeue_unknown(session: Session, send_id: int) -> int:
    """`resume --resend-unknown`: rows whose fate is unknown go out again, with their own Message-ID."""
    stmt = (update(Delivery).where(Delivery.send_id == send_id, Delivery.state == D.UNKNOWN)
            .values(state=D.QUEUED, claimed_by=None, next_attempt_at=None))
    return int(session.execute(stmt).rowcount or 0)


_SENT = Delivery.__table__.update().where(Delivery.__table__.c.id == bindparam("did")).values(  # type: ignore[attr-defined]
    state=D.SENT, sent_at=bindparam("at"), smtp_code=bindparam("code"), last_error=None)


def mark_sent(conn: Connection, rows: list[tuple[int, int]], at: datetime) -> None:
    """The hot path (one call per group of 250s): Core executemany, no ORM bookkeeping."""
    conn.execute(_SENT, [{"did": did, "code": code, "at": at} for did, code in rows])


def _fail(session: Session, settings: Settings, o: Outcome, issue_id: int, worker: str, detail: str, *,
          permanent: bool) -> None:
    """The row failed for good; the evidence goes through the one bounce policy inbound bounces use."""
    from bulletin.audience.bounces import BouncePolicy, record_bounce

    session.execute(update(Delivery).where(Delivery.id == o.row.delivery_id).values(
        state=D.FAILED, smtp_code=o.code, last_error=detail, next_attempt_at=None, claimed_by=None))
    # Our own relay refused the recipient at RCPT (or we gave up at the deadline): authenticated evidence.
    record_bounce(session, o.row.subscriber_id, permanent=permanent, source="delivery", actor=worker,
                  policy=BouncePolicy.from_settings(settings), issue_id=issue_id,
                  delivery_id=o.row.delivery_id, status_code=str(o.code or ""), diagnostic=detail)
