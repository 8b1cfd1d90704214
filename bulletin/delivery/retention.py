"""Ledger retention: `bulletin db compact --older-than 90d`.

Without it the ledger grows by one row per subscriber per issue, forever. Sent
rows of an issue whose last message went out before the cut-off (and that has
nothing left to send) are folded into per-issue tallies (`delivery_tally`:
count per state, and for sent rows per second sent, which is what the report's
figures and timeline read) and per-person facts (`subscriber_delivery`: last
issue sent, how many were compacted). Bounce rows, the evidence of failed
mail, are kept; they only lose their link to the deleted row. Failed,
cancelled and deferred rows stay as they are: they are few and carry the
errors staff look at. Each issue is compacted in one transaction.

A compacted issue cannot be queued again (who had it is no longer known per
person), and `report` shows identical figures before and after (tested).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, insert, literal, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bulletin.db import session_scope
from bulletin.errors import ConfigError, StateError
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


def parse_age(value: str) -> timedelta:
    """`90d`, `12w`, `36h` -> timedelta; anything else is a ConfigError naming the value."""
    match = _AGE.match(value)
    if not match:
        raise ConfigError(f"--older-than {value!r}: give a number and a unit, e.g. 90d, 12w or 36h")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def compactable_issues(session: Session, cutoff: datetime) -> list[int]:
    """Issues with sent rows, all sent before `cutoff`, and no row still open."""
    open_rows = exists().where(Delivery.issue_id == IssueRecord.id, Delivery.state.in_(D.OPEN))
    last_sent = (select(Delivery.issue_id).where(Delivery.state == D.SENT).group_by(Delivery.issue_id)
                 .having(func.max(Delivery.sent_at) < cutoff))
    stmt = select(IssueRecord.id).where(IssueRecord.id.in_(last_sent), ~open_rows).order_by(IssueRecord.id)
    return [int(i) for i in session.execute(stmt).scalars()]


def compact(engine: Engine, older_than: timedelta, *, now: datetime | None = None) -> list[Compacted]:
    """Compact every issue whose sends finished more than `older_than` ago; returns what was done."""
    cutoff = (now or utcnow()) - older_than
    with session_scope(engine) as session:
        issues = compactable_issues(session, cutoff)
    return [_compact_issue(engine, issue_id) for issue_id in issues]


def _compact_issue(engine: Engine, issue_id: int) -> Compacted:
    sent = (Delivery.issue_id == issue_id, Delivery.state == D.SENT)
    now = utcnow()
    with session_scope(engine) as session:
        slug = session.get(IssueRecord, issue_id).slug  # type: ignore[union-attr]
        second = epoch(Delivery.sent_at)
        session.execute(insert(DeliveryTally).from_select(
            ["issue_id", "state", "sent_second", "count", "compacted_at"],
            select(literal(issue_id), literal(D.SENT), second, func.count(), literal(now, DeliveryTally.compacted_at.type))
            .where(*sent).group_by(second)))
        _remember_people(session, issue_id)
        session.execute(update(Bounce).where(Bounce.delivery_id.in_(select(Delivery.id).where(*sent)))
                        .values(delivery_id=None))
        count = int(session.execute(delete(Delivery).where(*sent)).rowcount or 0)
    return Compacted(issue_id, slug, count)


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
