"""Erasure as one unit of work, whoever asks: the console, the CLI or the person's own mailed link.

It lives outside the stages because it needs two of them, in this order: the
audience erases the person's rows, then delivery removes the copies of what was
mailed to them. The audience stage never reaches into delivery (delivery reads
the audience, not the other way round), so the step that joins them sits here,
above both, where every shell's erase can call it.

Erasing a person takes three steps in two places, and a shell that makes them
itself can forget one (the console once did, leaving every mail sent to the
person in the Maildir outbox):
1. the rows: the caller's `erase` (`audience.staff.erase_address`,
   `audience.data_requests.erase_by_link`);
2. the outbox copies (`delivery.outbox`), found through the delivery ledger in
   the same transaction, after the rows: an erase that fails leaves the files
   too. The files go before the commit, so a commit that then fails leaves the
   rows for a retry, which finds no copies left to remove;
3. after the commit, SQLite's WAL, which holds the old pages until a checkpoint
   folds them in (a checkpoint cannot run inside a transaction).
So this owns its transaction, as `importer` and `notices.send_due` do.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bulletin.config import Settings
from bulletin.db import forget_old_pages, session_scope
from bulletin.delivery.outbox import remove_copies

__all__ = ["Eraser", "erase_everywhere"]

Eraser = Callable[[Session], int]


def erase_everywhere(engine: Engine, settings: Settings, erase: Eraser) -> int:
    """Run `erase` (which erases one person in the session and returns their id), then steps 2 and 3."""
    with session_scope(engine) as session:
        subscriber_id = erase(session)
        remove_copies(settings, session, subscriber_id)
    forget_old_pages(engine)
    return subscriber_id
