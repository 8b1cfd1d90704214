"""One path for every source: store the raw bytes, then classify, match and act.

`ingest` commits the raw message first, then processes it in a second
transaction. If processing raises (a third-party parser bug, a malformed
report), that transaction rolls back and the stored row is marked
quarantined with the error: the message is kept and the next one goes on.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bulletin.audience.links import Links
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.errors import ConfigError, NotFound
from bulletin.inbound.acting import actions
from bulletin.inbound.acting.evidence import gather
from bulletin.inbound.acting.feedback import record_feedback
from bulletin.inbound.acting.match import Match, match_sender
from bulletin.inbound.acting.rows import InboundRow
from bulletin.inbound.acting.store import add_recipients, store_raw
from bulletin.inbound.reading.addresses import read_tokens
from bulletin.inbound.reading.classify import (
    AUTO_REPLY,
    BOUNCE,
    COMPLAINT,
    UNSUBSCRIBE,
    Classification,
    classify,
)
from bulletin.inbound.reading.parse import parse_bytes
from bulletin.inbound.reading.report_identity import ReportIdentity, read_report_identity
from bulletin.inbound.reading.reports import BounceRecipient
from bulletin.logs import log_event
from bulletin.models import Feedback, InboundMessage, IssueRecord, Subscriber, id_of, utcnow
from bulletin.statuses import InboundStatus

REPLY, UNMATCHED = "reply", "unmatched"


@dataclass
class IngestResult:
    """What happened to one message; `as_dict` is the `--json` line."""

    inbound_id: int
    message_id: str
    duplicate: bool = False
    status: str = InboundStatus.STORED
    classification: str | None = None
    reason: str = ""
    subscriber_id: int | None = None
    subscriber: str | None = None
    issue_id: int | None = None
    issue: str | None = None
    match: str | None = None
    block: str | None = None
    bounces: list[dict[str, object]] = field(default_factory=list)
    verified: bool | None = None  # evidence found: was any of it authenticated (None: no evidence)
    evidence: list[dict[str, object]] = field(default_factory=list)
    message_id_reused: bool = False
    feedback_id: int | None = None
    visible_text: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def ingest(engine: Engine, settings: Settings, raw: bytes, *, source: str, envelope_from: str | None = None,
           envelope_to: str | list[str] | None = None, links: Links | None = None) -> IngestResult:
    """Store (and commit), then process; a message already stored is reported, not processed again."""
    rcpts = [envelope_to] if isinstance(envelope_to, str) else list(envelope_to or [])
    with Session(engine, expire_on_commit=False) as session:
        stored, row = store_raw(session, raw, source=source, envelope_from=envelope_from, envelope_to=rcpts)
        if row is None:
            existing = session.get(InboundMessage, stored.inbound_id)
            if existing is not None and existing.status == InboundStatus.STORED and existing.processed_at is None:
                # Stored, then the process died before processing it: finish the job now.
                return _process_row(session, settings, links or Links.for_settings(settings), existing)
            if existing is not None and add_recipients(existing, rcpts):
                # The same bytes for another envelope recipient (an MTA delivering one recipient at a
                # time, a Bcc): that recipient may be the only place a token of ours is. Processed
                # again with every recipient; what was already applied is not applied twice.
                session.add(existing)
                session.commit()
                result = _process_row(session, settings, links or Links.for_settings(settings), existing)
                result.duplicate = True
                return result
            result = describe(session, existing)
            session.rollback()
            result.duplicate = True
            return result
        result = _process_row(session, settings, links or Links.for_settings(settings), row)
        result.message_id_reused = stored.message_id_reused
        return result


def process(engine: Engine, settings: Settings, inbound_id: int, *, links: Links | None = None) -> IngestResult:
    """Classify, match and act on one stored message again."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None:
            raise NotFound(f"no inbound message #{inbound_id}")
        return _process_row(session, settings, links or Links.for_settings(settings), row)


