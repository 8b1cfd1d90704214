"""What the console shows of the audience: index-backed search, one person's record, pending
signups and the bounce and complaint evidence.

Search is by prefix (of the address, the name or the organisation, case-folded)
so each part is a range scan of an index (migration 0016 adds lower(name) and
lower(organisation)); a substring search would read all 100,000 rows per page.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from bulletin.audience.links import Links
from bulletin.audience.notices import queue_notice
from bulletin.audience.optin import confirmation_notice
from bulletin.audience.staff import Profile, profile
from bulletin.db import Paged, page_bounds
from bulletin.errors import NotFound
from bulletin.models import (
    Bounce,
    InboundMessage,
    MailingList,
    Subscriber,
    SubscriberEvent,
    Subscription,
    id_of,
    utcnow,
)
from bulletin.statuses import SubscriptionState

PER_PAGE = 50
MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
COUNT_CAP = 1000


@dataclass(frozen=True)
class PersonRow:
    id: int
    email: str | None
    name: str
    organisation: str
    lists: dict[str, str]


@dataclass(frozen=True)
class PeoplePage:
    total: int
    page: int
    pages: int
    rows: list[PersonRow]
    capped: bool = False  # more than COUNT_CAP matched: the person should narrow the search


def _prefix(column: Any, text: str) -> Any:
    """`column` starts with `text`, as a range the column's index answers (LIKE would not use it)."""
    upper = _past_prefix(text)
    return (column >= text) if upper is None else (column >= text) & (column < upper)


def _past_prefix(text: str) -> str | None:
    """The least string above every string that starts with `text` (both databases compare code points
    here), or None when there is none: U+10FFFF has no successor, and a surrogate cannot be bound."""
    stem = text.rstrip(chr(MAX_CODE_POINT))
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if SURROGATES[0] <= following <= SURROGATES[1]:
        following = SURROGATES[1] + 1
    return stem[:-1] + chr(following)


def _search_columns(session: Session) -> tuple[Any, ...]:
    """Address, lower(name), lower(organisation); on PostgreSQL in the "C" collation, where byte
    order makes a prefix a range (a locale collation skips punctuation) and the indexes of 0016 are."""
    columns: tuple[Any, ...] = (Subscriber.email, func.lower(Subscriber.name), func.lower(Subscriber.organisation))
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        columns = tuple(c.collate("C") for c in columns)
    return columns


def _merged_page(session: Session, columns: tuple[Any, ...], needle: str, page: int, per_page: int) -> list[int]:
    """One page of the matches in (matched value, id) order: each column's index gives its matches
    already sorted, so the three short runs are merged here instead of sorting every match."""
    want = page * per_page
    runs = [session.exec(select(c, Subscriber.id).where(_prefix(c, needle)).order_by(c, Subscriber.id)
                         .limit(want)).all() for c in columns]
    seen: set[int] = set()
    ordered: list[int] = []
    for _key, sid in heapq.merge(*runs):
        if sid not in seen:
            seen.add(sid)
            ordered.append(sid)
    return ordered[(page - 1) * per_page: want]


def search_people(session: Session, text: str = "", *, page: int = 1, per_page: int = PER_PAGE) -> PeoplePage:
    """People whose address, name or organisation starts with `text` (everyone when empty).

    Answered from the three indexes alone (no erased_at test: erasure blanks all three),
    and a search counts at most COUNT_CAP matches, so a broad prefix costs a few
    milliseconds on 100,000 people; `total` is then COUNT_CAP + 1, shown as "more than".
    """
    needle = text.strip().lower()[:200]
    if needle:
        columns = _search_columns(session)
        matches = select(Subscriber.id).where(or_(*(_prefix(c, needle) for c in columns)))
        total = int(session.exec(select(func.count()).select_from(matches.limit(COUNT_CAP + 1).subquery())).one())
        page, pages = page_bounds(min(total, COUNT_CAP), page, per_page)
        ids = _merged_page(session, columns, needle, page, per_page)
    else:
        everyone = select(Subscriber.id).where(col(Subscriber.email).is_not(None))  # erased: no address
        total = int(session.exec(select(func.count()).select_from(everyone.subquery())).one())
        page, pages = page_bounds(total, page, per_page)
        ids = list(session.exec(everyone.order_by(Subscriber.id).offset((page - 1) * per_page)
                                .limit(per_page)).all())
    people = {row[0]: row for row in session.exec(
        select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.organisation)
        .where(col(Subscriber.id).in_(ids))).all()}
    lists: dict[int, dict[str, str]] = {i: {} for i in ids}
    for sid, slug, state in session.exec(
            select(Subscription.subscriber_id, MailingList.slug, Subscription.state)
            .join(MailingList, MailingList.id == Subscription.list_id)  # type: ignore[arg-type]
            .where(col(Subscription.subscriber_id).in_(ids))).all():
        lists[sid][slug] = state
    rows = [PersonRow(i, people[i][1], people[i][2], people[i][3], lists[i]) for i in ids]
    return PeoplePage(total, page, pages, rows, capped=bool(needle) and total > COUNT_CAP)


@dataclass
class BounceView:
    at: datetime
    permanent: bool
    status_code: str
    diagnostic: str
    issue_id: int | None
    inbound_id: int | None
    verified: bool


