"""CSV import: streamed in batches, one transaction per batch, bulk inserts (see `bulk`).

Rules (issue 3): addresses are normalised and validated; duplicates within the
file and against the database merge into one subscriber; re-importing the same
file changes nothing; people who unsubscribed, bounced, complained or are
suppressed are reported and never re-subscribed; each bad row is reported with
its line and reason while good rows go in; CR/LF and other control characters
in names or attributes reject the row. A batch is all-or-nothing, so a crash
leaves no subscriber without their subscriptions and consent events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from bulletin.audience.addresses import keyed_hash
from bulletin.audience.bulk import bulk_insert, dumps, lock_for_batch, member, stamp
from bulletin.audience.csvfile import decode_error, open_csv
from bulletin.audience.import_rows import (
    ImportReport,
    Marks,
    Row,
    batches,
    catch_up,
    extra_lists,
    read_marks,
    unescape_cell,
)
from bulletin.audience.import_text import (
    EVENT_COLUMNS,
    SUBSCRIBER_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    PreparedRows,
    per_subscriber_text,
    prepare,
    subscriber_text,
    with_time,
)
from bulletin.db import address_key_of, refresh_statistics
from bulletin.errors import RowError
from bulletin.models import (
    MailingList,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    utcnow,
)
from bulletin.readahead import prefetched, reading_ahead
from bulletin.statuses import SubscriptionState

__all__ = ["BATCH", "ImportReport", "import_csv", "unescape_cell"]

S = SubscriptionState
BATCH = 5000
SUB = Subscriber.__table__  # type: ignore[attr-defined]
SUBSCRIPTION = Subscription.__table__  # type: ignore[attr-defined]
EVENT = SubscriberEvent.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]


def import_csv(
    engine: Engine, path: Path, *, actor: str, lists: list[str] | None = None, confirmed: bool = True,
    source: str = "import", batch_size: int = BATCH,
    on_batch: Callable[[ImportReport], None] | None = None, encoding: str | None = None,
) -> ImportReport:
    """Import a CSV file (email, name, organisation, lists; any other column becomes an attribute).

    `encoding` None means: a BOM decides (UTF-8 or UTF-16), else the file must be UTF-8.
    """
    with engine.connect() as conn:
        slugs = {slug: int(i) for i, slug in conn.execute(select(MailingList.id, MailingList.slug))}
    extra = extra_lists(lists or [], slugs)
    report = ImportReport(file=path.name)
    parsed = ImportReport(file=path.name)  # the parse thread's own counts, ahead of what is written
    copy = engine.dialect.name == "postgresql"

    def made(fh: Any) -> Iterator[tuple[dict[str, Row], Marks, PreparedRows | None]]:
        """Runs in the read-ahead thread: parse, cut into batches and (PostgreSQL) prepare the text."""
        for batch, read in read_marks(batches(fh, path, slugs, extra, parsed, batch_size), parsed):
            yield batch, read, (prepare(batch, file=path.name, confirmed=confirmed, source=source, actor=actor)
                                if copy else None)

    with open_csv(path, encoding) as fh:
        try:
            with reading_ahead():
                for batch, read, prepared in prefetched(made(fh)):
                    with engine.begin() as conn:
                        lock_for_batch(conn)
                        _apply(conn, batch, report, slugs, confirmed, source, actor, prepared)
                    report.batches += 1
                    catch_up(report, parsed, read)
                    if on_batch is not None:
                        on_batch(report)
        except UnicodeDecodeError as exc:  # only with an explicit --encoding that does not fit
            raise decode_error(path, exc) from None
        finally:
            catch_up(report, parsed, (parsed.rows, parsed.merged, len(parsed.errors)))
    if report.changed:
        refresh_statistics(engine, "subscriber", "subscription")
    return report


def _apply(conn: Connection, batch: dict[str, Row], report: ImportReport, slugs: dict[str, int],
           confirmed: bool, source: str, actor: str, prepared: PreparedRows | None = None) -> None:
    """Write one batch inside the caller's transaction; `prepared` holds the rows' text for new people."""
    names = {v: k for k, v in slugs.items()}
    digests = list(batch)
    existing = {r.email_hash: r for r in conn.execute(
        select(SUB.c.id, SUB.c.email_hash, SUB.c.name, SUB.c.organisation, SUB.c.attributes,
               SUB.c.suppressed).where(member(conn, SUB.c.email_hash, digests)))}
    blocked = _blocked(conn, batch)
    now = utcnow()
    for digest, row in list(batch.items()):
        old = existing.get(digest)
        if digest in blocked or (old is not None and old.suppressed):
            report.refused.append(RowError(row.line, "the address is suppressed; not imported", row.email))
            del batch[digest]
    ids = _insert_new(conn, [r for d, r in batch.items() if d not in existing], now, report, prepared)
    known = {d: int(r.id) for d, r in existing.items() if d in batch}
    changed = _update_profiles(conn, [(r, existing[d]) for d, r in batch.items() if d in existing], now, report)
    changed |= _subscribe(conn, batch, ids, known, names, confirmed, source, actor, now, report, prepared)
    report.unchanged += sum(1 for d in batch if d in existing and d not in changed)


SMALL_BLOCKLIST = 20_000


def _blocked(conn: Connection, batch: dict[str, Row]) -> set[str]:
    """The batch's lookup digests that are suppressed, under the keyed hash or an older plain one.

    A blocklist is usually far smaller than an import: then reading it whole each batch
    (nothing, on a new workspace) is cheaper than sending the database two arrays of hashes.
    """
    key = address_key_of(conn)
    few = [h for (h,) in conn.execute(select(SUPPRESSION.c.email_hash).limit(SMALL_BLOCKLIST + 1))]
    if not few:
        return set()
    keyed = {keyed_hash(row.email, key): digest for digest, row in batch.items()}
    if len(few) <= SMALL_BLOCKLIST:
        found: set[str] = {h for h in few if h in keyed or h in batch}
    else:
        found = {h for (h,) in conn.execute(
            select(SUPPRESSION.c.email_hash).where(member(conn, SUPPRESSION.c.email_hash, [*keyed, *batch])))}
    return {keyed.get(h, h) for h in found}


def _insert_new(conn: Connection, rows: list[Row], now: Any, report: ImportReport,
                prepared: PreparedRows | None) -> dict[str, int]:
    """Insert the people the database does not hold yet; their ids by address hash."""
    if not rows:
        return {}
    when = stamp(conn, now)
    report.created += len(rows)
    if conn.dialect.name == "postgresql":
        # COPY returns no ids: take a block of them from the sequence first, so no lookup by hash
        # follows. One setval moves the sequence past the block (a nextval per row cost 5 us each,
        # 5 s a million); nobody else can draw from it meanwhile, as every insert into subscriber
        # waits for lock_for_batch's table lock, and a stray draw would fail the batch on the key.
        last = int(conn.exec_driver_sql(
            "SELECT setval(s, nextval(s) + %(n)s - 1) FROM pg_get_serial_sequence('subscriber', 'id') AS s",
            {"n": len(rows)}).scalar_one())
        ids = {r.digest: i for r, i in zip(rows, range(last - len(rows) + 1, last + 1), strict=True)}
        assert prepared is not None, "PostgreSQL batches are prepared in the read-ahead thread"
        bulk_insert(conn, SUB, [], text=with_time(subscriber_text(prepared, ids.items()), when),
                    columns=SUBSCRIBER_COLUMNS)
        return ids
    values = [{"email": r.email, "email_hash": r.digest, "name": r.name, "organisation": r.organisation,
               "attributes": dumps(r.attributes) if r.attributes else "{}", "suppressed": False,
               "created_at": when, "updated_at": when} for r in rows]
    bulk_insert(conn, SUB, values)
    found = conn.execute(select(SUB.c.email_hash, SUB.c.id).where(member(conn, SUB.c.email_hash, [r.digest for r in rows])))
    return {h: int(i) for h, i in found}


def _as_text(value: Any) -> str | None:
    """An attribute as a CSV cell holds it: a CSV has no types, so 3 and "3" are the same value."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _update_profiles(conn: Connection, pairs: list[tuple[Row, Any]], now: Any,
                     report: ImportReport) -> set[str]:
    """Non-empty name and organisation overwrite, attributes are merged; untouched rows stay untouched."""
    changes = []
    changed: set[str] = set()
    for row, old in pairs:
        name = row.name or old.name
        org = row.organisation or old.organisation
        attrs = dict(old.attributes or {})
        attrs.update({k: v for k, v in row.attributes.items() if _as_text(attrs.get(k)) != v})
        if (name, org, attrs) != (old.name, old.organisation, old.attributes or {}):
            changes.append({"_id": old.id, "_name": name, "_org": org, "_attrs": attrs, "_now": now})
            changed.add(row.digest)
    if changes:
        conn.execute(
            update(SUB).where(SUB.c.id == bindparam("_id")).values(
                name=bindparam("_name"), organisation=bindparam("_org"),
                attributes=bindparam("_attrs"), updated_at=bindparam("_now")),
            changes,
        )
    report.updated += len(changes)
    return changed


