"""Rows that must point at a parent: what foreign keys would guarantee where the schema has none.

On PostgreSQL the ledger and the consent log carry no foreign keys (migration
0021: a checked row is a query and a row lock, which doubled the cost of
queueing and importing a large list). The code never deletes a subscriber,
list, issue or send, so no row can lose its parent; this check says so from the
data, and names what is missing if somebody deleted a parent by hand.
"""

from __future__ import annotations

from sqlalchemy import text

from bulletin.config import Settings
from bulletin.db import make_engine
from bulletin.doctor.result import FAIL, PASS, Check

# (table, column, parent table): every reference migration 0021 stopped checking.
REFERENCES = [
    ("delivery", "subscriber_id", "subscriber"),
    ("delivery", "issue_id", "issue"),
    ("delivery", "send_id", "send"),
    ("subscription", "subscriber_id", "subscriber"),
    ("subscription", "list_id", "mailing_list"),
    ("subscriber_event", "subscriber_id", "subscriber"),
    ("subscriber_event", "list_id", "mailing_list"),
    ("subscriber_event", "issue_id", "issue"),
]


def check_references(settings: Settings) -> Check:
    """One anti-join per reference (a hash join each: about a second a million rows)."""
    engine = make_engine(settings.effective_database_url, upgrade=False)
    missing: list[str] = []
    try:
        with engine.connect() as conn:
            for table, column, parent in REFERENCES:
                n = conn.execute(text(
                    f'SELECT count(*) FROM "{table}" t WHERE t."{column}" IS NOT NULL AND NOT EXISTS '
                    f'(SELECT 1 FROM "{parent}" p WHERE p.id = t."{column}")')).scalar_one()
                if n:
                    missing.append(f"{n} {table} row(s) refer to a missing {parent} ({table}.{column})")
    finally:
        engine.dispose()
    if missing:
        return Check("references", FAIL, "; ".join(missing),
                     "a parent row was deleted outside bulletin: restore it from a backup")
    return Check("references", PASS, "every ledger, subscription and consent row has its subscriber, list, "
                 "issue and send")
