"""Export subscribers as CSV (the import format, so an export re-imports cleanly) or JSON lines.

Streamed in windows of ids, so a large audience is never held in memory.
Erased people have no address left and are never exported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal, TextIO

from sqlmodel import Session, select

from bulletin.audience.import_rows import escape_cell
from bulletin.audience.subscribers import get_list
from bulletin.errors import StateError
from bulletin.models import MailingList, Subscriber, Subscription, id_of
from bulletin.statuses import SubscriptionState

Format = Literal["csv", "json"]
WINDOW = 1000
COLUMNS = ("email", "name", "organisation", "lists")


@dataclass
class Exported:
    id: int
    email: str
    name: str
    organisation: str
    attributes: dict[str, Any]
    suppressed: bool
    subscriptions: dict[str, str]  # list slug -> state


def iter_subscribers(session: Session, *, list_slug: str | None = None,
                     state: str | None = None) -> Iterator[Exported]:
    """Subscribers with a subscription matching the filters, by id; only the matching lists are shown."""
    if state is not None and state not in SubscriptionState.ALL:
        raise StateError(f"unknown state (expected one of {', '.join(SubscriptionState.ALL)})",
                         where=f"--state {state!r}")
    list_id = get_list(session, list_slug).id if list_slug else None
    slugs = {id_of(m): m.slug for m in session.exec(select(MailingList)).all()}
    match = select(Subscription.subscriber_id)
    if list_id is not None:
        match = match.where(Subscription.list_id == list_id)
    if state is not None:
        match = match.where(Subscription.state == state)
    after = 0
    while True:
        people = session.exec(
            select(Subscriber)
            .where(Subscriber.id.in_(match), Subscriber.email.is_not(None), Subscriber.id > after)  # type: ignore[union-attr,operator]
            .order_by(Subscriber.id).limit(WINDOW)
        ).all()
        if not people:
            return
        subs_q = select(Subscription).where(Subscription.subscriber_id.in_([p.id for p in people]))  # type: ignore[attr-defined]
        if list_id is not None:
            subs_q = subs_q.where(Subscription.list_id == list_id)
        if state is not None:
            subs_q = subs_q.where(Subscription.state == state)
        by_person: dict[int, dict[str, str]] = {}
        for sub in session.exec(subs_q.order_by(Subscription.list_id)).all():
            by_person.setdefault(sub.subscriber_id, {})[slugs[sub.list_id]] = sub.state
        for p in people:
            yield Exported(id_of(p), str(p.email), p.name, p.organisation,
                           dict(p.attributes or {}), p.suppressed, by_person.get(id_of(p), {}))
        after = id_of(people[-1])
        session.expunge_all()


def export(session: Session, out: TextIO, *, fmt: Format = "csv", list_slug: str | None = None,
           state: str | None = None) -> int:
    """Write the export to `out`; returns the number of subscribers written."""
    if fmt == "json":
        return _json(session, out, list_slug, state)
    return _csv(session, out, list_slug, state)


def _json(session: Session, out: TextIO, list_slug: str | None, state: str | None) -> int:
    n = 0
    for item in iter_subscribers(session, list_slug=list_slug, state=state):
        out.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
        n += 1
    return n


def _csv(session: Session, out: TextIO, list_slug: str | None, state: str | None) -> int:
    """CSV in the import format; attribute columns are found in a first pass (ids only kept small)."""
    keys: dict[str, None] = {}
    for item in iter_subscribers(session, list_slug=list_slug, state=state):
        keys.update(dict.fromkeys(k for k in item.attributes if k not in COLUMNS))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *keys])
    n = 0
    for item in iter_subscribers(session, list_slug=list_slug, state=state):
        writer.writerow([_cell(item.email), _cell(item.name), _cell(item.organisation), ";".join(item.subscriptions),
                         *(_cell(item.attributes.get(k)) for k in keys)])
        n += 1
    return n


def _cell(value: Any) -> str:
    """A CSV cell, every column alike (the address too), that a spreadsheet will not run as a formula;
    the importer takes the guard off again (`import_rows.unescape_cell`)."""
    if value is None:
        return ""
    return escape_cell(value if isinstance(value, str) else json.dumps(value))
