"""Export: CSV in the import format (round-trips) and JSON lines, filtered by list and state."""

from __future__ import annotations

import csv
import io
import json

from sqlmodel import select

from bulletin.audience import exporter
from bulletin.audience import lifecycle as L
from bulletin.audience.importer import import_csv
from bulletin.audience.subscribers import find_subscriber
from bulletin.db import session_scope
from bulletin.models import Subscriber


def _export(engine, **kw) -> str:
    out = io.StringIO()
    with session_scope(engine) as s:
        exporter.export(s, out, **kw)
    return out.getvalue()


def test_csv_export_reimports_as_a_no_op(engine, lists, workspace, tmp_path):
    import_csv(engine, workspace / "subscribers" / "sample.csv", actor="t")
    dump = tmp_path / "dump.csv"
    dump.write_text(_export(engine, fmt="csv"), encoding="utf-8")
    rows = list(csv.DictReader(dump.open(encoding="utf-8")))
    assert rows and set(rows[0]) == {"email", "name", "organisation", "lists", "role"}
    report = import_csv(engine, dump, actor="t")
    assert not report.changed and not report.errors and report.unchanged == len(rows)


def test_filters_by_list_and_state_and_shows_only_matching_lists(engine, lists):
    with session_scope(engine) as s:
        a = L.subscribe(s, "a@example.org", [lists["finance"], lists["workforce"]], confirmed=True,
                        source="cli", actor="t")
        L.subscribe(s, "b@example.org", [lists["finance"]], confirmed=False, source="cli", actor="t")
        L.unsubscribe(s, a.id, lists["workforce"], source="cli", actor="t")
    confirmed = list(csv.DictReader(io.StringIO(_export(engine, state="confirmed"))))
    assert [(r["email"], r["lists"]) for r in confirmed] == [("a@example.org", "finance")]
    finance = [json.loads(line) for line in _export(engine, fmt="json", list_slug="finance").splitlines()]
    assert [(r["email"], r["subscriptions"]) for r in finance] == [
        ("a@example.org", {"finance": "confirmed"}), ("b@example.org", {"finance": "pending"})]
    everything = [json.loads(line) for line in _export(engine, fmt="json").splitlines()]
    assert everything[0]["subscriptions"] == {"finance": "confirmed", "workforce": "unsubscribed"}


def test_erased_people_are_never_exported(engine, lists):
    with session_scope(engine) as s:
        gone = L.subscribe(s, "gone@example.org", [lists["finance"]], name="Gone", confirmed=True,
                           source="cli", actor="t")
        L.subscribe(s, "kept@example.org", [lists["finance"]], confirmed=True, source="cli", actor="t")
        L.erase(s, gone.id, source="cli", actor="dpo")
    text = _export(engine, fmt="json")
    assert "kept@example.org" in text and "Gone" not in text and text.count("\n") == 1


def test_export_walks_large_audiences_in_windows(engine, lists, tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "WINDOW", 7)
    f = tmp_path / "many.csv"
    f.write_text("email,lists\n" + "".join(f"m{i:03d}@example.org,finance\n" for i in range(30)))
    import_csv(engine, f, actor="t")
    rows = list(csv.DictReader(io.StringIO(_export(engine))))
    assert [r["email"] for r in rows] == [f"m{i:03d}@example.org" for i in range(30)]
    with session_scope(engine) as s:
        assert find_subscriber(s, "m000@example.org") is not None
        assert len(s.exec(select(Subscriber)).all()) == 30


def test_formula_like_names_are_exported_as_text_and_reimport_unchanged(engine, lists, tmp_path):
    with session_scope(engine) as s:
        L.subscribe(s, "f@example.org", [lists["finance"]], name='=HYPERLINK("http://x.example","y")',
                    organisation="-Eastvale", confirmed=True, source="web", actor="form")
        s.get(Subscriber, find_subscriber(s, "f@example.org").id).attributes = {"note": "@mention", "n": 3}
    text = _export(engine)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["name"].startswith("'=") and row["organisation"] == "'-Eastvale" and row["note"] == "'@mention"
    dump = tmp_path / "f.csv"
    dump.write_text(text, encoding="utf-8")
    report = import_csv(engine, dump, actor="t")
    assert not report.changed and not report.errors
    with session_scope(engine) as s:
        sub = find_subscriber(s, "f@example.org")
        assert sub.name.startswith("=HYPERLINK") and sub.attributes["note"] == "@mention"


def test_formula_like_addresses_are_exported_as_text_and_reimport_unchanged(engine, lists, tmp_path):
    """A public form accepts `=2+5+cmd|...@example.org` (a valid address): its cell must not run in Excel.
    An address that already starts with a quote keeps it: the guard adds one quote and the import takes one."""
    formula, quoted = "=2+5+cmd|'/ccalc'!a0@example.org", "'=quoted@example.org"
    with session_scope(engine) as s:
        for address in (formula, quoted):
            L.subscribe(s, address, [lists["finance"]], confirmed=True, source="web", actor="form")
    text = _export(engine)
    emails = [row["email"] for row in csv.DictReader(io.StringIO(text))]
    assert sorted(emails) == sorted(["'" + formula, "'" + quoted])
    dump = tmp_path / "f.csv"
    dump.write_text(text, encoding="utf-8")
    report = import_csv(engine, dump, actor="t")
    assert not report.changed and not report.errors and report.created == 0
    with session_scope(engine) as s:
        assert len(s.exec(select(Subscriber)).all()) == 2
        assert find_subscriber(s, formula) is not None and find_subscriber(s, quoted) is not None
