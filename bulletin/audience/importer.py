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

import csv
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection, Engine

from bulletin.audience.addresses import (
    has_control_chars,
    hash_normalised,
    keyed_hash,
    normalise_address,
)
from bulletin.audience.bulk import bulk_insert, dumps, lock_for_batch, member, stamp
from bulletin.audience.csvfile import decode_error, open_csv
from bulletin.audience.text import PROBLEM, bad_character
from bulletin.db import address_key_of
from bulletin.errors import AddressError, ContentError, RowError
from bulletin.models import (
    MailingList,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    utcnow,
)
from bulletin.statuses import SubscriptionState

S = SubscriptionState
KNOWN = ("email", "name", "organisation", "lists")
BATCH = 5000
SUB = Subscriber.__table__  # type: ignore[attr-defined]
SUBSCRIPTION = Subscription.__table__  # type: ignore[attr-defined]
EVENT = SubscriberEvent.__table__  # type: ignore[attr-defined]
SUPPRESSION = Suppression.__table__  # type: ignore[attr-defined]


@dataclass
class ImportReport:
    """What an import did; `errors` are bad rows, `refused` are people it must not re-subscribe."""

    file: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0  # rows folded into an earlier row of the same batch
    subscriptions_added: int = 0
    batches: int = 0
    errors: list[RowError] = field(default_factory=list)
    refused: list[RowError] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.subscriptions_added)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("errors", "refused")}
        out["errors"] = [e.__dict__ for e in self.errors]
        out["refused"] = [e.__dict__ for e in self.refused]
        return out


@dataclass
class Row:
    line: int
    email: str
    digest: str
    name: str
    organisation: str
    lists: list[int]
    attributes: dict[str, str]

    def merge(self, other: Row) -> None:
        """A later row for the same address: union of lists, later non-empty values win."""
        self.lists += [x for x in other.lists if x not in self.lists]
        self.name = other.name or self.name
        self.organisation = other.organisation or self.organisation
        self.attributes.update(other.attributes)


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
    extra = _extra_lists(lists or [], slugs)
    report = ImportReport(file=path.name)
    parsed = ImportReport(file=path.name)  # the parse thread's own counts, ahead of what is written
    with open_csv(path, encoding) as fh:
        try:
            for batch, read in prefetched(_read_marks(_batches(fh, path, slugs, extra, parsed, batch_size),
                                                      parsed)):
                with engine.begin() as conn:
                    lock_for_batch(conn)
                    _apply(conn, batch, report, slugs, confirmed, source, actor)
                report.batches += 1
                _catch_up(report, parsed, read)
                if on_batch is not None:
                    on_batch(report)
        except UnicodeDecodeError as exc:  # only with an explicit --encoding that does not fit
            raise decode_error(path, exc) from None
        finally:
            _catch_up(report, parsed, (parsed.rows, parsed.merged, len(parsed.errors)))
    return report


Marks = tuple[int, int, int]


def _read_marks(batches: Iterator[dict[str, Row]], parsed: ImportReport) -> Iterator[tuple[dict[str, Row], Marks]]:
    """Each batch with how far the file had been read when it was cut (rows, merged, bad rows)."""
    for batch in batches:
        yield batch, (parsed.rows, parsed.merged, len(parsed.errors))


def _catch_up(report: ImportReport, parsed: ImportReport, read: Marks) -> None:
    """Progress counts only what was written: the parse thread may be a batch ahead."""
    report.rows, report.merged = read[0], read[1]
    report.errors = parsed.errors[:read[2]]


T = TypeVar("T")


