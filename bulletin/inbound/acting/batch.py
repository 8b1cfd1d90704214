"""Group commit: store a whole batch of raw messages in one transaction, then process them in one more.

Store-first still holds: every raw message of the batch is committed before
any of them is acknowledged (moved to cur/, moved out of the IMAP folder,
answered 250 over LMTP), and before any is processed. Per-message
transactions cost more than reading the mail itself; one commit per batch
makes the database cost small next to classification. If processing any
message of the batch raises, the processing transaction rolls back and the
batch is processed again one message at a time, so only the bad message is
quarantined. A message found stored but never processed (a crash between the
two commits) is processed when it comes again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.inbound.acting.actions import DeferredEvidence
from bulletin.inbound.acting.pipeline import (
    IngestResult,
    _handle,
    _process_row,
    ingest,
    log_processed,
    sns_certificates,
)
from bulletin.inbound.acting.rows import BatchRow, insert_ids, load_rows, save_outcomes
from bulletin.inbound.acting.store import _clean, message_id_from_raw
from bulletin.models import Feedback, InboundMessage, IssueRecord, Subscriber, utcnow
from bulletin.statuses import InboundStatus


@dataclass(frozen=True)
class RawMail:
    """One message to store: bytes and, from an MTA, its envelope."""

    raw: bytes
    source: str
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()


def ingest_batch(engine: Engine, settings: Settings, mails: Sequence[RawMail], *,
                 links: Links | None = None) -> list[IngestResult]:
    """Store every message (one commit), then process the new ones (one commit); results in input order."""
    if not mails:
        return []
    links = links or Links.for_settings(settings)
    with Session(engine, expire_on_commit=False) as session:
        try:
            slots, fresh = _store(session, mails)
            session.commit()
        except IntegrityError:
            # Another process stored some of these meanwhile: fall back to the careful one-by-one path.
            session.rollback()
            return [ingest(engine, settings, m.raw, source=m.source, envelope_from=m.envelope_from,
                           envelope_to=list(m.envelope_to), links=links) for m in mails]
        todo = sorted({inbound_id for inbound_id, new, _ in slots if new})
        results = _process(session, settings, links, todo, fresh)
        stored = _stored_outcomes(session, [i for i, new, _ in slots if not (new and i in results)])
        out = []
        for inbound_id, new, reused in slots:
            if new and inbound_id in results:
                result = results[inbound_id]
                result.message_id_reused = reused
            else:
                result = IngestResult(**stored[inbound_id])  # what `describe` says, read for all at once
                result.duplicate = True
            out.append(result)
        session.rollback()
        return out


def _stored_outcomes(session: Session, ids: list[int]) -> dict[int, dict[str, object]]:
    """`describe` of already processed messages (duplicates) with one query per 500, not four per message."""
    m, f = InboundMessage.__table__, Feedback.__table__  # type: ignore[attr-defined]
    s, i = Subscriber.__table__, IssueRecord.__table__  # type: ignore[attr-defined]
    out: dict[int, dict[str, object]] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        stmt = (select(m.c.id, m.c.message_id, m.c.status, m.c.classification, m.c.error, m.c.subscriber_id,
                          m.c.issue_id, s.c.email, i.c.slug, f.c.id, f.c.visible_text, f.c.block_anchor)
                .select_from(m).outerjoin(s, s.c.id == m.c.subscriber_id).outerjoin(i, i.c.id == m.c.issue_id)
                .outerjoin(f, f.c.inbound_id == m.c.id).where(m.c.id.in_(wanted[start:start + 500])))
        for row in session.connection().execute(stmt):
            out[row[0]] = dict(zip(("inbound_id", "message_id", "status", "classification", "error", "subscriber_id",
                                    "issue_id", "subscriber", "issue", "feedback_id", "visible_text", "block"),
                                   row, strict=True))
    return out


def _store(session: Session, mails: Sequence[RawMail]) -> tuple[list[tuple[int, bool, bool]], dict[int, BatchRow]]:
    """(inbound_id, stored now or never processed, Message-ID reused) per message, with one look-up query;
    and the rows stored now, as processing reads them (no need to read back what was just written)."""
    keys = [(message_id_from_raw(m.raw), hashlib.sha256(m.raw).hexdigest()) for m in mails]
    known: dict[tuple[str, str], tuple[int, str]] = {}
    seen_ids: set[str] = set()
    mids = sorted({k[0] for k in keys})
    table = InboundMessage.__table__  # type: ignore[attr-defined]
    for start in range(0, len(mids), 500):
        stmt = select(table.c.id, table.c.message_id, table.c.sha256, table.c.status).where(
            table.c.message_id.in_(mids[start:start + 500]))
        for row_id, mid, digest, status in session.connection().execute(stmt):
            known[(mid, digest)] = (row_id, status)
            seen_ids.add(mid)
    rows, where = [], {}
    for i, (m, key) in enumerate(zip(mails, keys, strict=True)):
        if key in known or key in where:
            continue
        where[key] = i
        rows.append({"message_id": key[0], "raw": m.raw, "sha256": key[1], "source": m.source[:16],
                     "envelope_from": _clean(m.envelope_from),
                     "envelope_to": _clean(", ".join(m.envelope_to)) or None,
                     "received_at": utcnow(), "status": InboundStatus.STORED})
    fresh: dict[int, BatchRow] = {}
    if rows:
        ids = insert_ids(session, table, rows, ("message_id", "sha256"))  # unique together
        for row, new_id in zip(rows, ids, strict=True):
            known[(row["message_id"], row["sha256"])] = (new_id, "new")
            fresh[new_id] = BatchRow(new_id, row["message_id"], row["raw"], row["envelope_to"], row["received_at"],
                                     InboundStatus.STORED, None)
    out = []
    claimed: set[int] = set()
    first_of: dict[str, int] = {}
    for key in keys:
        inbound_id, status = known[key]
        todo = status in ("new", InboundStatus.STORED) and inbound_id not in claimed
        claimed.add(inbound_id)
        reused = key[0] in seen_ids or first_of.setdefault(key[0], inbound_id) != inbound_id
        out.append((inbound_id, todo, reused and todo))
    return out, fresh


def _process(session: Session, settings: Settings, links: Links, ids: list[int],
             fresh: dict[int, BatchRow]) -> dict[int, IngestResult]:
    """Process the stored rows in one transaction; if one raises, redo them one at a time.

    Rows stored by this batch come from `fresh`; others (stored once, never processed) are read.
    """
    if not ids:
        return {}
    sns_certificates(settings)  # a configuration error stops the batch (all stored), not as a quarantine
    try:
        results = {}
        deferred = DeferredEvidence()
        rows = [fresh[i] for i in ids if i in fresh] + load_rows(session, [i for i in ids if i not in fresh])
        rows.sort(key=lambda r: r.id)
        for row in rows:
            results[row.id] = _handle(session, settings, links, row, deferred=deferred)
        save_outcomes(session, rows)  # one executemany UPDATE for the whole batch
        deferred.write(session)
        session.commit()
    except Exception:  # noqa: BLE001 - one bad message must not stop the batch: redo one by one, quarantine it
        session.rollback()
        results = {}
        for inbound_id in ids:
            row = session.get(InboundMessage, inbound_id)
            assert row is not None
            results[inbound_id] = _process_row(session, settings, links, row, log=False)
    for result in results.values():
        log_processed(result)
    return results  # type: ignore[return-value]
