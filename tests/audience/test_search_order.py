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
