"""PostgreSQL: a connection whose sent marks keep the running counts in their own statement

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 10:00:00

The sent writer's mark is now one statement that updates the claimed rows and
moves their counts (delivery/sent.py, `_counted`); 0022's row trigger, queued
and fired for every row as four small statements, was a third of the server's
time per message under `perf`. Such a connection sets `bulletin.row_counts` to
'self', for which neither count trigger may fire: the row trigger fires for
'on' only already, and the statement trigger is re-created here to skip 'self'
as well as 'on'. Every other connection counts through the triggers as before.
"""
from alembic import op


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

SETTING = "coalesce(current_setting('bulletin.row_counts', true), '')"


def _statement_trigger(when: str) -> str:
    return ("CREATE TRIGGER delivery_counts_update AFTER UPDATE ON delivery "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT WHEN ({when}) EXECUTE FUNCTION delivery_counts_after_update()")


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER delivery_counts_update ON delivery")
    op.execute(_statement_trigger(f"{SETTING} NOT IN ('on', 'self')"))


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER delivery_counts_update ON delivery")
    op.execute(_statement_trigger("current_setting('bulletin.row_counts', true) IS DISTINCT FROM 'on'"))
