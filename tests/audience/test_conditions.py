"""The condition language: each operator, precedence, errors with columns, and SQL agreeing with Python."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import select

from bulletin.audience.conditions import (
    AllOf,
    AnyOf,
    Compare,
    ConditionError,
    Not,
    Reader,
    parse_condition,
)
from bulletin.audience.segments import columns
from bulletin.audience.targeting import readers_for
from bulletin.db import session_scope
from bulletin.models import MailingList, Subscriber, Subscription
from bulletin.statuses import SubscriptionState

UTC = dt.UTC
FINANCE = Reader(email="amina@riverside.example.gov.uk", name="Amina Khan", organisation="Riverside Borough Council",
                 attributes={"role": "Finance Officer", "region": "North"},
                 subscribed=dt.datetime(2025, 6, 1, 9, 0, tzinfo=UTC), created=dt.datetime(2025, 5, 1, tzinfo=UTC))
HR = Reader(email="ben@southby.example.org", name="Ben Lewis", organisation="Southby Unitary Authority",
            attributes={"role": "HR lead"}, subscribed=dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC))


def matches(text: str, reader: Reader) -> bool:
    return parse_condition(text).matches(reader)


@pytest.mark.parametrize(("text", "finance", "hr"), [
    ("role = 'finance officer'", True, False),
    ("role != 'finance officer'", False, True),
    ("region = ''", False, True),
    ("region in ('south', 'north')", True, False),
    ("role contains 'FINANCE'", True, False),
    ("organisation starts with 'riverside'", True, False),
    ("region exists", True, False),
    ("not region exists", False, True),
    ("subscribed before 2026-01-01", True, False),
    ("subscribed after 2025-12-31", False, True),
    ("subscribed after 2026-01-01", False, False),
    ("created exists", True, False),
    ("email contains '@southby.'", False, True),
    ("name = \"Ben Lewis\"", False, True),
    ("attributes.role starts with 'hr'", False, True),
])
def test_each_operator(text: str, finance: bool, hr: bool) -> None:
    assert (matches(text, FINANCE), matches(text, HR)) == (finance, hr)


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    tree = parse_condition("a = '1' or b = '2' and not c = '3'").tree
    assert tree == AnyOf((Compare("a", "=", ("1",)), AllOf((Compare("b", "=", ("2",)), Not(Compare("c", "=", ("3",)))))))
    assert matches("role = 'x' or region = 'north' and role contains 'finance'", FINANCE)
    assert not matches("(role = 'x' or region = 'north') and role contains 'hr'", FINANCE)
    assert matches("not (role = 'x' or region = 'south')", FINANCE)


def test_keywords_ignore_case_and_values_keep_quotes_and_semicolons() -> None:
    cond = parse_condition("role CONTAINS 'it''s' OR name = \"say \"\"hi\"\"\"")
    assert cond.tree == AnyOf((Compare("role", "contains", ("it's",)), Compare("name", "=", ('say "hi"',))))
    literal = parse_condition("name = 'x\\'; DROP TABLE subscriber; --'").tree
    assert literal == Compare("name", "=", ("x'; DROP TABLE subscriber; --",))
    assert matches("role contains 'it''s'", Reader(attributes={"role": "It's me"}))


@pytest.mark.parametrize(("text", "column", "words"), [
    ("", 1, "empty"),
    ("role", 5, "expected =, !=, in"),
    ("role = ", 8, "expected a quoted value"),
    ("role = 'finance", 8, "not closed"),
    ("role = 'a' and", 15, "expected a field name"),
    ("role = 'a' or or", 15, "expected a field name"),
    ("role = 'a' region = 'b'", 12, "expected 'and', 'or'"),
    ("(role = 'a'", 12, "expected ')'"),
    ("role in 'a'", 9, "expected '('"),
    ("role in ('a' 'b')", 14, "expected ',' or ')'"),
    ("role starts 'a'", 13, "expected 'with'"),
    ("role before 2026-01-01", 6, "compares dates"),
    ("subscribed = 'x'", 12, "is a date"),
    ("subscribed before 2026-13-01", 19, "not a date"),
    ("subscribed before soon", 19, "expected a date"),
    ("role = 'a'; drop table subscriber", 11, "unexpected character ';'"),
    ("role = 'a' and and", 16, "expected a field name"),
])
def test_errors_name_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert info.value.column == column, info.value.message
    assert words in info.value.message


# SQL and Python agree, on both databases --------------------------------------------------------

PEOPLE = [
    # email, name, organisation, attributes, confirmed_at
    ("a@x.org", "Amina Khan", "Riverside Council", {"role": "Finance Officer", "region": "north"}, dt.datetime(2025, 6, 1, tzinfo=UTC)),
    ("b@x.org", "Ben Lewis", "Southby", {"role": "HR lead"}, dt.datetime(2026, 1, 1, tzinfo=UTC)),
    ("c@x.org", "Céline Ärzte", "ÄRZTE Verband", {"role": "Ärztin", "region": "EAST"}, dt.datetime(2025, 12, 31, 23, 59, tzinfo=UTC)),
    ("d@x.org", "Dev 100%", "50_50 Ltd", {"role": "x'; DROP TABLE subscriber; --", "region": ""}, None),
    ("e@x.org", "", "", {}, dt.datetime(2026, 3, 1, tzinfo=UTC)),
]

AGREE = [
    "role contains 'finance'",
    "role = 'ärztin'",  # ASCII folding only: Ä does not match ä on either database
    "role = 'Ärztin'",
    "organisation contains 'ärzte' or organisation contains 'ÄRZTE'",
    "name contains '%'",
    "organisation contains '_'",
    "organisation starts with '50_'",
    "role = 'x\\'; DROP TABLE subscriber; --'",
    "region exists",
    "not region exists",
    "region != 'north'",
    "region in ('north', 'east')",
    "subscribed before 2026-01-01",
    "subscribed after 2025-12-31",
    "not subscribed before 2026-01-01",
    "subscribed exists and not (role contains 'hr' or name = '')",
]

EXPECTED = {
    "role contains 'finance'": {"a"},
    "role = 'ärztin'": set(),
    "role = 'Ärztin'": {"c"},
    "name contains '%'": {"d"},
    "organisation contains '_'": {"d"},
    "region exists": {"a", "c"},
    "not region exists": {"b", "d", "e"},
    "region in ('north', 'east')": {"a", "c"},
    "subscribed before 2026-01-01": {"a", "c"},
    "subscribed after 2025-12-31": {"b", "d", "e"},  # d: no confirmed_at, subscribed 2026-02-01
    "not subscribed before 2026-01-01": {"b", "d", "e"},
    "role = 'x\\'; DROP TABLE subscriber; --'": {"d"},
}


@pytest.fixture
def population(engine: Engine) -> tuple[int, dict[int, str]]:
    with session_scope(engine) as session:
        ml = MailingList(slug="news", name="News", from_name="News", from_address="news@x.org")
        session.add(ml)
        session.flush()
        ids: dict[int, str] = {}
        for email, name, org, attrs, confirmed in PEOPLE:
            sub = Subscriber(email=email, email_hash=email, name=name, organisation=org, attributes=attrs)
            session.add(sub)
            session.flush()
            created = confirmed or dt.datetime(2025, 1, 1, tzinfo=UTC)
            session.add(Subscription(subscriber_id=sub.id, list_id=ml.id, state=SubscriptionState.CONFIRMED,
                                     confirmed_at=confirmed, created_at=created if confirmed else dt.datetime(2026, 2, 1, tzinfo=UTC)))
            ids[int(sub.id or 0)] = email[0]
        return int(ml.id or 0), ids


@pytest.mark.parametrize("text", AGREE)
def test_sql_and_python_choose_the_same_people(engine: Engine, population, text: str) -> None:  # type: ignore[no-untyped-def]
    list_id, ids = population
    cond = parse_condition(text)
    with session_scope(engine) as session:
        stmt = (select(Subscriber.id).join(Subscription, Subscription.subscriber_id == Subscriber.id)
                .where(Subscription.list_id == list_id, cond.to_sql(columns())))
        by_sql = {ids[int(i)] for i in session.exec(stmt).all()}
        readers = readers_for(session, ids, list_id)
    by_python = {ids[i] for i, r in readers.items() if cond.matches(r)}
    assert by_sql == by_python
    if text in EXPECTED:
        assert by_sql == EXPECTED[text]
    with engine.connect() as conn:
        assert inspect(conn).has_table("subscriber")
