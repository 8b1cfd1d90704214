"""The public archive (read by the web shell): sent issues of lists with `archive_public`, newest first.

An issue is in the archive once a send of it to a public list has started
(status sending or done) or any delivery of such a send is marked sent (or
was, before `bulletin db compact` folded the rows away); a
built but unsent issue, or one sent only to members-only lists, stays private.
The page is `Compiled.web_html`, the same render the email came from.
Each public list also has its own page and Atom feed (`delivery/feed.py`);
a signed per-recipient view-online link (`view_page`) opens the copy of any
issue, public or members-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, func, or_
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


def _delivered():  # type: ignore[no-untyped-def]
    """A message of the send went: a sent row, or sent rows compacted away (`send.compacted_sent`).

    Only the send's own rows count: an issue compacted after a send to another
    list must not enter this list's archive through that list's messages.
    """
    return or_(exists().where(Delivery.send_id == Send.id, Delivery.state == DeliveryState.SENT),
               Send.compacted_sent > 0)


def _public_sent_issue_ids():  # type: ignore[no-untyped-def]
    delivered = _delivered()
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


# Per-list archive and feed ------------------------------------------------------------------------
@dataclass(frozen=True)
class ListEntry:
    slug: str
    title: str
    subject: str
    issue_date: str
    sent_at: datetime


@dataclass(frozen=True)
class ListArchive:
    slug: str
    name: str
    description: str
    from_name: str
    public_signup: bool
    issues: tuple[ListEntry, ...]  # newest first

    @property
    def updated(self) -> datetime | None:
        return max((e.sent_at for e in self.issues), default=None)


def public_list_archive(session: Session, list_slug: str) -> ListArchive:
    """The sent issues of one list with `archive_public`, newest first; NotFound for any other list."""
    ml = session.exec(select(MailingList).where(MailingList.slug == list_slug)).first()
    if ml is None or not ml.archive_public:
        raise NotFound("no such archive", where=f"list {list_slug!r}")
    delivered = _delivered()
    sent_at = func.min(func.coalesce(Send.started_at, Send.created_at))
    stmt = (
        select(IssueRecord.slug, IssueRecord.title, IssueRecord.subject, IssueRecord.issue_date, sent_at)
        .join(Send, Send.issue_id == IssueRecord.id)
        .where(Send.list_id == ml.id, or_(Send.status.in_(SENT_STATUSES), delivered))  # type: ignore[attr-defined]
        .group_by(IssueRecord.id, IssueRecord.slug, IssueRecord.title, IssueRecord.subject, IssueRecord.issue_date)
        .order_by(IssueRecord.issue_date.desc(), IssueRecord.id.desc())  # type: ignore[attr-defined]
    )
    entries = tuple(ListEntry(slug, title, subject, date, _aware(at))
                    for slug, title, subject, date, at in session.exec(stmt).all())  # type: ignore[call-overload]
    return ListArchive(ml.slug, ml.name, ml.description, ml.from_name, ml.public_signup, entries)


def _aware(value: datetime | str) -> datetime:
    """min() over a UTCDateTime column comes back naive or as text on SQLite; make it aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def view_page(session: Session, issue_id: int) -> str:
    """The web copy of an issue for a signed view-online link: any list, public or not."""
    record = session.get(IssueRecord, issue_id)
    if record is None:
        raise NotFound("no such issue", where=f"issue #{issue_id}")
    return Compiled.from_json(record.compiled).web_html
