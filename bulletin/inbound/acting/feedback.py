"""Feedback records: a matched reply, cleaned, and the staff workflow around it.

The record is recomputable from the stored raw mail, except for what staff
added (status, tags, answer), which a reprocess keeps.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr

from sqlalchemy import update
from sqlmodel import Session, col, select

from bulletin.audience.addresses import has_control_chars
from bulletin.audience.links import Links
from bulletin.audience.lists import sender_name
from bulletin.audience.notices import queue_notice
from bulletin.errors import NotFound, StateError
from bulletin.inbound.acting.match import Match, block_anchor
from bulletin.inbound.acting.rows import InboundRow
from bulletin.inbound.reading.clean import visible_text
from bulletin.inbound.reading.parse import (
    attachments,
    body_text,
    header,
    message_ids,
    parse_bytes,
    sender,
)
from bulletin.messenger import Notice, format_address
from bulletin.models import (
    Delivery,
    Feedback,
    InboundMessage,
    IssueRecord,
    MailingList,
    QueuedNotice,
    Send,
    Subscriber,
    utcnow,
)
from bulletin.statuses import FeedbackStatus

STATUSES = FeedbackStatus.ALL


def record_feedback(session: Session, row: InboundRow, msg: Message, found: Match) -> Feedback:
    """Create or refresh the feedback record of a matched reply."""
    assert row.id is not None
    full = body_text(msg)
    subject = header(msg, "Subject")[:998]
    fb = session.exec(select(Feedback).where(Feedback.inbound_id == row.id)).first()
    if fb is None:
        fb = Feedback(inbound_id=row.id, received_at=row.received_at)
    fb.subscriber_id = found.subscriber_id
    fb.issue_id = found.issue_id
    fb.block_anchor = block_anchor(session, found.issue_id, subject)
    fb.from_address = sender(msg)[1][:320]
    fb.subject = subject
    fb.full_text = full
    fb.visible_text = visible_text(full)
    fb.attachments = [a.as_dict() for a in attachments(msg)]
    session.add(fb)
    session.flush()
    return fb


@dataclass(frozen=True)
class FeedbackView:
    """A feedback record with the names staff read instead of ids."""

    id: int
    status: str
    received_at: str
    subscriber_id: int | None
    email: str
    name: str
    issue: str
    block: str
    subject: str
    visible_text: str
    full_text: str
    attachments: list[dict[str, object]]
    tags: list[str]
    answered_at: str
    answer_state: str = ""  # the queued answer's state: queued, sending, sent, failed ("" when none)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _view(session: Session, fb: Feedback) -> FeedbackView:
    assert fb.id is not None
    sub = session.get(Subscriber, fb.subscriber_id) if fb.subscriber_id else None
    issue = session.get(IssueRecord, fb.issue_id) if fb.issue_id else None
    notice = session.get(QueuedNotice, fb.answer_notice_id) if fb.answer_notice_id else None
    return FeedbackView(
        id=fb.id, status=fb.status, received_at=fb.received_at.isoformat(timespec="seconds"),
        subscriber_id=fb.subscriber_id, email=(sub.email if sub else None) or fb.from_address,
        name=sub.name if sub else "", issue=issue.slug if issue else "", block=fb.block_anchor or "",
        subject=fb.subject, visible_text=fb.visible_text, full_text=fb.full_text,
        attachments=list(fb.attachments), tags=list(fb.tags),
        answered_at=fb.answered_at.isoformat(timespec="seconds") if fb.answered_at else "",
        answer_state=notice.state if notice else ("sent" if fb.answer_message_id else ""),
    )


def list_feedback(session: Session, *, issue: str | None = None, status: str | None = None,
                  tag: str | None = None) -> list[FeedbackView]:
    stmt = select(Feedback).order_by(Feedback.received_at, Feedback.id)
    if status is not None:
        _check_status(status)
        stmt = stmt.where(Feedback.status == status)
    if issue is not None:
        record = session.exec(select(IssueRecord).where(IssueRecord.slug == issue)).first()
        if record is None:
            raise NotFound(f"no issue {issue!r}", where="--issue")
        stmt = stmt.where(Feedback.issue_id == record.id)
    views = [_view(session, fb) for fb in session.exec(stmt).all()]
    return [v for v in views if tag is None or tag in v.tags]


def get_feedback(session: Session, feedback_id: int) -> Feedback:
    fb = session.get(Feedback, feedback_id)
    if fb is None:
        raise NotFound(f"no feedback #{feedback_id}")
    return fb


def show_feedback(session: Session, feedback_id: int) -> FeedbackView:
    return _view(session, get_feedback(session, feedback_id))


def mark_feedback(session: Session, feedback_id: int, *, status: str | None = None,
                  add_tags: list[str] | None = None, remove_tags: list[str] | None = None) -> FeedbackView:
    """Set the status and edit tags; tags are trimmed, lowercased and kept unique."""
    fb = get_feedback(session, feedback_id)
    if status is not None:
        _check_status(status)
        fb.status = status
    tags = [t for t in fb.tags if t not in {x.strip().lower() for x in remove_tags or []}]
    for tag in add_tags or []:
        clean = tag.strip().lower()
        if clean and clean not in tags:
            tags.append(clean[:64])
    fb.tags = tags
    session.add(fb)
    session.flush()
    return _view(session, fb)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise StateError(f"unknown status {status!r} (expected one of {', '.join(STATUSES)})", where="--status")


CSV_FIELDS = ("id", "status", "received_at", "email", "name", "issue", "block", "subject", "visible_text",
              "tags", "attachments", "answered_at")


def export_csv(views: list[FeedbackView]) -> str:
    """CSV for a spreadsheet; cells that a spreadsheet would run as a formula are quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for v in views:
        row = v.as_dict()
        row["tags"] = ";".join(v.tags)
        row["attachments"] = ";".join(str(a.get("filename", "")) for a in v.attachments)
        writer.writerow([_safe_cell(str(row[f])) for f in CSV_FIELDS])
    return out.getvalue()