def _process_row(session: Session, settings: Settings, links: Links, row: InboundMessage, *,
                 log: bool = True) -> IngestResult:
    """One transaction for the outcome; if anything raises, roll back and quarantine the row instead."""
    inbound_id = row.id
    assert inbound_id is not None
    sns_certificates(settings)  # a configuration error stops here (the raw mail stays stored), not as a quarantine
    try:
        result = _handle(session, settings, links, row)
        session.commit()
    except Exception as exc:  # noqa: BLE001 - any failure quarantines this message and lets the rest go on
        session.rollback()
        error = f"{type(exc).__name__}: {exc}"[:2000]
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        row.status, row.error, row.processed_at = InboundStatus.QUARANTINED, error, utcnow()
        session.add(row)
        session.commit()
        result = IngestResult(inbound_id, row.message_id, status=InboundStatus.QUARANTINED, error=error)
    if log:
        log_processed(result)
    return result


def log_processed(result: IngestResult) -> None:
    """One `inbound.processed` line per message; nothing is built when no handler takes INFO (a batch logs 200)."""
    if not logging.getLogger("bulletin.inbound").isEnabledFor(logging.INFO):
        return
    log_event("bulletin.inbound", "inbound.processed", inbound_id=result.inbound_id, status=result.status,
              classification=result.classification, reason=result.reason, subscriber_id=result.subscriber_id,
              issue_id=result.issue_id, error=result.error, level=logging.INFO)


def _handle(session: Session, settings: Settings, links: Links, row: InboundRow, *,
            deferred: actions.DeferredEvidence | None = None) -> IngestResult:
    """Classify, match and act on one row; a batch's `BatchRow` is written back by the batch, all at once."""
    msg = parse_bytes(row.raw)
    envelope_to = [a.strip() for a in (row.envelope_to or "").split(",") if a.strip()]
    tokens = read_tokens(msg, links, envelope_to)
    cls = classify(msg, tokens, sns_certificates=sns_certificates(settings))
    result = IngestResult(id_of(row), row.message_id, status=InboundStatus.PROCESSED, classification=cls.kind,
                          reason=cls.reason)
    found: Match | None = None
    identity = report_identity(row.raw, msg, links, cls, envelope_to) if cls.kind != UNSUBSCRIBE else None
    signals = gather(session, tokens, cls, identity, name=deferred is None)
    if signals or cls.kind in (BOUNCE, COMPLAINT, UNSUBSCRIBE):
        if deferred is not None and row.processed_at is None and not any(x.verified for x in signals):
            # Nothing to act on: the batch names and inserts this evidence with everyone else's at the end.
            result.evidence = deferred.add(row, signals)
            result.verified = False
        else:
            stored = actions.store_evidence(session, row, signals)
            found = actions.act_on(session, settings, row, stored)
            result.evidence = [actions.evidence_dict(e) for e in stored]
            result.verified = any(e.verified for e in stored)
        if identity is not None:
            result.classification = identity.kind
        if result.classification == BOUNCE:
            result.bounces = list(result.evidence)
    elif cls.kind == AUTO_REPLY:
        found = match_sender(session, msg, links, tokens)
    else:
        found = match_sender(session, msg, links, tokens) or _attached_by_staff(session, row)
        result.classification = REPLY if found is not None else UNMATCHED
        if tokens.forged:
            result.reason = "forged-token"
        if found is not None:
            fb = record_feedback(session, row, msg, found)
            result.feedback_id, result.visible_text, result.block = fb.id, fb.visible_text, fb.block_anchor
    if result.classification != REPLY:
        _drop_stale_feedback(session, row)
    row.classification = result.classification
    row.subscriber_id = found.subscriber_id if found else None
    row.issue_id = found.issue_id if found else None
    row.status, row.error, row.processed_at = InboundStatus.PROCESSED, None, utcnow()
    if isinstance(row, InboundMessage):
        session.add(row)
        session.flush()
    if found is not None:
        result.match = found.method
    _names(session, result, row)
    return result


