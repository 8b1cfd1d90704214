"""Ledger retention: `bulletin db compact --older-than 90d`.

Without it the ledger grows by one row per subscriber per issue, forever. Sent
rows of an issue whose last message went out before the cut-off (and that has
nothing left to send) are folded into per-issue tallies (`delivery_tally`:
count per state, and for sent rows per second sent, which is what the report's
figures and timeline read), per-person facts (`subscriber_delivery`: last
issue sent, how many were compacted) and per send how many of its rows went
(`send.compacted_sent`, which keeps a cancelled, part-sent issue in the public
archive). Bounce rows, the evidence of failed
mail, are kept; they only lose their link to the deleted row. Failed,
cancelled and deferred rows stay as they are: they are few and carry the
errors staff look at. An issue sent to segments is left whole (the report
splits it by segment; a tally has none). Each issue is compacted in one
transaction that checks it again (REPEATABLE READ on PostgreSQL).

A compacted issue cannot be queued again (who had it is no longer known per
person), and `report` shows identical figures before and after (tested).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, insert, literal, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from bulletin.db import session_scope
from bulletin.errors import ConfigError, StateError
from bulletin.logs import log_event
from bulletin.models import (
    Bounce,
    Delivery,
    DeliveryTally,
    IssueRecord,
    SubscriberDelivery,
    utcnow,
)
from bulletin.report.sql import epoch
from bulletin.statuses import DeliveryState

D = DeliveryState
_AGE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")
_UNITS = {"h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Compacted:
    issue_id: int
    slug: str
    rows: int


MAX_AGE = timedelta(days=100 * 366)  # older than any ledger; past it a date overflows


def parse_age(value: str) -> timedelta:
    """`90d`, `12w`, `36h` -> timedelta; anything else is a ConfigError naming the value."""
    match = _AGE.match(value)
    if not match:
        raise ConfigError(f"--older-than {value!r}: give a number and a unit, e.g. 90d, 12w or 36h")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_AGE.total_seconds():
        raise ConfigError(f"--older-than {value!r}: at most {MAX_AGE.days}d (100 years)")
    return timedelta(seconds=seconds)


def compactable_issues(session: Session, cutoff: datetime, *, only: int | None = None) -> list[int]:
    """Issues with sent rows, all sent before `cutoff`, no row still open, and no row of a segment.

    A segmented send is left whole: the report splits its figures by segment, from
    the rows, and a tally has no segment to split by (review finding: the split
    changed after compaction). `only` asks about one issue.
    """
    open_rows = exists().where(Delivery.issue_id == IssueRecord.id, Delivery.state.in_(D.OPEN))
    segmented = exists().where(Delivery.issue_id == IssueRecord.id, Delivery.segment.is_not(None))  # type: ignore[union-attr]
    sent = [Delivery.state == D.SENT] + ([Delivery.issue_id == only] if only is not None else [])
    last_sent = (select(Delivery.issue_id).where(*sent).group_by(Delivery.issue_id)
                 .having(func.max(Delivery.sent_at) < cutoff))  # one issue's rows only, when asked about one
    stmt = select(IssueRecord.id).where(IssueRecord.id.in_(last_sent), ~open_rows, ~segmented)
    if only is not None:
        stmt = stmt.where(IssueRecord.id == only)
    return [int(i) for i in session.execute(stmt.order_by(IssueRecord.id)).scalars()]


def segmented_issues(session: Session) -> int:
    """How many issues keep their rows because a segment chose their recipients (see above)."""
    return int(session.execute(select(func.count(func.distinct(Delivery.issue_id)))
                               .where(Delivery.segment.is_not(None))).scalar_one())  # type: ignore[union-attr]


def compact(engine: Engine, older_than: timedelta, *, now: datetime | None = None) -> list[Compacted]:
    """Compact every issue whose sends finished more than `older_than` ago; returns what was done."""
    cutoff = (now or utcnow()) - older_than
    with session_scope(engine) as session:
        issues = compactable_issues(session, cutoff)
    done = (_compact_or_skip(engine, issue_id, cutoff) for issue_id in issues)
    return [c for c in done if c is not None]


# PostgreSQL's refusals of a compaction another transaction got in first with: its rows changed
# (40001), a second `db compact` inserted the same people's facts (23505, unique), or the two
# deadlocked (40P01). The transaction rolls back whole; the issue is the other run's or the next's.
_SOMEONE_ELSE_FIRST = {"40001", "23505", "40P01"}


def _compact_or_skip(engine: Engine, issue_id: int, cutoff: datetime) -> Compacted | None:
    """An issue whose rows another transaction changed meanwhile (an erasure, a late mark, a second
    `db compact` run) is left for the next run (or to that other run), instead of failing the command."""
    try:
        return _compact_issue(engine, issue_id, cutoff)
    except (OperationalError, IntegrityError) as exc:
        if getattr(exc.orig, "sqlstate", None) not in _SOMEONE_ELSE_FIRST:
            raise
        log_event("bulletin.delivery", "compact.skipped", level=logging.WARNING, issue_id=issue_id,
                  reason="its rows changed while it was compacted; the next run compacts it")
        return None


def _compact_issue(engine: Engine, issue_id: int, cutoff: datetime) -> Compacted | None:
    """One issue in one transaction that sees one state of the ledger, checked again inside it.

    On PostgreSQL the transaction is REPEATABLE READ: at READ COMMITTED each statement
    saw the ledger anew, so a row marked sent between the tally's INSERT and the DELETE
    was deleted without being counted (review finding: `report` lost a message). The
    issue is checked again here because it may have been queued to another list since
    `compact` chose it; None when it no longer qualifies.
    """
    sent = (Delivery.issue_id == issue_id, Delivery.state == D.SENT)
    now = utcnow()
    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection().exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if not compactable_issues(session, cutoff, only=issue_id):
            return None
        slug = session.get(IssueRecord, issue_id).slug  # type: ignore[union-attr]
        second = epoch(Delivery.sent_at)
        session.execute(insert(DeliveryTally).from_select(
            ["issue_id", "state", "sent_second", "count", "compacted_at"],
            select(literal(issue_id), literal(D.SENT), second, func.count(), literal(now, DeliveryTally.compacted_at.type))
            .where(*sent).group_by(second)))
        _remember_people(session, issue_id)
        session.execute(text(_UPDATE_SENDS), {"issue": issue_id})
        session.execute(update(Bounce).where(Bounce.delivery_id.in_(select(Delivery.id).where(*sent)))
                        .values(delivery_id=None))
        count = int(session.execute(delete(Delivery).where(*sent)).rowcount or 0)
    return Compacted(issue_id, slug, count)


_UPDATE_SENDS = """
UPDATE send SET compacted_sent = compacted_sent + (SELECT count(*) FROM delivery d
    WHERE d.issue_id = :issue AND d.send_id = send.id AND d.state = 'sent')
