"""Store first: the raw bytes go into the database before anything reads them.

The row is committed before it is processed, so a parser crash, a database
error later on or a killed process never loses a message. The key is the
Message-ID *and* the sha256 of the bytes: a second delivery of the same bytes
finds the first row, while other bytes under a Message-ID already seen (a
guess, a collision, a sender that reuses ids) are stored and processed as a
new message, so nobody can make a real reply vanish by sending first.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bulletin.inbound.reading.parse import message_ids, normalise_line_ends
from bulletin.models import InboundMessage

_MID_HEADER_RE = re.compile(rb"^message-id[ \t]*:(.*(?:\n[ \t].*)*)", re.M)  # for lowercased bytes
SOURCES = ("stdin", "maildir", "mbox", "imap", "lmtp", "smtp", "demo", "test", "bench")


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    message_id: str
    duplicate: bool
    message_id_reused: bool = False


def store_raw(session: Session, raw: bytes, *, source: str, envelope_from: str | None = None,
              envelope_to: list[str] | None = None) -> tuple[Stored, InboundMessage | None]:
    """Insert the raw message unless its Message-ID is already stored, and commit.

    Returns the new row (None for a duplicate) so the caller can process it in the
    same session without reading it back.
    """
    stored, row = add_raw(session, raw, source=source, envelope_from=envelope_from, envelope_to=envelope_to)
    if row is None:
        session.commit()
        return stored, None
    try:
        session.commit()
    except IntegrityError:
        # Another process stored the same bytes between our look-up and our insert.
        session.rollback()
        found = _find(session, stored.message_id, row.sha256)
        if found is None:
            raise
        return Stored(found, stored.message_id, True), None
    assert row.id is not None
    return Stored(row.id, stored.message_id, False, stored.message_id_reused), row


def add_raw(session: Session, raw: bytes, *, source: str, envelope_from: str | None = None,
            envelope_to: list[str] | None = None) -> tuple[Stored, InboundMessage | None]:
    """Add (and flush, not commit) the raw message unless these exact bytes are stored: for group commits."""
    message_id = message_id_from_raw(raw)
    digest = hashlib.sha256(raw).hexdigest()
    existing = _find(session, message_id, digest)
    if existing is not None:
        return Stored(existing, message_id, True), None
    reused = session.exec(select(InboundMessage.id).where(InboundMessage.message_id == message_id)).first()
    row = InboundMessage(
        message_id=message_id, raw=raw, sha256=digest, source=source[:16],
        envelope_from=_clean(envelope_from), envelope_to=_clean(", ".join(envelope_to or [])) or None,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    return Stored(row.id, message_id, False, reused is not None), row


def add_recipients(row: InboundMessage, envelope_to: list[str]) -> bool:
    """Add the envelope recipients `row` does not list yet; True when there were any."""
    have = [a.strip() for a in (row.envelope_to or "").split(",") if a.strip()]
    known = {a.lower() for a in have}
    new = [a.strip() for a in envelope_to if a.strip() and a.strip().lower() not in known]
    if not new:
        return False
    row.envelope_to = _clean(", ".join(dict.fromkeys(have + new)))
    return True


def _find(session: Session, message_id: str, digest: str) -> int | None:
    return session.exec(select(InboundMessage.id).where(InboundMessage.message_id == message_id,
                                                        InboundMessage.sha256 == digest)).first()


def message_id_from_raw(raw: bytes) -> str:
    """The Message-ID read straight from the header block: the full MIME parse comes later."""
    head = normalise_line_ends(raw[:262144])
    end = head.find(b"\n\n")
    head = head if end < 0 else head[:end]
    # Searched in lowercased bytes (same length, ASCII only): re.I would try both cases at every position.
    found = _MID_HEADER_RE.search(head.lower())
    value = head[found.start(1):found.end(1)].decode("latin-1") if found else ""
    ids = message_ids(" ".join(value.split()))
    if ids and len(ids[0]) <= 900:
        return ids[0]
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"


def _clean(value: str | None) -> str | None:
    """Envelope values come from an MTA command line or an SMTP dialogue: no control characters."""
    if value is None:
        return None
    return "".join(ch for ch in value if ch.isprintable())[:998]
