"""On PostgreSQL an import writes new people from COPY text the read-ahead thread made, and people who
already exist the general way; both must store exactly what the file says, in one batch together.
The same file on SQLite (the general way only) must give the same rows."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bulletin.audience.import_rows import Row
from bulletin.audience.import_text import WHEN, prepare
from bulletin.audience.importer import import_csv
from bulletin.db import session_scope
from bulletin.models import Subscriber, SubscriberEvent, Subscription
from tests.audience.conftest import write_csv

HEADER = "email,name,organisation,lists,note\n"
AWKWARD = [  # what COPY's text format escapes, JSON's own escapes, quotes and non-ASCII
    ("o'brien+x@example.org", 'Back \\ Slash', 'C:\\Users\\ann', 'finance', 'a\\b "q"'),
    ('ann@example.org', 'Ann "The" \\n Ó Briain', 'Eastvale\\tCo.', 'finance;workforce', 'tab-free\\t'),
    ('bo@example.org', '', '', 'workforce', ''),
]


def _file(tmp_path: Path, name: str, rows: list[tuple[str, ...]]) -> Path:
    def cell(v: str) -> str:
        return '"' + v.replace('"', '""') + '"' if ('"' in v or "," in v) else v
    return write_csv(tmp_path / name, HEADER + "".join(",".join(map(cell, r)) + "\n" for r in rows))


def _stored(engine) -> tuple[list, list, list]:
    with session_scope(engine) as s:
        people = {p.id: p.email for p in s.exec(select(Subscriber)).all()}
        subscribers = sorted((p.email, p.name, p.organisation, p.attributes, p.suppressed,
                              p.created_at == p.updated_at) for p in s.exec(select(Subscriber)).all())
        subscriptions = sorted((people[x.subscriber_id], x.list_id, x.state, x.confirmed_at is not None)
                               for x in s.exec(select(Subscription)).all())
        events = sorted((people[e.subscriber_id], e.list_id, e.kind, e.old_state, e.new_state, e.source, e.actor,
                         e.detail["file"], e.detail["line"]) for e in s.exec(select(SubscriberEvent)).all())
    return subscribers, subscriptions, events


def test_new_and_existing_people_in_one_batch_store_exactly_what_the_file_says(engine, lists, tmp_path):
    first = import_csv(engine, _file(tmp_path, 'one\\"odd.csv', AWKWARD[:1]), actor='cli:"x"\\y', confirmed=False)
    assert first.created == 1
    assert _stored(engine)[0] == [("o'brien+x@example.org", "Back \\ Slash", "C:\\Users\\ann", {"note": 'a\\b "q"'},
                                   False, True)]
    # One batch: an existing person (pending -> confirmed, a list added) beside two new ones.
    second = import_csv(engine, _file(tmp_path, "two.csv", [AWKWARD[0][:3] + ("finance;workforce", "new"),
                                                           *AWKWARD[1:]]), actor="cli:ann")
    assert (second.created, second.updated, second.batches) == (2, 1, 1)
    assert second.subscriptions_added == 2 + 2 + 1  # confirm + add for the existing one; 2 and 1 for the new
    subscribers, subscriptions, events = _stored(engine)
    assert subscribers == sorted([
        ("o'brien+x@example.org", "Back \\ Slash", "C:\\Users\\ann", {"note": "new"}, False, False),
        ("ann@example.org", 'Ann "The" \\n Ó Briain', "Eastvale\\tCo.", {"note": "tab-free\\t"}, False, True),
        ("bo@example.org", "", "", {}, False, True),
    ])
    fin, work = lists["finance"], lists["workforce"]
    assert subscriptions == sorted([
        ("o'brien+x@example.org", fin, "confirmed", True), ("o'brien+x@example.org", work, "confirmed", True),
        ("ann@example.org", fin, "confirmed", True), ("ann@example.org", work, "confirmed", True),
        ("bo@example.org", work, "confirmed", True)])
    assert events == sorted([
        ("o'brien+x@example.org", fin, "subscribe", None, "pending", "import", 'cli:"x"\\y', 'one\\"odd.csv', 2),
        ("o'brien+x@example.org", fin, "confirm", "pending", "confirmed", "import", "cli:ann", "two.csv", 2),
        ("o'brien+x@example.org", work, "subscribe", None, "confirmed", "import", "cli:ann", "two.csv", 2),
        ("ann@example.org", fin, "subscribe", None, "confirmed", "import", "cli:ann", "two.csv", 3),
        ("ann@example.org", work, "subscribe", None, "confirmed", "import", "cli:ann", "two.csv", 3),
        ("bo@example.org", work, "subscribe", None, "confirmed", "import", "cli:ann", "two.csv", 4)])


def test_every_timestamp_of_a_new_person_is_the_batch_time_and_none_is_left_as_a_marker() -> None:
    row = Row(7, "a@example.org", "d" * 64, "A", "", [1, 2], {"k": "v"})
    for confirmed in (True, False):
        text = prepare({row.digest: row}, file="f.csv", confirmed=confirmed, source="import", actor="me")
        assert text.subscriber[row.digest].count(WHEN) == 2  # created_at, updated_at
        assert [t.count(WHEN) for t in text.subscriptions[row.digest]] == [3 if confirmed else 2] * 2
        assert [t.count(WHEN) for t in text.events[row.digest]] == [1, 1]
        assert [t.split("\t")[0] for t in text.subscriptions[row.digest]] == ["1", "2"]