@dataclass
class Person:
    """One subscriber's record for the console: profile, consent log (newest first), bounces."""

    profile: Profile
    bounces: list[BounceView] = field(default_factory=list)


def _bounce_view(b: Bounce) -> BounceView:
    # A Bounce row exists only for authenticated evidence (VERP token or our signed Message-ID).
    return BounceView(b.at, b.permanent, b.status_code, b.diagnostic, b.issue_id, b.inbound_id, True)


def person(session: Session, subscriber_id: int) -> Person:
    found = profile(session, f"#{subscriber_id}")
    found.events.sort(key=lambda e: e.at, reverse=True)
    rows = session.exec(select(Bounce).where(Bounce.subscriber_id == subscriber_id)
                        .order_by(col(Bounce.at).desc()).limit(200)).all()
    return Person(found, [_bounce_view(b) for b in rows])


@dataclass(frozen=True)
class PendingSignup:
    subscriber_id: int
    email: str | None
    list: str
    signed_up_at: datetime
    confirmation_sent_at: datetime | None
    ip: str | None
    page: str | None


def pending_signups(session: Session, *, page: int = 1, per_page: int = PER_PAGE) -> Paged[PendingSignup]:
    """One newest-first page of subscriptions waiting for confirmation, with where they came from;
    the page number clamped to the pages."""
    where = Subscription.state == SubscriptionState.PENDING
    total = int(session.exec(select(func.count()).select_from(Subscription).where(where)).one())
    page, pages = page_bounds(total, page, per_page)
    rows = session.exec(
        select(Subscription, Subscriber, MailingList)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)  # type: ignore[arg-type]
        .join(MailingList, MailingList.id == Subscription.list_id)  # type: ignore[arg-type]
        .where(where).order_by(col(Subscription.created_at).desc())
        .offset((page - 1) * per_page).limit(per_page)).all()
    out = []
    for sub, person_row, ml in rows:
        ev = session.exec(select(SubscriberEvent).where(SubscriberEvent.subscriber_id == sub.subscriber_id,
                                                        col(SubscriberEvent.ip).is_not(None))
                          .order_by(col(SubscriberEvent.at).desc())).first()
        where_from = str((ev.detail or {}).get("page") or (ev.detail or {}).get("referrer") or "") if ev else ""
        out.append(PendingSignup(sub.subscriber_id, person_row.email, ml.slug, sub.created_at,
                                 sub.confirmation_sent_at, ev.ip if ev else None, where_from or None))
    return Paged(total, page, pages, out)


def resend_confirmation(session: Session, links: Links, subscriber_id: int) -> int:
    """Queue the confirmation link again for every list the person is pending on; the queued notice's id.

    The notice sender (in the web app, or `bulletin notices send`) mails it, so the console never
    waits on a mail server.
    """
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or not subscriber.email:
        raise NotFound(f"no subscriber #{subscriber_id}")
    pending = session.exec(select(Subscription, MailingList)
                           .join(MailingList, MailingList.id == Subscription.list_id)  # type: ignore[arg-type]
                           .where(Subscription.subscriber_id == subscriber_id,
                                  Subscription.state == SubscriptionState.PENDING)).all()
    if not pending:
        raise NotFound("nothing pending to confirm", where=f"subscriber #{subscriber_id}")
    notice = confirmation_notice(links, subscriber.email, subscriber_id, [m for _s, m in pending], None)
    row = queue_notice(session, notice, kind="confirm", subscriber_id=subscriber_id)
    for sub, _m in pending:
        sub.confirmation_sent_at = utcnow()
        session.add(sub)
    session.flush()
    return id_of(row)


@dataclass(frozen=True)
class Evidence:
    """A bounce or complaint: verified ones changed a subscription, unverified ones are only stored."""

    at: datetime
    kind: str  # hard bounce, soft bounce, complaint
    subscriber_id: int | None
    detail: str
    inbound_id: int | None
    verified: bool


def bounces_and_complaints(session: Session, *, limit: int = PER_PAGE) -> list[Evidence]:
    out = [Evidence(b.at, "hard bounce" if b.permanent else "soft bounce", b.subscriber_id,
                    f"{b.status_code} {b.diagnostic}".strip()[:300], b.inbound_id, True)
           for b in session.exec(select(Bounce).order_by(col(Bounce.at).desc()).limit(limit)).all()]
    out += [Evidence(e.at, "complaint", e.subscriber_id, str((e.detail or {}).get("feedback_type", "")),
                     None, True)
            for e in session.exec(select(SubscriberEvent).where(SubscriberEvent.kind == "complaint")
                                  .order_by(col(SubscriberEvent.at).desc()).limit(limit)).all()]
    out += [Evidence(m.received_at, f"{m.classification} (unverified)", None, (m.error or "")[:300], id_of(m),
                     False)
            for m in session.exec(select(InboundMessage).where(
                col(InboundMessage.classification).in_(("bounce", "complaint")),
                col(InboundMessage.subscriber_id).is_(None))
                .order_by(col(InboundMessage.received_at).desc()).limit(limit)).all()]
    return sorted(out, key=lambda e: e.at, reverse=True)[:limit]


def subscriber_id_of(session: Session, who: str) -> int:
    """An id from an address or `#id`, for forms that name a person."""
    from bulletin.audience.staff import resolve

    return id_of(resolve(session, who))
