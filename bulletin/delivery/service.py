"""What the `send`, `status`, `pause`, `resume`, `cancel` and `worker` commands call.

Each function is one stage operation over explicit settings and engine; the CLI
only parses and prints. Queuing checks every recipient before a single row is
committed, so a bad address or template stops the send before the first message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.delivery import ledger
from bulletin.delivery.engine import ProgressFn, SendOptions, Tally, make_skeleton, run_send
from bulletin.delivery.issues import compiled_of, get_issue, publish_issue
from bulletin.delivery.ledger import SendStatus
from bulletin.delivery.message import OutgoingMessage, RecipientRow, check_recipient, check_slots
from bulletin.errors import DeliveryError
from bulletin.logs import log_event
from bulletin.messenger import Transport, deliver, make_transport
from bulletin.models import Delivery, DeliveryState, Send, utcnow
from bulletin.render.compiled import Compiled


@dataclass(frozen=True)
class Queued:
    send_id: int
    issue_id: int
    list_slug: str
    new_rows: int
    already: int
    scheduled_at: datetime | None


@dataclass(frozen=True)
class DryRun:
    recipients: int
    already: int
    first: OutgoingMessage | None


@dataclass
class IssueStatus:
    issue: str
    sends: list[dict[str, object]]
    counts: dict[str, int]
    rate_per_minute: float
    errors: list[dict[str, object]] = field(default_factory=list)


def _recipients(session, list_id: int, issue_id: int) -> tuple[list[RecipientRow], int]:  # type: ignore[no-untyped-def]
    from bulletin.audience.subscribers import confirmed_subscribers

    done = ledger.already_queued(session, issue_id)
    rows, already = [], 0
    for sid, email, name in confirmed_subscribers(session, list_id):
        if sid in done:
            already += 1
        else:
            rows.append(RecipientRow(sid, email, name))
    return rows, already


def queue_issue(settings: Settings, engine: Engine, compiled: Compiled, list_slug: str, *,
                at: datetime | None = None) -> Queued:
    """Publish the issue and queue one row per confirmed subscriber who has not had it."""
    from bulletin.audience.subscribers import get_list

    check_slots(compiled)
    with session_scope(engine) as session:
        record = publish_issue(session, compiled)
        mlist = get_list(session, list_slug)
        rows, already = _recipients(session, int(mlist.id or 0), int(record.id or 0))
        for row in rows:
            check_recipient(row)
        skeleton = make_skeleton(settings, compiled, mlist, int(record.id or 0))
        if rows:
            skeleton.build(rows[0])  # proves the templates fill; the rest is proven by check_recipient
        send = ledger.open_send(session, int(record.id or 0), int(mlist.id or 0), at)
        deadline = utcnow() + timedelta(hours=settings.defer_deadline_hours)
        links = skeleton.links
        new = ledger.enqueue(session, send, ((r.subscriber_id, links.message_id(r.subscriber_id, int(record.id or 0)))
                                             for r in rows), deadline)
        return Queued(int(send.id or 0), int(record.id or 0), list_slug, new, already, at)


def dry_run(settings: Settings, engine: Engine, compiled: Compiled, list_slug: str) -> DryRun:
    """Counts and the first message, with nothing written."""
    from bulletin.audience.subscribers import get_list

    check_slots(compiled)
    with session_scope(engine) as session:
        mlist = get_list(session, list_slug)
        record_id = _issue_id_or_zero(session, compiled.slug)
        rows, already = _recipients(session, int(mlist.id or 0), record_id)
        for row in rows:
            check_recipient(row)
        skeleton = make_skeleton(settings, compiled, mlist, record_id)
        first = skeleton.build(rows[0]) if rows else None
        session.rollback()
    return DryRun(len(rows), already, first)


def _issue_id_or_zero(session, slug: str) -> int:  # type: ignore[no-untyped-def]
    from bulletin.models import IssueRecord

    found = session.exec(select(IssueRecord.id).where(IssueRecord.slug == slug)).first()
    return int(found or 0)


def test_send(settings: Settings, engine: Engine, compiled: Compiled, list_slug: str, addresses: list[str],
              transport: Transport | None = None) -> list[tuple[str, bool, str]]:
    """Proofs marked [TEST] to the given addresses; nothing is recorded in the ledger."""
    from bulletin.audience.addresses import normalise_address
    from bulletin.audience.subscribers import get_list

    with session_scope(engine) as session:
        record = publish_issue(session, compiled)
        mlist = get_list(session, list_slug)
        skeleton = make_skeleton(settings, compiled, mlist, int(record.id or 0), test=True)
    transport = transport or make_transport(settings)
    out = []
    try:
        for i, raw in enumerate(addresses):
            email = normalise_address(raw)
            # A proof gets its own Message-ID (before any DKIM signing), never a delivery's.
            mid = f"<test.{int(time.time() * 1000)}.{i}@{settings.sending_domain}>"
            msg = skeleton.build(RecipientRow(0, email, "Test recipient", mid))
            result = deliver(settings, msg.envelope_from, [email], msg.data, mid, transport=transport)
            out.append((email, result.ok, f"{result.code} {result.detail}"))
    finally:
        transport.close()
    return out


def send_queued(settings: Settings, engine: Engine, send_ids: list[int], *, transport: Transport | None = None,
                options: SendOptions | None = None, stop: threading.Event | None = None,
                progress: ProgressFn | None = None, processes: int = 1) -> Tally:
    """Run the given sends to the end (or until stopped), in this process and `processes - 1` forked ones."""
    if processes > 1 and transport is None:
        from bulletin.delivery.processes import send_in_processes

        return send_in_processes(settings, engine, send_ids, send_queued, processes=processes, options=options,
                                 stop=stop, progress=progress)
    transport = transport or make_transport(settings)
    tally = Tally()
    try:
        for send_id in send_ids:
            with session_scope(engine) as session:
                send = session.get(Send, send_id)
                if send is None or send.status not in SendStatus.RUNNABLE:
                    continue
            ledger.release_stale_claims(engine, send_id)
            run_send(settings, engine, send, transport, options=options, stop=stop, progress=progress,
                     tally=tally)
            if stop is not None and stop.is_set():
                break
    finally:
        transport.close()
    return tally


def _issue_sends(engine: Engine, slug: str) -> tuple[int, list[Send]]:
    with session_scope(engine) as session:
        record = get_issue(session, slug)
        return int(record.id or 0), ledger.require_send(session, int(record.id or 0))


def pause_issue(engine: Engine, slug: str) -> int:
    _, sends = _issue_sends(engine, slug)
    with session_scope(engine) as session:
        return sum(ledger.set_status(session, int(s.id or 0), SendStatus.PAUSED,
                                     only_from=(SendStatus.QUEUED, SendStatus.SENDING, SendStatus.SCHEDULED))
                   for s in sends)


def cancel_issue(engine: Engine, slug: str) -> int:
    _, sends = _issue_sends(engine, slug)
    with session_scope(engine) as session:
        return sum(ledger.cancel_send(session, int(s.id or 0)) for s in sends if s.status != SendStatus.DONE)


def resume_issue(engine: Engine, slug: str, *, resend_unknown: bool = False) -> list[int]:
    """Make every unfinished send of the issue runnable again; returns their ids.

    Rows left `unknown` (the connection broke after the final dot) go out again only
    with `resend_unknown`: the relay may already have delivered them.
    """
    _, sends = _issue_sends(engine, slug)
    ids = []
    with session_scope(engine) as session:
        for s in sends:
            if resend_unknown and s.status != SendStatus.CANCELLED:
                ledger.requeue_unknown(session, int(s.id or 0))
            if s.status in SendStatus.FINISHED and not ledger.open_count(session, int(s.id or 0)):
                continue
            if s.status == SendStatus.CANCELLED:
                continue
            if s.scheduled_at is not None and _aware(s.scheduled_at) > utcnow():
                # A paused scheduled send goes back to waiting for its time.
                ledger.set_status(session, int(s.id or 0), SendStatus.SCHEDULED, only_from=(SendStatus.PAUSED,))
                continue
            ledger.set_status(session, int(s.id or 0), SendStatus.QUEUED,
                              only_from=(SendStatus.PAUSED, SendStatus.SENDING, SendStatus.DONE))
            ids.append(int(s.id or 0))
    return ids


def issue_status(engine: Engine, slug: str) -> IssueStatus:
    issue_id, sends = _issue_sends(engine, slug)
    with session_scope(engine) as session:
        counts = ledger.state_counts(session, issue_id)
        since = utcnow() - timedelta(minutes=1)
        recent = session.exec(select(func.count()).select_from(Delivery).where(
            Delivery.issue_id == issue_id, Delivery.state == DeliveryState.SENT,
            Delivery.sent_at >= since)).one()
        errs = session.exec(select(Delivery.smtp_code, Delivery.last_error, func.count()).where(
            Delivery.issue_id == issue_id, Delivery.last_error.is_not(None)).group_by(
            Delivery.smtp_code, Delivery.last_error).order_by(func.count().desc()).limit(10)).all()
        listing = [{"send": s.id, "list_id": s.list_id, "status": ledger.send_status(session, int(s.id or 0)),
                    "scheduled_at": s.scheduled_at.isoformat() if s.scheduled_at else None,
                    "pause_reason": s.pause_reason, "pause_stage": s.pause_stage} for s in sends]
    return IssueStatus(slug, listing, counts, float(recent),
                       [{"code": c, "error": e, "count": int(n)} for c, e, n in errs])


def run_worker(settings: Settings, engine: Engine, *, once: bool = False, poll: float = 2.0,
               stop: threading.Event | None = None, options: SendOptions | None = None,
               transport: Transport | None = None) -> Tally:
    """Work on every due send until stopped (or, with `once`, until nothing is claimable)."""
    stop = stop or threading.Event()
    transport = transport or make_transport(settings)
    tally = Tally()
    try:
        while not stop.is_set():
            with session_scope(engine) as session:
                due = ledger.due_sends(session)
            for send in due:
                if send.started_at is None and not _passes_checks(engine, send):
                    continue
                ledger.release_stale_claims(engine, int(send.id or 0))
                run_send(settings, engine, send, transport, options=options, stop=stop, tally=tally)
            if once:
                break
            stop.wait(poll)
    finally:
        transport.close()
    return tally


def paused_reasons(engine: Engine, send_ids: list[int]) -> list[str]:
    """Why the circuit breaker paused any of these sends (empty when none was paused by it)."""
    with session_scope(engine) as session:
        rows = session.exec(select(Send.pause_reason).where(
            Send.id.in_(send_ids), Send.status == SendStatus.PAUSED, Send.pause_reason.is_not(None))).all()
    return [str(r) for r in rows]


def _passes_checks(engine: Engine, send: Send) -> bool:
    """A worker runs `bulletin check` before it starts an issue; a failing issue is paused with the reason."""
    from bulletin.delivery.preflight import require_checks
    from bulletin.errors import CheckFailed
    from bulletin.models import IssueRecord

    with session_scope(engine) as session:
        record = session.get(IssueRecord, send.issue_id)
        if record is None:
            return False
        try:
            require_checks(compiled_of(record), record.slug)
        except CheckFailed as exc:
            ledger.pause_send(session, int(send.id or 0), str(exc), "check")
            log_event("bulletin.delivery", "send.paused", send_id=send.id, stage="check", reason=str(exc))
            return False
    return True


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def compiled_for(engine: Engine, slug: str) -> Compiled:
    with session_scope(engine) as session:
        return compiled_of(get_issue(session, slug))


def require_list(list_slug: str | None) -> str:
    if not list_slug:
        raise DeliveryError("say which list to send to with --list SLUG")
    return list_slug
