"""Store first: the raw bytes go into the database before anything reads them.

The row is committed in its own transaction, so a parser crash, a database
error later on or a killed process never loses a message. The Message-ID is
the key: a second delivery of the same message finds the first row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bulletin.inbound.reading.parse import message_ids, normalise_line_ends
from bulletin.models import InboundMessage

_MID_HEADER_RE = re.compile(rb"^message-id[ \t]*:(.*(?:\n[ \t].*)*)", re.I | re.M)
SOURCES = ("stdin", "maildir", "mbox", "imap", "lmtp", "smtp", "demo", "test", "bench")


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    message_id: str
    duplicate: bool


def store_raw(session: Session, raw: bytes, *, source: str, envelope_from: str | None = None,
              envelope_to: list[str] | None = None) -> tuple[Stored, InboundMessage | None]:
    """Insert the raw message unless its Message-ID is already stored, and commit.

    Returns the new row (None for a duplicate) so the caller can process it in the
    same session without reading it back.
    """
    message_id = message_id_from_raw(raw)
    existing = _find(session, message_id)
    if existing is not None:
        session.commit()
        return Stored(existing, message_id, True), None
    row = InboundMessage(
        message_id=message_id, raw=raw, sha256=hashlib.sha256(raw).hexdigest(), source=source[:16],
        envelope_from=_clean(envelope_from), envelope_to=_clean(", ".join(envelope_to or [])) or None,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        # Another process stored the same message between our look-up and our insert.
        session.rollback()
        found = _find(session, message_id)
        if found is None:
            raise
        return Stored(found, message_id, True), None
    assert row.id is not None
    return Stored(row.id, message_id, False), row


def _find(session: Session, message_id: str) -> int | None:
    return session.exec(select(InboundMessage.id).where(InboundMessage.message_id == message_id)).first()


def message_id_from_raw(raw: bytes) -> str:
    """The Message-ID read straight from the header block: the full MIME parse comes later."""
    head = normalise_line_ends(raw[:262144]).split(b"\n\n", 1)[0]
    found = _MID_HEADER_RE.search(head)
    value = found.group(1).decode("latin-1") if found else ""
    ids = message_ids(" ".join(value.split()))
    if ids and len(ids[0]) <= 900:
        return ids[0]
    return f"<sha256.{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"


def _clean(value: str | None) -> str | None:
    """Envelope values come from an MTA command line or an SMTP dialogue: no control characters."""
    if value is None:
        return None
    return "".join(ch for ch in value if ch.isprintable())[:998]
