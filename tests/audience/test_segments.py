"""Segments over a generated CSV of 5,000 people: counts equal a set computed from the CSV rows alone."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from bulletin.audience.importer import import_csv
from bulletin.audience.segments import (
    load_segments,
    segment_count,
    segment_members,
    segments_file,
)
from bulletin.config import Settings
from bulletin.db import session_scope
from bulletin.errors import ConfigError
from bulletin.models import Subscriber, Subscription
from tests.conftest import cli_runner

ROLES = ["Finance officer", "Head of Finance", "HR lead", "Payroll manager", "ICT architect", "Chief executive",
         "finance Business Partner", "Procurement lead", ""]
REGIONS = ["north", "south", "east", "west", "North", ""]
ORGS = ["Riverside Borough Council", "Southby Unitary Authority", "Northshire County Council", "Eastham 100% Trust"]

SEGMENTS = """\
# Who gets what
[[segment]]
name = "finance"
description = "Finance people"
list = "shared-services"
condition = "role contains 'finance'"

[[segment]]
name = "north-not-hr"
list = "shared-services"
condition = "region in ('north', 'east') and not role starts with 'hr'"

[[segment]]
name = "councils-or-no-region"
list = "shared-services"
condition = "organisation contains 'council' or not region exists"

[[segment]]
name = "early-chiefs"
list = "shared-services"
condition = "role = 'chief executive' or subscribed before 2026-01-01"
"""


def generate(path: Path, n: int = 5000) -> list[dict[str, str]]:
    rnd = random.Random(17)
    rows = []
    for i in range(n):
        rows.append({"email": f"p{i}@example.org", "name": f"Person {i}", "organisation": rnd.choice(ORGS),
                     "lists": "shared-services", "role": rnd.choice(ROLES), "region": rnd.choice(REGIONS)})
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def early(i: int) -> bool:
    return i % 3 == 0


def expected(rows: list[dict[str, str]]) -> dict[str, set[str]]:
    """Computed from the CSV rows with plain Python, independently of the condition compiler."""
    out: dict[str, set[str]] = {"finance": set(), "north-not-hr": set(), "councils-or-no-region": set(),
                                "early-chiefs": set()}
    for i, r in enumerate(rows):
        role, region, org = r["role"].lower(), r["region"].lower(), r["organisation"].lower()
        if "finance" in role:
            out["finance"].add(r["email"])
        if region in ("north", "east") and not role.startswith("hr"):
            out["north-not-hr"].add(r["email"])
        if "council" in org or region == "":
            out["councils-or-no-region"].add(r["email"])
        if role == "chief executive" or early(i):
            out["early-chiefs"].add(r["email"])
    return out


@pytest.fixture
def people(engine: Engine, workspace: Path, lists: dict[str, int]) -> list[dict[str, str]]:
    rows = generate(workspace / "people.csv")
    report = import_csv(engine, workspace / "people.csv", actor="test")
    assert not report.errors and report.created == 5000
    with session_scope(engine) as session:  # a third subscribed in 2025, the rest in 2026
        session.execute(update(Subscription).values(confirmed_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)))
        early_ids = session.exec(  # type: ignore[call-overload]
            Subscriber.__table__.select().with_only_columns(Subscriber.id).where(
                Subscriber.email.in_([r["email"] for i, r in enumerate(rows) if early(i)])))
        ids = [row[0] for row in early_ids]
        session.execute(update(Subscription).where(Subscription.subscriber_id.in_(ids))
                        .values(confirmed_at=dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC)))
    (workspace / "subscribers" / "segments.toml").write_text(SEGMENTS, encoding="utf-8")
    return rows


def test_segment_counts_equal_the_hand_computed_sets(engine: Engine, workspace: Path, people) -> None:  # type: ignore[no-untyped-def]
    want = expected(people)
    segments = load_segments(segments_file(workspace / "subscribers"))
    assert [s.name for s in segments] == list(want)
    with session_scope(engine) as session:
        for seg in segments:
            got = {email for _, email, _ in segment_members(session, seg)}
            assert got == want[seg.name], seg.name
            assert segment_count(session, seg) == len(want[seg.name])
    assert all(0 < len(v) < 5000 for v in want.values())


def test_segment_leaves_out_unsubscribed_and_suppressed_people(engine: Engine, workspace: Path, people) -> None:  # type: ignore[no-untyped-def]
    from bulletin.audience import lifecycle

    seg = load_segments(segments_file(workspace / "subscribers"))[0]
    with session_scope(engine) as session:
        members = segment_members(session, seg)
        first, second = members[0][0], members[1][0]
        lifecycle.unsubscribe(session, first, None, source="cli", actor="test")
        lifecycle.suppress(session, members[1][1], "test", source="cli", actor="test")
    with session_scope(engine) as session:
        ids = {i for i, _, _ in segment_members(session, seg)}
    assert first not in ids and second not in ids and len(ids) == len(members) - 2


@pytest.fixture
def cli(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    env = {"BULLETIN_DATABASE_URL": settings.effective_database_url}
    return cli_runner(settings, env)


def test_cli_lists_shows_and_pages_a_segment(cli, people) -> None:  # type: ignore[no-untyped-def]
    want = expected(people)
    code, out = cli("segments", "list", "--json")
    assert code == 0
    assert {s["name"]: s["count"] for s in json.loads(out)} == {k: len(v) for k, v in want.items()}
    code, out = cli("segments", "show", "finance", "--sample", "5", "--json")
    data = json.loads(out)
    assert data["count"] == len(want["finance"]) and len(data["sample"]) == 5
    assert {s["email"] for s in data["sample"]} <= want["finance"]
    code, out = cli("subscribers", "list", "--segment", "north-not-hr", "--per-page", "1000", "--page", "1", "--json")
    data = json.loads(out)
    assert data["total"] == len(want["north-not-hr"])
    assert {r["email"] for r in data["rows"]} <= want["north-not-hr"] and len(data["rows"]) == min(1000, data["total"])
    code, out = cli("segments", "show", "nobody")
    assert code == 3 and "no such segment" in out and "finance" in out


@pytest.mark.parametrize(("toml", "where", "words"), [
    ('[[segment]]\nname = "a"\nlist = "l"\ncondition = "role = \'x\' and"\n', ":4:28", "expected a field name"),
    ('# c\n[[segment]]\nname = "a"\nlist = "l"\n  condition   =  \'region in (north)\'\n', ":5:30", "expected a quoted value"),
    ('[[segment]]\nname = "a"\nlist = "l"\ncondition = """\nrole = \'x\'\n  or subscribed before tomorrow"""\n',
     ":6:24", "expected a date"),
    ('[[segment]]\nname = "a"\nlist = "l"\ncondition = "role = \'x\'"\n[[segment]]\nname = "b"\nlist = "l"\n'
     'condition = "x ! y"\n', ":8:16", "unexpected character '!'"),
    ('[[segment]]\nname = "A b"\nlist = "l"\ncondition = "x exists"\n', ":1", "lower-case"),
    ('[[segment]]\nname = "a"\nlist = "l"\n', ":1", "'condition' is required"),
    ('[[segment]]\nname = "a"\nlist = "l"\ncondition = "x exists"\ncolour = "red"\n', ":1", "unknown field 'colour'"),
    ('[[segment]]\nname = "a"\nlist = "l"\ncondition = "x exists"\n[[segment]]\nname = "a"\nlist = "l"\n'
     'condition = "y exists"\n', "", "defined twice"),
])
def test_a_bad_segments_file_names_file_line_and_column(tmp_path: Path, toml: str, where: str, words: str) -> None:
    path = tmp_path / "segments.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_segments(path)
    assert str(info.value.where).startswith(str(path) + where), info.value.where
    assert words in info.value.message


def test_no_segments_file_means_no_segments(tmp_path: Path) -> None:
    assert load_segments(tmp_path / "segments.toml") == []