def prefetched(batches: Iterator[T]) -> Iterator[T]:
    """Parse the next batch in a thread while the database writes this one.

    On PostgreSQL about half an import's wall time is the server indexing a COPY,
    with this process idle on the socket (the GIL is released there); parsing and
    normalising the next batch meanwhile hides most of the other half. At most
    one batch waits, so memory stays flat. An error in the file surfaces here, in
    the caller's thread, after the batches before it were written.
    """
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand(kind: str, item: Any) -> bool:
        """Put one item in the queue unless the caller stopped listening (then it never would be taken)."""
        while not stop.is_set():
            try:
                ahead.put((kind, item), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not hand("batch", batch):
                    return
            hand("done", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as is
            hand("error", exc)

    worker = threading.Thread(target=produce, name="import-parse", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ahead.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _extra_lists(names: list[str], slugs: dict[str, int]) -> list[int]:
    unknown = [n for n in names if n not in slugs]
    if unknown:
        raise ContentError("no such list (run `bulletin lists sync`)", where=f"list {unknown[0]!r}")
    return [slugs[n] for n in names]


def _batches(fh: TextIO, path: Path, slugs: dict[str, int], extra: list[int], report: ImportReport,
             size: int) -> Iterator[dict[str, Row]]:
    """Parsed, merged rows in batches keyed by address hash; bad rows go to the report."""
    reader = csv.DictReader(fh)
    reader.fieldnames = _header(reader.fieldnames or [], path)
    batch: dict[str, Row] = {}
    for record in _records(reader, report):
        # line_num is where the record ends; a quoted field may span lines, blank lines are skipped.
        start = reader.line_num - sum(str(v).count("\n") for v in record.values() if v)
        report.rows += 1
        row = _parse(record, start, slugs, extra, report)
        if row is None:
            continue
        if row.digest in batch:
            batch[row.digest].merge(row)
            report.merged += 1
        else:
            batch[row.digest] = row
        if len(batch) >= size:
            yield batch
            batch = {}
    if batch:
        yield batch


def _records(reader: csv.DictReader, report: ImportReport) -> Iterator[dict[str | Any, Any]]:  # type: ignore[type-arg]
    """The reader's records; a row the csv module cannot parse (a NUL byte, a giant field) is a bad row."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.rows += 1
            report.errors.append(RowError(reader.line_num + 1, f"unreadable CSV row: {exc}"))


CAPS = {"name": 200, "organisation": 200}
ATTRIBUTE_CAP = 1000


def unescape_cell(value: str) -> str:
    """Undo the exporter's formula guard: `'=x` (and `'+`, `'-`, `'@`) back to `=x`."""
    if len(value) > 1 and value[0] == "'" and value[1] in "=+-@":
        return value[1:]
    return value


ALIASES = {"e-mail": "email", "email address": "email", "organization": "organisation", "list": "lists"}


def _header(names: list[str], path: Path) -> list[str]:
    """Known columns matched whatever their case ('Email', 'Organization'); others kept as written."""
    out = []
    for raw in names:
        name = (raw or "").strip()
        if not name or has_control_chars(name):
            raise ContentError("a column name is empty or holds control characters", where=f"{path}:1")
        canon = ALIASES.get(name.lower(), name.lower())
        out.append(canon if canon in KNOWN else name)
    if "email" not in out:
        raise ContentError("the header row needs an 'email' column", where=f"{path}:1")
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise ContentError(f"column {dupes[0]!r} appears more than once", where=f"{path}:1")
    return out


def _parse(record: dict[str | Any, Any], line: int, slugs: dict[str, int], extra: list[int],
           report: ImportReport) -> Row | None:
    raw_email = (record.get("email") or "").strip(" ")
    if None in record:
        report.errors.append(RowError(line, "more fields than columns in the header", raw_email or None))
        return None
    try:
        email = normalise_address(raw_email)
    except AddressError as exc:
        report.errors.append(RowError(line, exc.message, raw_email or None))
        return None
    values = {k: unescape_cell((v or "").strip(" ")) for k, v in record.items()}  # CR/LF kept, to be rejected
    for key, value in values.items():
        if key != "lists" and bad_character(value, key) is not None:
            report.errors.append(RowError(line, f"field '{key}' {PROBLEM}", email))
            return None
    for key, value in values.items():
        cap = CAPS.get(key, ATTRIBUTE_CAP if key not in KNOWN else 0)
        if cap and len(value) > cap:
            report.errors.append(RowError(line, f"field '{key}' is longer than {cap} characters ({len(value)})", email))
            return None
    list_ids = list(extra)
    for slug in (s.strip().lower() for s in values.get("lists", "").split(";")):
        if not slug:
            continue
        if slug not in slugs:
            report.errors.append(RowError(line, f"no such list {slug!r}", email))
            return None
        if slugs[slug] not in list_ids:
            list_ids.append(slugs[slug])
    if not list_ids:
        report.errors.append(RowError(line, "no list given (fill the 'lists' column or pass --list)", email))
        return None
    attributes = {k: v for k, v in values.items() if k not in KNOWN and v}
    return Row(line, email, hash_normalised(email), values.get("name", ""),
               values.get("organisation", ""), list_ids, attributes)


def _apply(conn: Connection, batch: dict[str, Row], report: ImportReport, slugs: dict[str, int],
           confirmed: bool, source: str, actor: str) -> None:
    """Write one batch inside the caller's transaction."""
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
    ids = _insert_new(conn, [r for d, r in batch.items() if d not in existing], now, report)
    known = {d: int(r.id) for d, r in existing.items() if d in batch}
    ids.update(known)
    changed = _update_profiles(conn, [(r, existing[d]) for d, r in batch.items() if d in existing], now, report)
    changed |= _subscribe(conn, batch, ids, list(known.values()), names, confirmed, source, actor, now, report)
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


def _insert_new(conn: Connection, rows: list[Row], now: Any, report: ImportReport) -> dict[str, int]:
    if not rows:
        return {}
    when = stamp(conn, now)
    values = [{"email": r.email, "email_hash": r.digest, "name": r.name, "organisation": r.organisation,
               "attributes": dumps(r.attributes) if r.attributes else "{}", "suppressed": False,
               "created_at": when, "updated_at": when} for r in rows]
    report.created += len(rows)
    if conn.dialect.name == "postgresql":
        # COPY returns no ids: take them from the sequence first, so no lookup by hash follows.
        new_ids = [int(i) for (i,) in conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('subscriber', 'id')) FROM generate_series(1, %(n)s)",
            {"n": len(rows)})]
        for value, new_id in zip(values, new_ids, strict=True):
            value["id"] = new_id
        bulk_insert(conn, SUB, values)
        return {r.digest: i for r, i in zip(rows, new_ids, strict=True)}
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


def _subscribe(conn: Connection, batch: dict[str, Row], ids: dict[str, int], known: list[int],
               names: dict[int, str], confirmed: bool, source: str, actor: str, now: Any,
               report: ImportReport) -> set[str]:
    """Add the rows' subscriptions; returns the hashes of subscribers that gained one.

    Only `known` (subscribers that existed before this batch) can hold subscriptions yet.
    """
    current = {(int(s), int(li)): st for s, li, st in conn.execute(
        select(SUBSCRIPTION.c.subscriber_id, SUBSCRIPTION.c.list_id, SUBSCRIPTION.c.state)
        .where(member(conn, SUBSCRIPTION.c.subscriber_id, known)))} if known else {}
    target = S.CONFIRMED if confirmed else S.PENDING
    inserts: list[dict[str, Any]] = []
    confirms: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    touched: set[str] = set()
    when = stamp(conn, now)
    head = '{"file": ' + dumps(report.file) + ', "line": '  # the event detail, without json.dumps per row
    for digest, row in batch.items():
        sid = ids[digest]
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
    bulk_insert(conn, SUBSCRIPTION, inserts)
    if confirms:
        conn.execute(
            update(SUBSCRIPTION)
            .where(SUBSCRIPTION.c.subscriber_id == bindparam("_sid"), SUBSCRIPTION.c.list_id == bindparam("_lid"))
            .values(state=S.CONFIRMED, confirmed_at=bindparam("_now"), updated_at=bindparam("_now")),
            confirms,
        )
    bulk_insert(conn, EVENT, events)
    report.subscriptions_added += len(events)
    return touched
