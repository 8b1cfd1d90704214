"""Store first: the raw bytes go into the database before anything reads them.

The row is committed in its own transaction, so a parser crash, a database
error later on or a killed process never loses a message. The Message-ID is
the key: a second delivery of the same message finds the first row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bulletin.db import session_scope
from bulletin.inbound.parse import message_id_of, parse_headers_only
from bulletin.models import InboundMessage

SOURCES = ("stdin", "maildir", "mbox", "imap", "lmtp", "smtp", "demo", "test", "bench")


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    message_id: str
    duplicate: bool


def store_raw(engine: Engine, raw: bytes, *, source: str, envelope_from: str | None = None,
              envelope_to: list[str] | None = None) -> Stored:
    """Insert the raw message unless its Message-ID is already stored; commit before returning."""
    message_id = message_id_of(parse_headers_only(raw), raw)
    existing = _find(engine, message_id)
    if existing is not None:
        return Stored(existing, message_id, True)
    row = InboundMessage(
        message_id=message_id, raw=raw, sha256=hashlib.sha256(raw).hexdigest(), source=source[:16],
        envelope_from=_clean(envelope_from), envelope_to=_clean(", ".join(envelope_to or [])) or None,
    )
    try:
        with session_scope(engine) as session:
            session.add(row)
            session.flush()
            assert row.id is not None
            return Stored(row.id, message_id, False)
    except IntegrityError:
        # Another process stored the same message between our look-up and our insert.
        found = _find(engine, message_id)
        if found is None:
            raise
        return Stored(found, message_id, True)


def _find(engine: Engine, message_id: str) -> int | None:
    with session_scope(engine) as session:
        return session.exec(select(InboundMessage.id).where(InboundMessage.message_id == message_id)).first()


def _clean(value: str | None) -> str | None:
    """Envelope values come from an MTA command line or an SMTP dialogue: no control characters."""
    if value is None:
        return None
    return "".join(ch for ch in value if ch.isprintable())[:998]
