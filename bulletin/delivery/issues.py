"""Issues as the database knows them: the compiled render every send of the issue fills.

Storing `Compiled` (not the content folder) means a resume days later, or a
worker on another machine, sends exactly what was checked and published.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from bulletin.errors import NotFound
from bulletin.models import IssueRecord, utcnow

if TYPE_CHECKING:
    from bulletin.render.compiled import Compiled


def publish_issue(session: Session, compiled: Compiled) -> IssueRecord:
    """Insert or update the issue with this slug; the id stays, so Message-IDs stay stable."""
    data = compiled.to_json()
    digest = hashlib.sha256(data.encode()).hexdigest()
    record = session.exec(select(IssueRecord).where(IssueRecord.slug == compiled.slug)).first()
    if record is None:
        record = IssueRecord(slug=compiled.slug, title=compiled.title, subject=compiled.subject,
                             issue_date=compiled.issue_date, compiled=data, content_hash=digest)
    elif record.content_hash != digest:
        record.title, record.subject, record.issue_date = compiled.title, compiled.subject, compiled.issue_date
        record.compiled, record.content_hash, record.updated_at = data, digest, utcnow()
    session.add(record)
    session.flush()
    return record


def get_issue(session: Session, slug: str) -> IssueRecord:
    record = session.exec(select(IssueRecord).where(IssueRecord.slug == slug)).first()
    if record is None:
        raise NotFound("no such issue has been published (run `bulletin send` first)", where=f"issue {slug!r}")
    return record


def compiled_of(record: IssueRecord) -> Compiled:
    # Imported here: `status` reads issues through `get_issue` and needs no render.
    from bulletin.render.compiled import Compiled

    return Compiled.from_json(record.compiled)
