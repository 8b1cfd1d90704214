"""Changing the audience: every change of a subscription is an event (the consent log).

States: pending -> confirmed -> unsubscribed | bounced | complained; plus a
per-person suppression (blocklist across all lists) that survives erasure as a
hash. Functions here take an explicit session and never commit: the caller's
unit of work decides, so a web request or an import batch is all-or-nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from bulletin.audience.addresses import (
    address_hash,
    hash_normalised,
    normalise_address,
)
from bulletin.audience.erasure import scrub_delivery, scrub_mail
from bulletin.audience.notices import forget_notices
from bulletin.audience.subscribers import (
    find_subscriber,
    get_subscriber,
    is_suppressed,
    keyed_address_hash,
)
from bulletin.audience.text import check_text
from bulletin.errors import NotFound, StateError
from bulletin.logs import log_event
from bulletin.models import (
    MailingList,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    utcnow,
)
from bulletin.statuses import SubscriptionState

__all__ = [
    "subscribe", "confirm", "set_state", "unsubscribe", "mark_bounced",
    "complain", "suppress", "erase", "record_event",
]

S = SubscriptionState
ACTIVE = (S.PENDING, S.CONFIRMED)
SOURCES = ("cli", "import", "web", "inbound", "delivery", "system", "console")


def record_event(
    session: Session, subscriber_id: int, kind: str, *, source: str, actor: str,
    list_id: int | None = None, old_state: str | None = None, new_state: str | None = None,
    ip: str | None = None, user_agent: str | None = None, issue_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> SubscriberEvent:
    """Append one row to the consent log; the only way events are written."""
    if source not in SOURCES:
        raise StateError(f"unknown event source {source!r} (expected one of {', '.join(SOURCES)})",
                         where=f"subscriber #{subscriber_id}")
    event = SubscriberEvent(
        subscriber_id=subscriber_id, list_id=list_id, kind=kind, old_state=old_state,
        new_state=new_state, source=source, actor=actor or "", ip=ip, user_agent=user_agent,
        issue_id=issue_id, detail=dict(detail or {}),
    )
    session.add(event)
    log_event("bulletin.audience", "subscriber.event", subscriber_id=subscriber_id, kind=kind,
              list_id=list_id, old_state=old_state, new_state=new_state, source=source,
              issue_id=issue_id)
    return event


def _subscription(session: Session, subscriber_id: int, list_id: int) -> Subscription | None:
    stmt = select(Subscription).where(
        Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id
    )
    return session.exec(stmt).first()


def set_state(
    session: Session, subscriber_id: int, list_id: int, new_state: str, *, kind: str,
    source: str, actor: str, ip: str | None = None, user_agent: str | None = None,
    issue_id: int | None = None, detail: dict[str, Any] | None = None,
) -> SubscriberEvent | None:
    """Move one subscription to `new_state` (creating it if needed); None when already there."""
    if new_state not in S.ALL:
        raise StateError(f"unknown subscription state {new_state!r}", where=f"subscriber #{subscriber_id}")
    if session.get(MailingList, list_id) is None:
        raise NotFound("no such list", where=f"list #{list_id}")
    get_subscriber(session, subscriber_id)
    sub = _subscription(session, subscriber_id, list_id)
    old = sub.state if sub else None
    if old == new_state:
        return None
    now = utcnow()
    if sub is None:
        sub = Subscription(subscriber_id=subscriber_id, list_id=list_id, state=new_state, created_at=now)
    sub.state = new_state
    sub.updated_at = now
    if new_state == S.CONFIRMED:
        sub.confirmed_at = now
    session.add(sub)
    event = record_event(
        session, subscriber_id, kind, source=source, actor=actor, list_id=list_id,
        old_state=old, new_state=new_state, ip=ip, user_agent=user_agent, issue_id=issue_id,
        detail=detail,
    )
    session.flush()
    return event


def subscribe(
    session: Session, email: str, list_ids: list[int], *, name: str = "", organisation: str = "",
    confirmed: bool, source: str, actor: str, ip: str | None = None, user_agent: str | None = None,
    detail: dict[str, Any] | None = None, resubscribe: bool = False,
) -> Subscriber:
    """Create or update a subscriber and add them to lists: pending, or confirmed when consent is proven.

    Never brings back someone who said no or whose mail said no: suppressed,
    complained and bounced always raise StateError; unsubscribed raises too
    unless `resubscribe=True` (the person themself asked again, e.g. a web
    signup that still needs a fresh double opt-in confirmation).
    A confirmed subscription is never downgraded to pending.
    """
    address = normalise_address(email)
    for label, value in (("name", name), ("organisation", organisation)):
        check_text(value, label, where=f"address {address!r}")
    if is_suppressed(session, address):
        raise StateError("the address is suppressed; it cannot be subscribed", where=f"address {address!r}")
    subscriber = find_subscriber(session, address)
    if subscriber is not None:
        _refuse_blocked(session, subscriber, list_ids, resubscribe)
    else:
        subscriber = _create(session, address, name, organisation, source, actor, ip, user_agent, detail)
    _update_profile(subscriber, name, organisation)
    session.add(subscriber)
    session.flush()
    assert subscriber.id is not None
    target = S.CONFIRMED if confirmed else S.PENDING
    for list_id in dict.fromkeys(list_ids):
        sub = _subscription(session, subscriber.id, list_id)
        if sub is not None and sub.state == S.CONFIRMED:
            continue
        if sub is not None and sub.state == target:
            continue
        kind = "confirm" if sub is not None and sub.state == S.PENDING else "subscribe"
        set_state(session, subscriber.id, list_id, target, kind=kind, source=source, actor=actor,
                  ip=ip, user_agent=user_agent, detail=detail)
    return subscriber


def _refuse_blocked(session: Session, subscriber: Subscriber, list_ids: list[int], resubscribe: bool) -> None:
    assert subscriber.id is not None
    for list_id in list_ids:
        sub = _subscription(session, subscriber.id, list_id)
        if sub is None or sub.state in ACTIVE:
            continue
        if sub.state == S.UNSUBSCRIBED and resubscribe:
            continue
        slug = session.get(MailingList, list_id).slug  # type: ignore[union-attr]
        raise StateError(f"is {sub.state} from list {slug!r}; not re-subscribed",
                         where=f"address {subscriber.email!r}")


def _create(session: Session, address: str, name: str, organisation: str, source: str, actor: str,
            ip: str | None, user_agent: str | None, detail: dict[str, Any] | None) -> Subscriber:
    subscriber = Subscriber(email=address, email_hash=hash_normalised(address), name=name,
                            organisation=organisation)
    session.add(subscriber)
    session.flush()
    assert subscriber.id is not None
    record_event(session, subscriber.id, "created", source=source, actor=actor, ip=ip,
                 user_agent=user_agent, detail=detail)
    return subscriber


def _update_profile(subscriber: Subscriber, name: str, organisation: str) -> None:
    changed = False
    if name and name != subscriber.name:
        subscriber.name, changed = name, True
    if organisation and organisation != subscriber.organisation:
        subscriber.organisation, changed = organisation, True
    if changed:
        subscriber.updated_at = utcnow()


def confirm(session: Session, subscriber_id: int, list_ids: list[int], *, source: str, actor: str,
            ip: str | None = None, user_agent: str | None = None) -> list[SubscriberEvent]:
    """Double opt-in: pending -> confirmed on each list; other states are left alone (no resurrection)."""
    events = []
    for list_id in list_ids:
        sub = _subscription(session, subscriber_id, list_id)
        if sub is None or sub.state != S.PENDING:
            continue
        ev = set_state(session, subscriber_id, list_id, S.CONFIRMED, kind="confirm", source=source,
                       actor=actor, ip=ip, user_agent=user_agent)
        if ev is not None:
            events.append(ev)
    return events


def _move_all(session: Session, subscriber_id: int, list_id: int | None, new_state: str,
              from_states: tuple[str, ...], **kw: Any) -> list[SubscriberEvent]:
    get_subscriber(session, subscriber_id)
    stmt = select(Subscription).where(Subscription.subscriber_id == subscriber_id)
    if list_id is not None:
        stmt = stmt.where(Subscription.list_id == list_id)
    events = []
    for sub in session.exec(stmt.order_by(Subscription.list_id)).all():
        if sub.state in from_states:
            ev = set_state(session, subscriber_id, sub.list_id, new_state, **kw)
            if ev is not None:
                events.append(ev)
    return events


def unsubscribe(session: Session, subscriber_id: int, list_id: int | None, *, source: str, actor: str,
                issue_id: int | None = None, ip: str | None = None,
                user_agent: str | None = None) -> list[SubscriberEvent]:
    """Unsubscribe from one list or (list_id None) all; idempotent, returns the events written."""
    return _move_all(session, subscriber_id, list_id, S.UNSUBSCRIBED, ACTIVE, kind="unsubscribe",
                     source=source, actor=actor, issue_id=issue_id, ip=ip, user_agent=user_agent)


def mark_bounced(session: Session, subscriber_id: int, *, list_id: int | None = None, source: str,
                 actor: str, issue_id: int | None = None,
                 detail: dict[str, Any] | None = None) -> list[SubscriberEvent]:
    """A hard bounce (or too many soft ones): active subscriptions become bounced."""
    return _move_all(session, subscriber_id, list_id, S.BOUNCED, ACTIVE, kind="bounce",
                     source=source, actor=actor, issue_id=issue_id, detail=detail)


def complain(session: Session, subscriber_id: int, *, source: str, actor: str,
             issue_id: int | None = None, detail: dict[str, Any] | None = None) -> list[SubscriberEvent]:
    """A spam complaint: every list becomes complained and the address is suppressed."""
    events = _move_all(session, subscriber_id, None, S.COMPLAINED,
                       (S.PENDING, S.CONFIRMED, S.UNSUBSCRIBED, S.BOUNCED), kind="complaint",
                       source=source, actor=actor, issue_id=issue_id, detail=detail)
    suppress(session, subscriber_id, "complaint", source=source, actor=actor)
    return events


def suppress(session: Session, email_or_id: str | int, reason: str, *, source: str,
             actor: str) -> Suppression:
    """Put an address on the blocklist (by hash, so it outlives erasure); idempotent."""
    subscriber: Subscriber | None
    if isinstance(email_or_id, int):
        subscriber = get_subscriber(session, email_or_id)
        # An erased row already holds only its keyed hash.
        digest = keyed_address_hash(session, subscriber.email) if subscriber.email else subscriber.email_hash
    else:
        digest = keyed_address_hash(session, email_or_id)
        subscriber = session.exec(select(Subscriber).where(Subscriber.email_hash == address_hash(email_or_id))).first()
    row = session.exec(select(Suppression).where(Suppression.email_hash == digest)).first()
    if row is None:
        row = Suppression(email_hash=digest, reason=reason)
        session.add(row)
    if subscriber is not None and not subscriber.suppressed:
        assert subscriber.id is not None
        subscriber.suppressed = True
        subscriber.updated_at = utcnow()
        session.add(subscriber)
        record_event(session, subscriber.id, "suppress", source=source, actor=actor,
                     detail={"reason": reason})
    session.flush()
    return row


def erase(session: Session, subscriber_id: int, *, source: str, actor: str) -> Subscriber:
    """Right to erasure: drop personal data, keep the consent log's shape and a suppression hash.

    The address, name, organisation and attributes go; IP, user agent and free
    text in past events are nulled, and so is the content of their inbound mail
    and feedback (`erasure.scrub_mail`). A keyed hash stays (on the row and as a
    Suppression) so no later import can quietly bring the person back, while a
    database dump alone cannot confirm a guessed address.
    """
    subscriber = get_subscriber(session, subscriber_id)
    if subscriber.erased_at is not None:
        return subscriber
    unsubscribe(session, subscriber_id, None, source=source, actor=actor)
    suppress(session, subscriber_id, "erased", source=source, actor=actor)
    address = subscriber.email or ""
    session.exec(
        update(SubscriberEvent)
        .where(SubscriberEvent.subscriber_id == subscriber_id)
        .values(ip=None, user_agent=None, detail={})
    )
    if address:
        session.exec(
            update(SubscriberEvent)
            .where(SubscriberEvent.subscriber_id == subscriber_id, SubscriberEvent.actor == address)
            .values(actor="(erased)")
        )
    scrub_mail(session, subscriber_id)
    forget_notices(session, subscriber_id)
    scrub_delivery(session, subscriber_id, address)
    now = utcnow()
    if address:  # the plain sha256 lookup key would confirm a guessed address: keep only the keyed one
        subscriber.email_hash = keyed_address_hash(session, address)
    subscriber.email, subscriber.name, subscriber.organisation = None, "", ""
    subscriber.attributes = {}
    subscriber.erased_at = now
    subscriber.updated_at = now
    session.add(subscriber)
    record_event(session, subscriber_id, "erase", source=source, actor=actor)
    session.flush()
    return subscriber