def _references(original: InboundMessage) -> str:
    """The thread so far (RFC 5322 3.6.4): their References, then their own Message-ID."""
    earlier = message_ids(header(parse_bytes(original.raw), "References"))[-20:]
    return " ".join(dict.fromkeys([*earlier, original.message_id]))


def _safe_cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def answer_feedback(session: Session, feedback_id: int, text: str, *,
                    from_addr: str | None = None, links: Links | None = None) -> FeedbackView:
    """Mark the record answered and queue the answer, threaded under their reply, in the caller's transaction.

    The mail is a queued notice (`audience.notices`), sent by the notice sender only after this
    transaction commits: a commit that fails sends nothing. One answer per feedback: the mark is
    a conditional update (`answered_at` still empty), so of two people answering at once the
    second waits for the first's row lock (PostgreSQL; SQLite has one writer) and is refused.
    """
    where = f"feedback #{feedback_id}"
    fb = get_feedback(session, feedback_id)
    sub = session.get(Subscriber, fb.subscriber_id) if fb.subscriber_id else None
    if sub is None or not sub.email:
        raise StateError("only feedback matched to a subscriber can be answered", where=where)
    if not text.strip():
        raise StateError("the answer is empty", where=where)
    if from_addr is not None and (has_control_chars(from_addr) or "@" not in parseaddr(from_addr)[1]):
        raise StateError(f"not a usable From address: {from_addr!r} (e.g. 'Team <team@example.org>')",
                         where="--from")
    _claim_answer(session, fb)
    original = session.get(InboundMessage, fb.inbound_id)
    subject = fb.subject if fb.subject.lower().startswith("re:") else f"Re: {fb.subject}".strip()
    author, reply_to = _answer_identity(session, fb, sub, links)
    if from_addr is not None:
        author = from_addr
    notice = Notice(to=sub.email, subject=subject, text=text, from_addr=author, reply_to=reply_to,
                    in_reply_to=original.message_id if original else None,
                    references=_references(original) if original else None)
    row = queue_notice(session, notice, kind="answer", subscriber_id=sub.id,
                       envelope_from=parseaddr(from_addr)[1] if from_addr else None)
    session.flush()
    fb.answer_notice_id = row.id
    session.add(fb)
    session.flush()
    return _view(session, fb)


def _answer_identity(session: Session, fb: Feedback, sub: Subscriber,
                     links: Links | None) -> tuple[str | None, str | None]:
    """From and Reply-To of the answer, as the issue they wrote back to had them.

    From: the list they had the issue through (found in the ledger), not a
    system address they never saw. Reply-To: their own signed reply address for
    that issue, as in the issue, so a reply to the answer is filed as feedback
    again; a list's `reply_to` or From would take it to a mailbox the inbox may
    never read. (None, None) parts fall back to the notice defaults: no issue,
    or a ledger compacted since.
    """
    if fb.issue_id is None or sub.id is None:
        return None, None
    list_id = session.exec(select(Send.list_id).join(Delivery, col(Delivery.send_id) == col(Send.id)).where(
        Delivery.issue_id == fb.issue_id, Delivery.subscriber_id == sub.id).limit(1)).first()
    ml = session.get(MailingList, list_id) if list_id is not None else None
    organisation = links.settings.organisation if links is not None else ""
    name = sender_name(ml.from_name, ml.organisation or organisation) if ml is not None else ""
    author = format_address(name, ml.from_address) if ml is not None else None
    if links is not None:
        return author, format_address(name, links.reply_address(sub.id, fb.issue_id))
    return author, ml.reply_to if ml is not None else None


def _claim_answer(session: Session, fb: Feedback) -> None:
    """Set status and answered_at only where no answer was recorded yet; StateError (saying when) otherwise."""
    claimed = session.exec(  # type: ignore[call-overload]
        update(Feedback).where(col(Feedback.id) == fb.id, col(Feedback.answered_at).is_(None))
        .values(status=FeedbackStatus.ANSWERED, answered_at=utcnow())
        .execution_options(synchronize_session=False))
    session.refresh(fb)  # the row as the update left it, or as the answer that came first left it
    if claimed.rowcount != 1:
        when = fb.answered_at.strftime("%Y-%m-%d %H:%M UTC") if fb.answered_at else "just now"
        raise StateError(f"already answered ({when}); the answer was not sent again", where=f"feedback #{fb.id}")
