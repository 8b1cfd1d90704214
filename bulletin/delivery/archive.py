"""The public archive (read by the web shell): sent issues of lists with `archive_public`, newest first.

An issue is in the archive once a send of it to a public list has started
(status sending or done) or any delivery of such a send is marked sent; a
built but unsent issue, or one sent only to members-only lists, stays private.
The page is `Compiled.web_html`, the same render the email came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, or_
from sqlmodel import Session, select

from bulletin.errors import NotFound
from bulletin.models import Delivery, IssueRecord, MailingList, Send
from bulletin.render.compiled import Compiled
from bulletin.statuses import DeliveryState, SendStatus

SENT_STATUSES = (SendStatus.SENDING, SendStatus.DONE)


@dataclass(frozen=True)
class ArchiveEntry:
    slug: str
    title: str
    subject: str
    issue_date: str


def _public_sent_issue_ids():  # type: ignore[no-untyped-def]
    delivered = exists().where(Delivery.send_id == Send.id, Delivery.state == DeliveryState.SENT)
    return (
        select(Send.issue_id)
        .join(MailingList, MailingList.id == Send.list_id)
        .where(MailingList.archive_public.is_(True))  # type: ignore[attr-defined]
        .where(or_(Send.status.in_(SENT_STATUSES), delivered))  # type: ignore[attr-defined]
    )


def public_issues(session: Session) -> list[ArchiveEntry]:
    stmt = (
        select(IssueRecord.slug, IssueRecord.title, IssueRecord.subject, IssueRecord.issue_date)
        .where(IssueRecord.id.in_(_public_sent_issue_ids()))  # type: ignore[union-attr]
        .order_by(IssueRecord.issue_date.desc(), IssueRecord.id.desc())  # type: ignore[attr-defined]
    )
    return [ArchiveEntry(*row) for row in session.exec(stmt).all()]


def issue_page(session: Session, slug: str) -> str:
    """The web page of one archived issue; NotFound for unknown, unsent or members-only issues."""
    stmt = select(IssueRecord).where(IssueRecord.slug == slug,
                                     IssueRecord.id.in_(_public_sent_issue_ids()))  # type: ignore[union-attr]
    record = session.exec(stmt).first()
    if record is None:
        raise NotFound("no such issue in the archive", where=f"issue {slug!r}")
    return Compiled.from_json(record.compiled).web_html