def report_identity(raw: bytes, msg: Message, links: Links, cls: Classification,
                    envelope_to: list[str]) -> ReportIdentity | None:
    """`read_report_identity`, skipped when the raw bytes cannot hold a value of ours.

    Every signed value of ours ends in the sending domain; when that domain is
    nowhere in the bytes and no part is base64 (where it could hide), the report
    carries nothing of ours, and only its recipients are needed. Missing a mark
    here could only make evidence unverified, never trust a forgery.
    """
    lowered = raw.lower()
    if links.settings.sending_domain.lower().encode() in lowered or b"base64" in lowered:
        return read_report_identity(msg, links, cls, envelope_to)
    if cls.kind == COMPLAINT or cls.complaint_addresses:
        recipients = tuple(BounceRecipient(a, True) for a in cls.complaint_addresses)
        return ReportIdentity("complaint", cls.reason, recipients, (), False)
    if cls.kind == BOUNCE:
        return ReportIdentity("bounce", cls.reason, cls.bounces, (), False)
    return None


def sns_certificates(settings: Settings) -> tuple[bytes, ...]:
    """The PEM certificates SES notices must verify against (setting `ses_sns_certificates`)."""
    return tuple(_read_pem(str(settings.path(p))) for p in settings.ses_sns_certificates)


@functools.lru_cache(maxsize=16)
def _read_pem(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"setting 'ses_sns_certificates': cannot read {path}: {exc.strerror}") from None


def _attached_by_staff(session: Session, row: InboundRow) -> Match | None:
    """A message staff attached by hand (`inbound attach`) stays attached when it is reprocessed."""
    if row.processed_at is None:
        return None
    fb = session.exec(select(Feedback).where(Feedback.inbound_id == row.id)).first()
    if fb is None or not fb.attached_by or fb.subscriber_id is None:
        return None
    return Match(fb.subscriber_id, fb.issue_id, "staff")


def _drop_stale_feedback(session: Session, row: InboundRow) -> None:
    """After a reprocess reclassifies a former reply, its feedback record would be a lie."""
    if row.processed_at is None:
        return
    for fb in session.exec(select(Feedback).where(Feedback.inbound_id == row.id)).all():
        session.delete(fb)


def _names(session: Session, result: IngestResult, row: InboundRow) -> None:
    result.subscriber_id, result.issue_id = row.subscriber_id, row.issue_id
    sub = session.get(Subscriber, row.subscriber_id) if row.subscriber_id else None
    issue = session.get(IssueRecord, row.issue_id) if row.issue_id else None
    result.subscriber = sub.email if sub else None
    result.issue = issue.slug if issue else None


def describe(session: Session, row: InboundMessage | None) -> IngestResult:
    """The stored outcome of an already processed message (for duplicates and `inbound list`)."""
    assert row is not None and row.id is not None
    result = IngestResult(row.id, row.message_id, status=row.status, classification=row.classification,
                          error=row.error)
    _names(session, result, row)
    fb = session.exec(select(Feedback).where(Feedback.inbound_id == row.id)).first()
    if fb is not None:
        result.feedback_id, result.visible_text, result.block = fb.id, fb.visible_text, fb.block_anchor
    return result


def reprocess(engine: Engine, settings: Settings, *, status: str | None = None,
              classification: str | None = None, ids: list[int] | None = None) -> list[IngestResult]:
    """Run classification and matching again from the stored raw mail (after a fix or a rule change)."""
    with session_scope(engine) as session:
        stmt = select(InboundMessage.id).order_by(InboundMessage.id)
        if status:
            stmt = stmt.where(InboundMessage.status == status)
        if classification:
            stmt = stmt.where(InboundMessage.classification == classification)
        if ids:
            stmt = stmt.where(InboundMessage.id.in_(ids))  # type: ignore[union-attr]
        todo = [i for i in session.exec(stmt).all() if i is not None]
    links = Links.for_settings(settings)
    return [process(engine, settings, i, links=links) for i in todo if i is not None]
