"""The console's prefix search after migration 0023: on PostgreSQL the address and its hash compare
in byte order ("C"), so the unique address index (no second copy of it) answers a prefix as a range,
and punctuation in an address is compared, not skipped as a locale collation would."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from bulletin.audience.directory import search_people
from bulletin.db import session_scope
from bulletin.models import Subscriber

ADDRESSES = ["o.brien@example.org", "obrien@example.org", "o-brien@example.org", "ob@example.org",
             "zed@example.org", "O.Bright@example.org".lower()]


def add_people(session: Session) -> None:
    for n, email in enumerate(ADDRESSES):
        session.add(Subscriber(email=email, email_hash=f"{n:064x}", name=f"Person {n}"))


def test_a_prefix_with_punctuation_finds_exactly_the_addresses_that_start_with_it(engine) -> None:
    with session_scope(engine) as session:
        add_people(session)
    with session_scope(engine) as session:
        found = {r.email for r in search_people(session, "o.b").rows}
        assert found == {"o.brien@example.org", "o.bright@example.org"}
        assert {r.email for r in search_people(session, "O-").rows} == {"o-brien@example.org"}
        assert {r.email for r in search_people(session, "obr").rows} == {"obrien@example.org"}


def test_postgresql_keeps_one_address_index_in_byte_order_and_searches_with_it(engine) -> None:
    if engine.dialect.name != "postgresql":
        return  # SQLite compares bytes (BINARY) already and has no collation to change
    with engine.connect() as conn:
        collations = dict(conn.execute(text(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_name = 'subscriber' AND column_name IN ('email', 'email_hash')")).all())
        assert collations == {"email": "C", "email_hash": "C"}
        indexes = {r[0] for r in conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'subscriber'"))}
        assert "ix_subscriber_email_c" not in indexes and "ix_subscriber_email" in indexes
        conn.execute(text("SET enable_seqscan = off"))  # a handful of rows: make the planner show what it can use
        plan = " ".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT id FROM subscriber WHERE email COLLATE \"C\" >= 'o.b' AND email COLLATE \"C\" < 'o.c'")))
        assert "ix_subscriber_email" in plan, plan


def test_a_prefix_ending_in_the_last_code_point_or_before_the_surrogates_is_a_range(engine) -> None:
    """The range's upper end is the prefix's successor: past U+10FFFF there is none, and after U+D7FF
    comes U+E000 (a surrogate cannot be bound on either database)."""
    with session_scope(engine) as session:
        for n, name in enumerate(["Ab\U0010ffff", "Ab\U0010ffff\U0010ffffz", "Ab\ud7ffx", "Ab\ue000", "Ac"]):
            session.add(Subscriber(email=f"p{n}@example.org", email_hash=f"{n:064x}", name=name))
    with session_scope(engine) as session:
        names = {r.name for r in search_people(session, "ab\U0010ffff").rows}
        assert names == {"Ab\U0010ffff", "Ab\U0010ffff\U0010ffffz"}
        assert {r.name for r in search_people(session, "\U0010ffff").rows} == set()
        assert {r.name for r in search_people(session, "ab\ud7ff").rows} == {"Ab\ud7ffx"}
