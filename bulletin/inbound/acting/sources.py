"""Where inbound mail comes from: an MTA pipe, a Maildir, an mbox file, an IMAP folder.

Every source hands raw bytes to `ingest` and only then marks the message done
(moved to cur/ with the Seen flag, or to the IMAP done folder). An interrupt
between the two leaves the message where it was; the next run stores it again,
which the Message-ID key turns into a no-op, and finishes the move.
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
from bulletin.inbound.acting.pipeline import IngestResult, ingest


@dataclass
class SourceItem:
    """One message from a source; `done` runs after the message is safely stored."""

    label: str
    raw: bytes
    done: Callable[[], None] | None = None


def ingest_items(engine: Engine, settings: Settings, items: Iterator[SourceItem], *,
                 source: str) -> Iterator[tuple[SourceItem, IngestResult]]:
    for item in items:
        result = ingest(engine, settings, item.raw, source=source)
        if item.done is not None:
            item.done()
        yield item, result


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
    """Store every message of the IMAP folder, then move it to the done folder, one at a time."""
    from imap_tools import MailBox, MailBoxUnencrypted

    if not settings.imap_username or not settings.imap_password:
        raise ConfigError("setting 'imap_username'/'imap_password' (BULLETIN_IMAP_USERNAME): not set")
    box_cls = MailBox if settings.imap_ssl else MailBoxUnencrypted
    with box_cls(settings.imap_host, settings.imap_port).login(
            settings.imap_username, settings.imap_password, initial_folder=settings.imap_folder) as box:
        if not box.folder.exists(settings.imap_done_folder):
            box.folder.create(settings.imap_done_folder)
        for n, uid in enumerate(box.uids("ALL")):
            if limit is not None and n >= limit:
                return
            typ, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in data or [] if isinstance(part, tuple) and len(part) > 1), None)
            if typ != "OK" or raw is None:
                continue
            result = ingest(engine, settings, raw, source="imap")
            box.move(uid, settings.imap_done_folder)
            yield result
