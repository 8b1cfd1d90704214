"""Reading the audience: lists, subscribers, suppression and who gets the next send.

Mutations live in `lifecycle` because each of them must write a consent event;
import them from there. `sendable` is the one rule for who may be mailed, used
here and by the delivery ledger's claim.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func
from sqlmodel import Session, select

from bulletin.audience.addresses import hash_normalised, keyed_hash, lookup_form, normalise_address
from bulletin.db import MAX_ROW_ID, address_key_of
from bulletin.errors import AddressError, NotFound
from bulletin.models import MailingList, Subscriber, SubscriberEvent, Subscription, Suppression
from bulletin.statuses import SubscriptionState

__all__ = [
    "sendable",
    "get_list",
    "find_subscriber",
    "get_subscriber",
    "is_suppressed",
    "keyed_address_hash",
    "confirmed_subscribers",
    "subscriptions_of",
    "events_of",
    "state_counts",
]

def get_list(session: Session, slug: str) -> MailingList:
    """The list with this slug; NotFound names the slug (did you run `bulletin lists sync`?)."""
    found = session.exec(select(MailingList).where(MailingList.slug == slug)).first()
    if found is None:
        raise NotFound("no such list (run `bulletin lists sync` after editing lists.toml)", where=f"list {slug!r}")
    return found


def get_subscriber(session: Session, subscriber_id: int) -> Subscriber:
    found = session.get(Subscriber, subscriber_id) if 0 < subscriber_id <= MAX_ROW_ID else None
    if found is None:
        raise NotFound("no such subscriber", where=f"subscriber #{subscriber_id}")
    return found


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber holding this address (any spelling that normalises the same), or None.

    Erased people are not found: their row keeps only the hash, for suppression.
    """
    try:
        key = normalise_address(email)
    except AddressError:
        return None
    stmt = select(Subscriber).where(Subscriber.email_hash == hash_normalised(key),
                                    Subscriber.email.is_not(None))
    return session.exec(stmt).first()


def is_suppressed(session: Session, email: str) -> bool:
    """True when the address is on the blocklist (also after the person was erased)."""
    form = lookup_form(email)
    legacy = hash_normalised(form)
    # The keyed hash, and the plain one that databases from before keyed hashes still hold.
    digests = [keyed_hash(form, address_key_of(session)), legacy]
    stmt = select(func.count()).select_from(Suppression).where(Suppression.email_hash.in_(digests))  # type: ignore[attr-defined]
    if session.exec(stmt).one():
        return True
    stmt2 = select(func.count()).select_from(Subscriber).where(
        Subscriber.email_hash == legacy, Subscriber.suppressed.is_(True)
    )
    return bool(session.exec(stmt2).one())


def keyed_address_hash(session: Session, email: str) -> str:
    """The address as stored anywhere but its live row (suppressions, an erased row, rate limits).

    Keyed, so it confirms nothing to whoever holds a dump and a guess without the key too.
    """
    return keyed_hash(lookup_form(email), address_key_of(session))


def sendable(list_id: int) -> ColumnElement[bool]:
    """Who may be mailed on a list: confirmed there, not suppressed, not erased.

    A condition over `Subscriber` and `Subscription`, so the statement using it
    must have both (the subscription joined for this subscriber). With an outer
    join and no subscription row it is NULL, which is not true either.
    """
    return and_(
        Subscription.list_id == list_id,
        Subscription.state == SubscriptionState.CONFIRMED,
        Subscriber.suppressed.is_(False),
        Subscriber.email.is_not(None),
    )


def confirmed_subscribers(session: Session, list_id: int) -> list[tuple[int, str, str]]:
    """(subscriber_id, email, name) of everyone a send to this list goes to, by id.

    Suppressed and erased people are left out even if a subscription row still
    says confirmed: the blocklist wins over any list state.
    """
    stmt = (
        select(Subscriber.id, Subscriber.email, Subscriber.name)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(sendable(list_id))
        .order_by(Subscriber.id)
    )
    return [(int(i), str(e), str(n or "")) for i, e, n in session.exec(stmt).all()]


def subscriptions_of(session: Session, subscriber_id: int) -> list[tuple[Subscription, MailingList]]:
    stmt = (
        select(Subscription, MailingList)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(MailingList.slug)
    )
    return [(s, m) for s, m in session.exec(stmt).all()]


def events_of(session: Session, subscriber_id: int) -> list[SubscriberEvent]:
    """The consent log of one person, oldest first."""
    stmt = (
        select(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == subscriber_id)
        .order_by(SubscriberEvent.at, SubscriberEvent.id)
    )
    return list(session.exec(stmt).all())


def state_counts(session: Session) -> dict[int, dict[str, int]]:
    """{list_id: {state: count}} for every list with at least one subscription."""
    stmt = select(Subscription.list_id, Subscription.state, func.count()).group_by(
        Subscription.list_id, Subscription.state
    )
    out: dict[int, dict[str, int]] = {}
    for list_id, state, count in session.exec(stmt).all():
        out.setdefault(int(list_id), {})[str(state)] = int(count)
    return out
