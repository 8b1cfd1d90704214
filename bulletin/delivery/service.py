"""What the `send`, `status`, `pause`, `resume`, `cancel` and `worker` commands call.

Each function is one stage operation over an explicit engine and settings (in
that order, like every stage); the CLI only parses and prints. These are the
delivery stage's engines: each opens and commits its own transactions, because
a send commits every claim and every 250 as it goes (invariant: the ledger is
the truth after any stop) and queueing must commit before anything is sent.
The short state changes (pause, cancel, resume) and `issue_status` take the
caller's Session and never commit. Queuing checks every recipient before a single row is
committed, so a bad address or template stops the send before the first message.

`issue_status` and `IssueStatus` live in `status` (a read must not load the
send engine, which importing this module does) and are re-exported here for
the callers that reach them through `service`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin.config import Settings
from bulletin.db import refresh_statistics, session_scope, settle_bulk_rows
from bulletin.delivery import ledger
from bulletin.delivery.engine import ProgressFn, SendOptions, Tally, make_skeleton, run_send
from bulletin.delivery.issues import compiled_of, publish_issue
from bulletin.delivery.message import OutgoingMessage, RecipientRow, check_recipient, check_slots
from bulletin.delivery.status import IssueStatus as IssueStatus  # re-exported: see the docstring
from bulletin.delivery.status import issue_sends
from bulletin.delivery.status import issue_status as issue_status
from bulletin.errors import DeliveryError
from bulletin.logs import log_event
from bulletin.messenger import Transport, deliver, make_transport
from bulletin.models import Send, id_of, utcnow
from bulletin.render.compiled import Compiled
from bulletin.statuses import SendStatus

if TYPE_CHECKING:
    from bulletin.audience.segments import Segment


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


def _recipients(session, list_id: int, issue_id: int,  # type: ignore[no-untyped-def]
                segment: Segment | None = None) -> tuple[list[RecipientRow], int]:
    from bulletin.audience.segments import segment_members
    from bulletin.audience.subscribers import confirmed_subscribers

    done = ledger.already_queued(session, issue_id)
    rows, already = [], 0
    people = segment_members(session, segment) if segment else confirmed_subscribers(session, list_id)
    for sid, email, name in people:
        if sid in done:
            already += 1
        else:
            rows.append(RecipientRow(sid, email, name))
    return rows, already


def queue_issue(engine: Engine, settings: Settings, compiled: Compiled, list_slug: str, *,
                at: datetime | None = None, segment: Segment | None = None) -> Queued:
    """Publish the issue and queue one row per confirmed subscriber (of `segment`, if given) who has not had it."""
    from bulletin.delivery.queueing import ANALYZE_AFTER

    queued = _queue(engine, settings, compiled, list_slug, at=at, segment=segment)
    if queued.new_rows >= ANALYZE_AFTER:
        settle_bulk_rows(engine, "delivery")  # vacuumed and analyzed before any worker claims (see there)
    elif queued.new_rows:
        refresh_statistics(engine, "delivery")  # before any worker plans a claim on the new rows
    return queued


def _queue(engine: Engine, settings: Settings, compiled: Compiled, list_slug: str, *,
           at: datetime | None, segment: Segment | None) -> Queued:
    from bulletin.audience.subscribers import get_list
    from bulletin.delivery import queueing
    from bulletin.delivery.retention import refuse_if_compacted

    check_slots(compiled)
    with session_scope(engine) as session:
        record = publish_issue(session, compiled)
        mlist = get_list(session, list_slug)
        issue_id, list_id = id_of(record), id_of(mlist)
        refuse_if_compacted(session, issue_id, compiled.slug)
        skeleton = make_skeleton(settings, compiled, mlist, issue_id)
        deadline = utcnow() + timedelta(hours=settings.defer_deadline_hours)
        if segment is not None:  # a segment is a subset: chosen in SQL, then written with its name
            rows, already = _recipients(session, list_id, issue_id, segment)
            for row in rows:
                check_recipient(row)
            if rows:
                skeleton.build(_with_reader(session, rows[0], compiled, list_id))  # proves the templates fill
            send = ledger.open_send(session, issue_id, list_id, at)
            new = ledger.enqueue_chosen(session, send, [r.subscriber_id for r in rows], deadline, segment.name)
            return Queued(id_of(send), issue_id, list_slug, new, already, at)
        first = queueing.first_recipient(session, list_id, issue_id)
        if first is not None:
            check_recipient(first)
            skeleton.build(_with_reader(session, first, compiled, list_id))  # proves the templates fill
        already = queueing.already_count(session, list_id, issue_id)
        send = ledger.open_send(session, issue_id, list_id, at)
        new = queueing.queue_rows(session, send_id=id_of(send), list_id=list_id,
                                  issue_id=issue_id, deadline=deadline)
        return Queued(id_of(send), issue_id, list_slug, new, already, at)


def _with_reader(session, row: RecipientRow, compiled: Compiled, list_id: int) -> RecipientRow:  # type: ignore[no-untyped-def]
    """`row` with its Reader when the issue has targeted blocks (so a proof shows what they will get)."""
    if not compiled.targeted:
        return row
    from bulletin.audience.targeting import readers_for

    return replace(row, reader=readers_for(session, [row.subscriber_id], list_id).get(row.subscriber_id))


def dry_run(engine: Engine, settings: Settings, compiled: Compiled, list_slug: str, *,
            segment: Segment | None = None) -> DryRun:
    """Counts and the first message, with nothing written."""
    from bulletin.audience.subscribers import get_list

    check_slots(compiled)
    with session_scope(engine) as session:
        mlist = get_list(session, list_slug)
        record_id = _issue_id_or_zero(session, compiled.slug)
        rows, already = _recipients(session, id_of(mlist), record_id, segment)
        for row in rows:
            check_recipient(row)
        skeleton = make_skeleton(settings, compiled, mlist, record_id)
        first = skeleton.build(_with_reader(session, rows[0], compiled, id_of(mlist))) if rows else None
        session.rollback()
    return DryRun(len(rows), already, first)


def _issue_id_or_zero(session, slug: str) -> int:  # type: ignore[no-untyped-def]
    from bulletin.models import IssueRecord

    found = session.exec(select(IssueRecord.id).where(IssueRecord.slug == slug)).first()
    return int(found or 0)


def test_send(engine: Engine, settings: Settings, compiled: Compiled, list_slug: str, addresses: list[str],
              transport: Transport | None = None) -> list[tuple[str, bool, str]]:
    """Proofs marked [TEST] to the given addresses; nothing is recorded in the ledger."""
    from bulletin.audience.addresses import normalise_address
    from bulletin.audience.subscribers import get_list

    with session_scope(engine) as session:
        record = publish_issue(session, compiled)
        mlist = get_list(session, list_slug)
        skeleton = make_skeleton(settings, compiled, mlist, id_of(record), test=True)
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


def send_queued(engine: Engine, settings: Settings, send_ids: list[int], *, transport: Transport | None = None,
                options: SendOptions | None = None, stop: threading.Event | None = None,
                progress: ProgressFn | None = None, processes: int = 1) -> Tally:
    """Run the given sends to the end (or until stopped), in this process and `processes - 1` forked ones."""
    if processes > 1 and transport is None:
        from bulletin.delivery.processes import processes_for, send_in_processes

        processes = processes_for(settings, processes)
        if processes > 1:
            return send_in_processes(engine, settings, send_ids, send_queued, processes=processes, options=options,
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
            run_send(engine, settings, send, transport, options=options, stop=stop, progress=progress,
                     tally=tally)
            if stop is not None and stop.is_set():
                break
    finally:
        transport.close()
    return tally


def pause_issue(session: Session, slug: str) -> int:
    """Pause every running or waiting send of the issue; returns how many changed (the caller commits)."""
    _, sends = issue_sends(session, slug)
    return sum(ledger.set_status(session, id_of(s), SendStatus.PAUSED,
                                 only_from=(SendStatus.QUEUED, SendStatus.SENDING, SendStatus.SCHEDULED))
               for s in sends)


def cancel_issue(session: Session, slug: str) -> int:
    """Cancel every unfinished send of the issue; returns the unsent messages cancelled (the caller commits)."""
    _, sends = issue_sends(session, slug)
    return sum(ledger.cancel_send(session, id_of(s)) for s in sends if s.status != SendStatus.DONE)


def resume_issue(session: Session, slug: str, *, resend_unknown: bool = False) -> list[int]:
    """Make every unfinished send of the issue runnable again; returns their ids (the caller commits).

    Rows left `unknown` (the connection broke after the final dot) go out again only
    with `resend_unknown`: the relay may already have delivered them.
    """
    _, sends = issue_sends(session, slug)
    ids = []
    for s in sends:
        if resend_unknown and s.status != SendStatus.CANCELLED:
            ledger.requeue_unknown(session, id_of(s))
        if s.status in SendStatus.FINISHED and not ledger.open_count(session, id_of(s)):
            continue
        if s.status == SendStatus.CANCELLED:
            continue
        if s.scheduled_at is not None and s.scheduled_at > utcnow():
            # A paused scheduled send goes back to waiting for its time.
            ledger.set_status(session, id_of(s), SendStatus.SCHEDULED, only_from=(SendStatus.PAUSED,))
            continue
        ledger.set_status(session, id_of(s), SendStatus.QUEUED,
                          only_from=(SendStatus.PAUSED, SendStatus.SENDING, SendStatus.DONE))
        ids.append(id_of(s))
    return ids


def run_worker(engine: Engine, settings: Settings, *, once: bool = False, poll: float = 2.0,
               stop: threading.Event | None = None, options: SendOptions | None = None,
               transport: Transport | None = None) -> Tally:
    """Work on every due send until stopped (or, with `once`, until nothing is claimable)."""
    stop = stop or threading.Event()
    transport = transport or make_transport(settings)
    options = replace(options or SendOptions(), wait_for_held=False)  # the poll comes back for them
    tally = Tally()
    try:
        while not stop.is_set():
            with session_scope(engine) as session:
                due = ledger.due_sends(session)
            for send in due:
                if send.started_at is None and not _passes_checks(engine, send):
                    continue
                ledger.release_stale_claims(engine, id_of(send))
                run_send(engine, settings, send, transport, options=options, stop=stop, tally=tally)
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
            ledger.pause_send(session, id_of(send), str(exc), "check")
            log_event("bulletin.delivery", "send.paused", send_id=send.id, stage="check", reason=str(exc))
            return False
    return True


def send_targets(settings: Settings, compiled: Compiled, list_slug: str | None,
                 segment_names: list[str] | None) -> list[tuple[str, Segment | None]]:
    """(list slug, segment) pairs a `send` queues: --segment, else --list, else the issue's `segments`."""
    from bulletin.audience.segments import find_segment, load_segments, segments_file

    names = list(segment_names or ()) or ([] if list_slug else list(compiled.segments))
    if not names:
        return [(require_list(list_slug), None)]
    path = segments_file(settings.path(settings.subscribers_dir))
    known = load_segments(path)
    out: list[tuple[str, Segment | None]] = []
    for name in names:
        segment = find_segment(known, name, path)
        if list_slug and segment.list != list_slug:
            raise DeliveryError(f"segment {name!r} is part of list {segment.list!r}, not {list_slug!r}",
                                where=str(path))
        out.append((segment.list, segment))
    return out


def require_list(list_slug: str | None) -> str:
    if not list_slug:
        raise DeliveryError("say which list to send to with --list SLUG (or a segment with --segment NAME)")
    return list_slug
