"""What staff commands do, by address: add, show, search, unsubscribe, suppress, erase.

The CLI only parses and prints; these functions resolve addresses and list
slugs, call the lifecycle, and return plain dataclasses the CLI can print as a
table or as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from bulletin.audience import lifecycle
from bulletin.audience.addresses import has_control_chars
from bulletin.audience.subscribers import (
    events_of,
    find_subscriber,
    get_list,
    get_subscriber,
    is_suppressed,
    subscriptions_of,
)
from bulletin.db import MAX_ROW_ID
from bulletin.errors import NotFound, StateError
from bulletin.models import Subscriber, Subscription, Suppression, id_of
from bulletin.statuses import SubscriptionState


def resolve(session: Session, who: str) -> Subscriber:
    """A subscriber by address or `#id`: the one reading of a reference to a person, for staff
    commands, the console and attaching unmatched mail (erased people have no address left, only an id).

    `#` and ASCII digits is an id; anything else is an address (`#news@example.org` is a valid one).
    Surrounding spaces are ignored, as a pasted reference carries them. NotFound names what was given.
    """
    ref = who.strip()
    digits = ref[1:]
    if ref.startswith("#") and digits.isascii() and digits.isdigit():
        # More digits than the largest row id names no row (and int() refuses past 4,300 digits).
        number = int(digits) if len(digits) <= len(str(MAX_ROW_ID)) else 0
        found = session.get(Subscriber, number) if 0 < number <= MAX_ROW_ID else None
        if found is None:
            shown = ref if len(ref) <= 32 else ref[:29] + "..."
            raise NotFound("no such subscriber", where=f"subscriber {shown!r}")
        return found
    found = find_subscriber(session, ref)
    if found is None:
        raise NotFound("no such subscriber", where=f"address {ref!r}")
    return found


def add_subscriber(session: Session, email: str, list_slugs: list[str], *, name: str = "",
                   organisation: str = "", confirmed: bool = True, actor: str,
                   source: str = "cli") -> Subscriber:
    """Staff add someone to lists (confirmed: staff vouch for the consent, recorded as actor)."""
    if not list_slugs:
        raise StateError("name at least one list (--list)", where=f"address {email!r}")
    ids = [id_of(get_list(session, slug)) for slug in list_slugs]
    return lifecycle.subscribe(session, email, ids, name=name, organisation=organisation,
                               confirmed=confirmed, source=source, actor=actor)


def unsubscribe_address(session: Session, who: str, list_slug: str | None, *, actor: str,
                        source: str = "cli") -> int:
    """Unsubscribe from one list or all; returns how many subscriptions changed."""
    subscriber = resolve(session, who)
    list_id = get_list(session, list_slug).id if list_slug else None
    assert subscriber.id is not None
    return len(lifecycle.unsubscribe(session, subscriber.id, list_id, source=source, actor=actor))


def suppress_address(session: Session, email: str, reason: str, *, actor: str, source: str = "cli") -> bool:
    """Blocklist an address, known or not; returns False when it already was."""
    if has_control_chars(reason):
        raise StateError("the reason must be one line of text", where="field 'reason'")
    before = is_suppressed(session, email)
    lifecycle.suppress(session, email, reason or "staff", source=source, actor=actor)
    return not before


def erase_address(session: Session, who: str, *, actor: str, source: str = "cli") -> int:
    subscriber = resolve(session, who)
    assert subscriber.id is not None
    lifecycle.erase(session, subscriber.id, source=source, actor=actor)
    return subscriber.id


@dataclass
class EventView:
    at: datetime
    kind: str
    list: str | None
    old_state: str | None
    new_state: str | None
    source: str
    actor: str
    ip: str | None
    user_agent: str | None
    issue_id: int | None
    detail: dict[str, Any]


@dataclass
class Profile:
    """Everything bulletin holds about one person (subject access request)."""

    id: int
    email: str | None
    name: str
    organisation: str
    attributes: dict[str, Any]
    suppressed: bool
    created_at: datetime
    erased_at: datetime | None
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def profile(session: Session, who: str) -> Profile:
    subscriber = resolve(session, who)
    assert subscriber.id is not None
    subs = subscriptions_of(session, subscriber.id)
    slugs = {m.id: m.slug for _s, m in subs}
    out = Profile(
        id=subscriber.id, email=subscriber.email, name=subscriber.name,
        organisation=subscriber.organisation, attributes=dict(subscriber.attributes or {}),
        suppressed=subscriber.suppressed or (is_suppressed(session, subscriber.email) if subscriber.email
                                             else is_suppressed_hash(session, subscriber.email_hash)),
        created_at=subscriber.created_at, erased_at=subscriber.erased_at,
        subscriptions=[{"list": m.slug, "state": s.state, "since": s.updated_at,
                        "confirmed_at": s.confirmed_at} for s, m in subs],
    )
    for ev in events_of(session, subscriber.id):
        out.events.append(EventView(
            at=ev.at, kind=ev.kind, list=slugs.get(ev.list_id) if ev.list_id else None,
            old_state=ev.old_state, new_state=ev.new_state, source=ev.source, actor=ev.actor,
            ip=ev.ip, user_agent=ev.user_agent, issue_id=ev.issue_id, detail=dict(ev.detail or {}),
        ))
    return out


def is_suppressed_hash(session: Session, digest: str) -> bool:
    return session.exec(select(Suppression.id).where(Suppression.email_hash == digest)).first() is not None


@dataclass
class Row:
    id: int
    email: str | None
    name: str
    organisation: str
    suppressed: bool
    lists: dict[str, str]


@dataclass
class Page:
    total: int
    page: int
    per_page: int
    rows: list[Row]

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def search(session: Session, *, list_slug: str | None = None, state: str | None = None,
           text: str | None = None, page: int = 1, per_page: int = 50) -> Page:
    """Subscribers filtered by list, state and a substring of address, name or organisation."""
    if state is not None and state not in SubscriptionState.ALL:
        raise StateError(f"unknown state (expected one of {', '.join(SubscriptionState.ALL)})",
                         where=f"--state {state!r}")
    stmt = select(Subscriber.id)
    if list_slug or state:
        sub_q = select(Subscription.subscriber_id)
        if list_slug:
            sub_q = sub_q.where(Subscription.list_id == get_list(session, list_slug).id)
        if state:
            sub_q = sub_q.where(Subscription.state == state)
        stmt = stmt.where(Subscriber.id.in_(sub_q))  # type: ignore[union-attr]
    if text:
        like = f"%{text.lower()}%"
        stmt = stmt.where(or_(func.lower(Subscriber.email).like(like), func.lower(Subscriber.name).like(like),
                              func.lower(Subscriber.organisation).like(like)))
    total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    page, per_page = max(page, 1), max(min(per_page, 1000), 1)
    ids = list(session.exec(stmt.order_by(Subscriber.id).offset((page - 1) * per_page).limit(per_page)).all())
    rows = []
    for sid in ids:
        s = get_subscriber(session, sid)
        lists = {m.slug: sub.state for sub, m in subscriptions_of(session, sid)}
        rows.append(Row(sid, s.email, s.name, s.organisation, s.suppressed, lists))
    return Page(total=int(total), page=page, per_page=per_page, rows=rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