def _subscribe(conn: Connection, batch: dict[str, Row], new: dict[str, int], known: dict[str, int],
               names: dict[int, str], confirmed: bool, source: str, actor: str, now: Any,
               report: ImportReport, prepared: PreparedRows | None) -> set[str]:
    """Add the rows' subscriptions; returns the hashes of subscribers that gained one.

    Only `known` (subscribers that existed before this batch) can hold subscriptions yet; the
    `new` ones gain every list of their row, from `prepared` text when there is one.
    """
    current = {(int(s), int(li)): st for s, li, st in conn.execute(
        select(SUBSCRIPTION.c.subscriber_id, SUBSCRIPTION.c.list_id, SUBSCRIPTION.c.state)
        .where(member(conn, SUBSCRIPTION.c.subscriber_id, list(known.values()))))} if known else {}
    target = S.CONFIRMED if confirmed else S.PENDING
    inserts: list[dict[str, Any]] = []
    confirms: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    touched: set[str] = set()
    when = stamp(conn, now)
    head = '{"file": ' + dumps(report.file) + ', "line": '  # the event detail, without json.dumps per row
    generally = batch if prepared is None else {d: batch[d] for d in known}
    for digest, row in generally.items():
        sid = new[digest] if digest in new else known[digest]
        for list_id in row.lists:
            state = current.get((sid, list_id))
            if state in S.NEVER_RESUBSCRIBE:
                report.refused.append(RowError(row.line, f"{state} from list {names[list_id]!r}; not re-subscribed", row.email))
                continue
            if state == target or state == S.CONFIRMED:
                continue
            if state is None:
                inserts.append({"subscriber_id": sid, "list_id": list_id, "state": target, "created_at": when,
                                "updated_at": when, "confirmed_at": when if confirmed else None})
            else:  # pending -> confirmed
                confirms.append({"_sid": sid, "_lid": list_id, "_now": now})
            events.append({"subscriber_id": sid, "list_id": list_id, "at": when,
                           "kind": "subscribe" if state is None else "confirm", "old_state": state,
                           "new_state": target, "source": source, "actor": actor,
                           "detail": f"{head}{row.line}}}"})
            touched.add(digest)
    subscription_text = event_text = ""
    if prepared is not None:
        subscription_text = with_time(per_subscriber_text(prepared.subscriptions, new.items()), when)
        event_text = with_time(per_subscriber_text(prepared.events, new.items()), when)
        touched.update(new)
        report.subscriptions_added += sum(len(batch[d].lists) for d in new)
    bulk_insert(conn, SUBSCRIPTION, inserts, text=subscription_text, columns=SUBSCRIPTION_COLUMNS)
    if confirms:
        conn.execute(
            update(SUBSCRIPTION)
            .where(SUBSCRIPTION.c.subscriber_id == bindparam("_sid"), SUBSCRIPTION.c.list_id == bindparam("_lid"))
            .values(state=S.CONFIRMED, confirmed_at=bindparam("_now"), updated_at=bindparam("_now")),
            confirms,
        )
    bulk_insert(conn, EVENT, events, text=event_text, columns=EVENT_COLUMNS)
    report.subscriptions_added += len(events)
    return touched
