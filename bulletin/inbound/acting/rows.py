"""The stored message as processing reads and writes it: an ORM row one by one, a plain record in a batch.

A group commit of a few hundred messages spent more on ORM bookkeeping than on
the database: loading each row (raw bytes and all) into the identity map,
instrumented attribute sets, and the flush that works out what changed. In a
batch the row is a `BatchRow` read with one Core SELECT, and every outcome goes
back with one executemany UPDATE in the same transaction as the evidence.
Processing code takes either through the `InboundRow` protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Table, bindparam, insert, select, update
from sqlmodel import Session

from bulletin.models import InboundMessage

# The outcome columns processing sets; the batch writes exactly these back.
OUTCOME = ("classification", "subscriber_id", "issue_id", "status", "error", "processed_at")


class InboundRow(Protocol):
    """What processing reads (raw mail and where it came from) and writes (the outcome) of a stored message."""

    id: int | None
    message_id: str
    raw: bytes
    envelope_to: str | None
    received_at: datetime
    classification: str | None
    subscriber_id: int | None
    issue_id: int | None
    status: str
    error: str | None
    processed_at: datetime | None


@dataclass
class BatchRow:
    """A stored message outside the ORM session: `save_outcomes` writes it back."""

    id: int
    message_id: str
    raw: bytes
    envelope_to: str | None
    received_at: datetime
    status: str
    processed_at: datetime | None
    classification: str | None = None
    subscriber_id: int | None = None
    issue_id: int | None = None
    error: str | None = None


def load_rows(session: Session, ids: Sequence[int]) -> list[BatchRow]:
    """The stored messages with these ids, in id order (one query per 500 ids)."""
    table = InboundMessage.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in ("id", "message_id", "raw", "envelope_to", "received_at", "status",
                                          "processed_at", "classification", "subscriber_id", "issue_id", "error")]
    rows: list[BatchRow] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        stmt = select(*columns).where(table.c.id.in_(ordered[start:start + 500])).order_by(table.c.id)
        rows += [BatchRow(*r) for r in session.connection().execute(stmt)]
    return rows


def save_outcomes(session: Session, rows: Sequence[BatchRow]) -> None:
    """Every row's outcome columns, as one executemany UPDATE."""
    if not rows:
        return
    table = InboundMessage.__table__  # type: ignore[attr-defined]
    stmt = update(table).where(table.c.id == bindparam("row_id"))
    session.connection().execute(stmt, [{"row_id": r.id, **{k: getattr(r, k) for k in OUTCOME}} for r in rows])


def insert_ids(session: Session, table: Table, values: Sequence[dict[str, object]], key: Sequence[str]) -> list[int]:
    """Insert the rows in one multi-row INSERT and return their new ids in the order given.

    `returning(..., sort_by_parameter_order=True)` would keep the order, but SQLite
    offers SQLAlchemy nothing to sort by, so it sends one INSERT per row (600
    statements for a batch's evidence). Here each new id comes back with the `key`
    columns and is matched to its row on them. Rows alike in every key column are
    alike to anyone who reads them, so which of their ids each one gets is moot
    (the lowest goes to the first).
    """
    if not values:
        return []
    stmt = insert(table).returning(table.c.id, *(table.c[k] for k in key))
    ids: dict[tuple[object, ...], list[int]] = {}
    for new_id, *found in session.connection().execute(stmt, list(values)):
        ids.setdefault(tuple(found), []).append(new_id)
    for same in ids.values():
        same.sort(reverse=True)
    return [ids[tuple(v[k] for k in key)].pop() for v in values]