WHERE issue_id = :issue
"""  # per send, what the tally (per issue) no longer says: that a message of this send went

_UPDATE_PEOPLE = """
UPDATE subscriber_delivery SET
  compacted_sent = compacted_sent + 1,
  last_issue_id = CASE WHEN last_sent_at IS NULL OR last_sent_at < (SELECT d.sent_at FROM delivery d
      WHERE d.issue_id = :issue AND d.subscriber_id = subscriber_delivery.subscriber_id) THEN :issue
      ELSE last_issue_id END,
  last_sent_at = CASE WHEN last_sent_at IS NULL OR last_sent_at < (SELECT d.sent_at FROM delivery d
      WHERE d.issue_id = :issue AND d.subscriber_id = subscriber_delivery.subscriber_id) THEN (SELECT d.sent_at
      FROM delivery d WHERE d.issue_id = :issue AND d.subscriber_id = subscriber_delivery.subscriber_id)
      ELSE last_sent_at END
WHERE subscriber_id IN (SELECT subscriber_id FROM delivery WHERE issue_id = :issue AND state = 'sent')
"""


def _remember_people(session: Session, issue_id: int) -> None:
    """Per person: one more compacted message, and this issue if it is their newest."""
    session.execute(text(_UPDATE_PEOPLE), {"issue": issue_id})
    known = exists().where(SubscriberDelivery.subscriber_id == Delivery.subscriber_id)
    session.execute(insert(SubscriberDelivery).from_select(
        ["subscriber_id", "last_issue_id", "last_sent_at", "compacted_sent"],
        select(Delivery.subscriber_id, Delivery.issue_id, Delivery.sent_at, literal(1))
        .where(Delivery.issue_id == issue_id, Delivery.state == D.SENT, ~known)))


# What the other readers of the ledger add back --------------------------------------------------


def refuse_if_compacted(session: Session, issue_id: int, slug: str) -> None:
    if session.execute(select(DeliveryTally.id).where(DeliveryTally.issue_id == issue_id).limit(1)).first():
        raise StateError("its ledger was compacted (`bulletin db compact`), so who already had it is no "
                         "longer known; publish it under a new slug to send it again", where=f"issue {slug}")
