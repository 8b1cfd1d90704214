"""Who sent this and which issue does it answer: strongest signal first, never a guess.

1. the signed token in `reply+<token>@` (or a VERP `bounces+<token>@`);
2. one of our own Message-IDs in In-Reply-To / References (they are signed too);
   with either, a sender who is another subscriber (a reply-all) is the one who wrote;
3. the sender's address, with the issue taken from the subject when it names one.
A token that has our shape but does not verify stops matching altogether.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.audience.links import Links
from bulletin.audience.subscribers import find_subscriber
from bulletin.errors import AddressError
from bulletin.inbound.reading.addresses import AddressTokens
from bulletin.inbound.reading.parse import header, message_ids, sender
from bulletin.models import IssueRecord, Subscriber
from bulletin.render.compiled import Compiled

_PREFIX_RE = re.compile(r"^\s*(?:(?:re|aw|sv|vs|antw|antwort|réf|rif|fw|fwd|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_TAG_RE = re.compile(r"\s*\[([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})\]\s*$")


@dataclass(frozen=True)
class Match:
    subscriber_id: int
    issue_id: int | None
    method: str  # reply-token, bounce-token, in-reply-to, sender+reply-token, sender+in-reply-to, sender+subject, sender


def match_sender(session: Session, msg: Message, links: Links, tokens: AddressTokens) -> Match | None:
    """Match a reply or auto-reply to a subscriber (and issue when known); None when unsure."""
    if tokens.forged:
        return None
    if tokens.reply is not None:
        return _writer(session, msg, _checked(session, tokens.reply, "reply-token"))
    if tokens.bounce is not None:
        return _checked(session, tokens.bounce, "bounce-token")
    found = match_message_ids(session, links, header(msg, "In-Reply-To") + " " + header(msg, "References"))
    if found is not None:
        return _writer(session, msg, found)
    return match_address(session, sender(msg)[1], header(msg, "Subject"))


def _writer(session: Session, msg: Message, found: Match | None) -> Match | None:
    """A reply-all: the token or Message-ID is the first reader's, but another subscriber wrote this.

    The words are theirs, so the feedback is filed under them (the issue still comes from the
    token). A sender we do not know keeps the token's subscriber: people write from a second address.
    """
    if found is None:
        return None
    writer = _subscriber_by_address(session, sender(msg)[1])
    if writer is None or writer.id is None or writer.id == found.subscriber_id:
        return found
    return Match(writer.id, found.issue_id, "sender+" + found.method)


def match_message_ids(session: Session, links: Links, value: str) -> Match | None:
    """The newest of our Message-IDs in a header value (In-Reply-To first, References last)."""
    for mid in reversed(message_ids(value)):
        pair = links.parse_message_id(mid)
        if pair is not None:
            return _checked(session, pair, "in-reply-to")
    return None


def match_address(session: Session, address: str, subject: str = "") -> Match | None:
    subscriber = _subscriber_by_address(session, address)
    if subscriber is None or subscriber.id is None:
        return None
    issue = issue_by_subject(session, subject)
    if issue is not None:
        return Match(subscriber.id, issue.id, "sender+subject")
    return Match(subscriber.id, None, "sender")


def _subscriber_by_address(session: Session, address: str) -> Subscriber | None:
    if "@" not in address:
        return None
    try:
        found = find_subscriber(session, address)
    except AddressError:
        return None
    return found if found is not None and found.email else None


def _checked(session: Session, pair: tuple[int, int], method: str) -> Match | None:
    """A verified token can still name a subscriber since erased, or an issue since deleted."""
    subscriber_id, issue_id = pair
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or not subscriber.email:
        return None
    issue = session.get(IssueRecord, issue_id)
    return Match(subscriber_id, issue.id if issue else None, method)


def bare_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and without the trailing `[anchor]` tag."""
    return _TAG_RE.sub("", _PREFIX_RE.sub("", subject)).strip()


def issue_by_subject(session: Session, subject: str) -> IssueRecord | None:
    bare = bare_subject(subject).lower()
    if not bare:
        return None
    stmt = select(IssueRecord).where(func.lower(IssueRecord.subject) == bare).order_by(IssueRecord.id.desc())
    return session.exec(stmt).first()


def block_anchor(session: Session, issue_id: int | None, subject: str) -> str | None:
    """The block a reply answers: the `[anchor]` tag of the reply button, if that issue has the block."""
    tag = _TAG_RE.search(_PREFIX_RE.sub("", subject))
    if tag is None or issue_id is None:
        return None
    issue = session.get(IssueRecord, issue_id)
    if issue is None:
        return None
    try:
        anchors = {b.anchor for b in Compiled.from_json(issue.compiled).blocks}
    except (ValueError, KeyError, TypeError):
        return None
    return tag.group(1) if tag.group(1) in anchors else None
