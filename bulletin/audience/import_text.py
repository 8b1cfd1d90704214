"""New subscribers' rows as COPY text, made in the read-ahead thread before their batch is written.

On PostgreSQL a batch is a chain of round trips (look up who exists, take ids,
three COPYs, commit), and the server indexes each COPY while this process
waits. Whatever Python work sits inside that chain is time the server idles.
Building the three tables' rows was most of it, so the parse thread, which has
the time to spare while the server indexes, now writes each row's text as if
the person were new: everything but the subscriber's id and the batch's
timestamp. The writer then only prefixes ids and drops the rows of people who
already exist (their rows go the general way in `importer`). SQLite writes in
this process anyway and keeps the general way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bulletin import pgcopy
from bulletin.audience.bulk import dumps
from bulletin.audience.import_rows import Row
from bulletin.statuses import SubscriptionState

# Column orders of the prepared text; `importer` writes its general rows in the same orders.
SUBSCRIBER_COLUMNS = ("id", "email", "email_hash", "name", "organisation", "attributes", "suppressed",
                      "created_at", "updated_at")
SUBSCRIPTION_COLUMNS = ("subscriber_id", "list_id", "state", "created_at", "updated_at", "confirmed_at")
EVENT_COLUMNS = ("subscriber_id", "list_id", "at", "kind", "old_state", "new_state", "source", "actor", "detail")
# Stands for the batch's timestamp until the batch is written (one replace of the whole text then).
# COPY text cannot carry a NUL, and no value that reaches it can hold one: every field but the lists
# is refused with a control character, and the lists only give ids.
WHEN = "\x00"


@dataclass
class PreparedRows:
    """Per address hash: the subscriber line after its id, and the subscription and event lines
    after the subscriber id, for a person not yet in the database."""

    subscriber: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)


def prepare(batch: dict[str, Row], *, file: str, confirmed: bool, source: str, actor: str) -> PreparedRows:
    """The batch's rows as COPY text, as `importer` would write them for people who are new."""
    esc = pgcopy.field
    target = SubscriptionState.CONFIRMED if confirmed else SubscriptionState.PENDING
    confirmed_at = WHEN if confirmed else pgcopy.NULL
    state_part = f"\t{esc(target)}\t{WHEN}\t{WHEN}\t{confirmed_at}\n"
    event_part = (f"\t{WHEN}\tsubscribe\t{pgcopy.NULL}\t{esc(target)}\t{esc(source)}\t{esc(actor)}\t"
                  + esc('{"file": ' + dumps(file) + ', "line": '))
    out = PreparedRows()
    for digest, row in batch.items():
        attributes = esc(dumps(row.attributes)) if row.attributes else "{}"
        out.subscriber[digest] = (f"{esc(row.email)}\t{digest}\t{esc(row.name)}\t{esc(row.organisation)}\t"
                                  f"{attributes}\tf\t{WHEN}\t{WHEN}\n")
        out.subscriptions[digest] = [f"{list_id}{state_part}" for list_id in row.lists]
        out.events[digest] = [f"{list_id}{event_part}{row.line}}}\n" for list_id in row.lists]
    return out


def subscriber_text(prepared: PreparedRows, ids: Iterable[tuple[str, int]]) -> str:
    """The subscriber lines of (hash, new id) pairs."""
    lines = prepared.subscriber
    return "".join([f"{sid}\t{lines[digest]}" for digest, sid in ids])


def per_subscriber_text(lines: dict[str, list[str]], ids: Iterable[tuple[str, int]]) -> str:
    """The subscription or event lines of (hash, subscriber id) pairs."""
    return "".join([f"{sid}\t{line}" for digest, sid in ids for line in lines[digest]])


def with_time(text: str, when: Any) -> str:
    """`text` with the batch's timestamp in place of WHEN."""
    return text.replace(WHEN, pgcopy.field(when)) if text else text
