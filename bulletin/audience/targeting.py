"""What targeted blocks need from the audience: readers as conditions see them, and who a block reaches.

A send fills per recipient; for an issue with targeted blocks it loads the
`Reader` of each claimed batch in one query, so choosing blocks costs a
predicate call per block, not a query per person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import and_, func
from sqlmodel import Session, select

from bulletin.audience.conditions import Condition, Reader, parse_condition
from bulletin.audience.segments import columns
from bulletin.audience.subscribers import find_subscriber, sendable
from bulletin.errors import NotFound
from bulletin.models import MailingList, Subscriber, Subscription


def readers_for(session: Session, subscriber_ids: Iterable[int], list_id: int) -> dict[int, Reader]:
    """{subscriber_id: Reader} with `subscribed` from their subscription to `list_id`."""
    ids = list(subscriber_ids)
    out: dict[int, Reader] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        stmt = (select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.organisation,
                       Subscriber.attributes, Subscriber.created_at, Subscription.confirmed_at,
                       Subscription.created_at)
                .outerjoin(Subscription, and_(Subscription.subscriber_id == Subscriber.id,
                                              Subscription.list_id == list_id))
                .where(Subscriber.id.in_(chunk)))
        for sid, email, name, org, attrs, created, confirmed, joined in session.exec(stmt).all():
            out[int(sid)] = Reader(email=email or "", name=name or "", organisation=org or "",
                                   attributes=dict(attrs or {}), subscribed=confirmed or joined, created=created)
    return out


def reader_by_address(session: Session, address: str, list_slugs: Iterable[str]) -> Reader:
    """The reader `bulletin preview --as ADDRESS` shows: their subscription to the first of the issue's lists they are on."""
    person = find_subscriber(session, address)
    if person is None or person.id is None:
        raise NotFound("no such subscriber", where=f"address {address!r}")
    slugs = list(list_slugs)
    rows = session.exec(select(MailingList.slug, Subscription.list_id).join(
        Subscription, Subscription.list_id == MailingList.id).where(
        Subscription.subscriber_id == person.id, MailingList.slug.in_(slugs))).all()
    by_slug = {slug: int(list_id) for slug, list_id in rows}
    list_id = next((by_slug[s] for s in slugs if s in by_slug), 0)
    return readers_for(session, [person.id], list_id)[person.id]


def block_reach(session: Session, audiences: Mapping[str, str], list_slugs: Iterable[str]) -> dict[str, int]:
    """{block anchor: how many sendable subscribers of these lists its audience condition matches}."""
    list_ids = [int(i) for i in session.exec(select(MailingList.id).where(MailingList.slug.in_(list(list_slugs))))]
    out: dict[str, int] = {}
    for anchor, source in audiences.items():
        condition: Condition = parse_condition(source)
        total = 0
        for list_id in list_ids:
            stmt = (select(func.count()).select_from(Subscriber)
                    .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                    .where(sendable(list_id), condition.to_sql(columns())))
            total += int(session.exec(stmt).one())
        out[anchor] = total
    return out
