"""Where inbound mail comes from: an MTA pipe, a Maildir, an mbox file, an IMAP folder.

Every source hands a batch of raw messages to `ingest_batch` (one commit for
the batch, `inbound_batch_size` messages) and only after that commit marks
them done (moved to cur/ with the Seen flag, or to the IMAP done folder). An
interrupt before the commit leaves them where they were; the next run stores
them again, which the (Message-ID, sha256) key turns into a no-op (or finishes
processing a message stored but not yet processed), and finishes the move.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.errors import ConfigError, NotFound
from bulletin.inbound.acting.batch import RawMail, ingest_batch
from bulletin.inbound.acting.pipeline import IngestResult


@dataclass
class SourceItem:
    """One message from a source; `done` runs after the message is safely stored."""

    label: str
    raw: bytes
    done: Callable[[], None] | None = None


def ingest_items(engine: Engine, settings: Settings, items: Iterator[SourceItem], *,
                 source: str) -> Iterator[tuple[SourceItem, IngestResult]]:
    """Store and process in batches; each item's `done` runs only after its batch is committed."""
    batch: list[SourceItem] = []
    for item in items:
        batch.append(item)
        if len(batch) >= settings.inbound_batch_size:
            yield from _flush(engine, settings, batch, source)
            batch = []
    if batch:
        yield from _flush(engine, settings, batch, source)


def _flush(engine: Engine, settings: Settings, batch: list[SourceItem],
           source: str) -> Iterator[tuple[SourceItem, IngestResult]]:
    results = ingest_batch(engine, settings, [RawMail(item.raw, source) for item in batch])
    for item in batch:
        if item.done is not None:
            item.done()
    yield from zip(batch, results, strict=True)


def maildir_items(path: Path) -> Iterator[SourceItem]:
    """Messages in new/, and in cur/ those not yet flagged Seen; done = move to cur/ with S."""
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        raise NotFound("not a Maildir (no new/ and cur/ folders)", where=str(path))
    for sub in ("new", "cur"):
        for entry in sorted((path / sub).iterdir()):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            base, _, flags = entry.name.partition(":2,")
            if sub == "cur" and "S" in flags:
                continue
            yield SourceItem(str(entry), entry.read_bytes(), _seen(entry, path / "cur" / f"{base}:2,{flags}S"))


def _seen(src: Path, dst: Path) -> Callable[[], None]:
    def move() -> None:
        os.replace(src, dst)

    return move


def mbox_items(path: Path) -> Iterator[SourceItem]:
    """Every message of an mbox file, left in place (mbox has no per-message done state worth trusting)."""
    if not path.is_file():
        raise NotFound("no such mbox file", where=str(path))
    box = mailbox.mbox(str(path), create=False)
    try:
        for key in box.iterkeys():
            yield SourceItem(f"{path}#{key}", box.get_bytes(key))
    finally:
        box.close()


def stdin_item(data: bytes) -> SourceItem:
    return SourceItem("-", data)


def imap_poll(engine: Engine, settings: Settings, *, limit: int | None = None) -> Iterator[IngestResult]:
    """Store every message of the IMAP folder in batches; each batch moves to the done folder after its commit."""
    from imap_tools import MailBox, MailBoxUnencrypted

    if not settings.imap_username or not settings.imap_password:
        raise ConfigError("setting 'imap_username'/'imap_password' (BULLETIN_IMAP_USERNAME): not set")
    box_cls = MailBox if settings.imap_ssl else MailBoxUnencrypted
    with box_cls(settings.imap_host, settings.imap_port).login(
            settings.imap_username, settings.imap_password, initial_folder=settings.imap_folder) as box:
        if not box.folder.exists(settings.imap_done_folder):
            box.folder.create(settings.imap_done_folder)
        uids = box.uids("ALL")[:limit] if limit is not None else box.uids("ALL")
        for start in range(0, len(uids), settings.inbound_batch_size):
            chunk, raws = uids[start:start + settings.inbound_batch_size], []
            for uid in chunk:
                typ, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((part[1] for part in data or [] if isinstance(part, tuple) and len(part) > 1), None)
                if typ == "OK" and raw is not None:
                    raws.append((uid, raw))
            results = ingest_batch(engine, settings, [RawMail(raw, "imap") for _, raw in raws])
            if raws:
                box.move([uid for uid, _ in raws], settings.imap_done_folder)  # only after the commit
            yield from results
