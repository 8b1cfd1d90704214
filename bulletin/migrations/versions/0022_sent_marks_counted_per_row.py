"""PostgreSQL: the sent marks keep the running counts with a row trigger, not the statement trigger

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-28 12:00:00

A send marks its messages sent one group at a time, and the groups hold one row
nearly always (a sender waits for its own mark before its next message). For a
one-row UPDATE the statement-level trigger of 0019 (transition tables, a join of
old and new, an aggregate and two upserts) was the larger half of the server's
time per message: its plan is set up afresh for every statement. The sent
writer's connection sets `bulletin.row_counts = on`; for its statements the
statement trigger does not fire (WHEN), and a row trigger applies the same
deltas with two small upserts whose plans stay cached. Everything else still
counts through the statement trigger, which stays the cheaper one for a claim of
200 rows or a cancelled send. Both take the issue's counter lock of 0019 first.
SQLite is unchanged (its triggers are per row already).
"""
from alembic import op


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

LOCK_CLASS = 7301  # as 0019 and delivery/counts.py
MINUTE = "(CAST(EXTRACT(EPOCH FROM {0}) AS BIGINT) - CAST(EXTRACT(EPOCH FROM {0}) AS BIGINT) % 60)"  # 0019's minute
ROW_MODE = "current_setting('bulletin.row_counts', true)"


def _count(row: str, d: int) -> str:
    return (f"INSERT INTO delivery_count AS t (issue_id, send_id, segment, state, shard, n) "
            f"VALUES ({row}.issue_id, {row}.send_id, coalesce({row}.segment, ''), {row}.state, my_shard, {d}) "
            "ON CONFLICT (issue_id, send_id, segment, state, shard) DO UPDATE SET n = t.n + excluded.n;")


def _minute(row: str, d: int) -> str:
    return (f"IF {row}.state = 'sent' AND {row}.sent_at IS NOT NULL THEN "
            f"INSERT INTO delivery_minute AS t (issue_id, minute, shard, n) "
            f"VALUES ({row}.issue_id, {MINUTE.format(row + '.sent_at')}, my_shard, {d}) "
            "ON CONFLICT (issue_id, minute, shard) DO UPDATE SET n = t.n + excluded.n; END IF;")


ROW_FUNCTION = f"""
CREATE FUNCTION delivery_counts_row_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := delivery_counts_shard();
BEGIN
    -- The issue's counter lock of 0019, in issue order when a row moves between issues.
    PERFORM pg_advisory_xact_lock({LOCK_CLASS} + my_shard, least(OLD.issue_id, NEW.issue_id));
    IF OLD.issue_id <> NEW.issue_id THEN
        PERFORM pg_advisory_xact_lock({LOCK_CLASS} + my_shard, greatest(OLD.issue_id, NEW.issue_id));
    END IF;
    IF (OLD.issue_id, OLD.send_id, OLD.segment, OLD.state) IS DISTINCT FROM
       (NEW.issue_id, NEW.send_id, NEW.segment, NEW.state) THEN
        {_count('OLD', -1)}
        {_count('NEW', 1)}
    END IF;
    IF (OLD.issue_id, OLD.state, OLD.sent_at) IS DISTINCT FROM (NEW.issue_id, NEW.state, NEW.sent_at) THEN
        {_minute('OLD', -1)}
        {_minute('NEW', 1)}
    END IF;
    RETURN NULL;
END $$"""


def _statement_trigger(when: str) -> str:
    return ("CREATE TRIGGER delivery_counts_update AFTER UPDATE ON delivery "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT {when}EXECUTE FUNCTION delivery_counts_after_update()")


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER delivery_counts_update ON delivery")
    op.execute(_statement_trigger(f"WHEN ({ROW_MODE} IS DISTINCT FROM 'on') "))
    op.execute(ROW_FUNCTION)
    op.execute("CREATE TRIGGER delivery_counts_row AFTER UPDATE ON delivery FOR EACH ROW "
               f"WHEN ({ROW_MODE} = 'on') EXECUTE FUNCTION delivery_counts_row_update()")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER delivery_counts_row ON delivery")
    op.execute("DROP FUNCTION delivery_counts_row_update()")
    op.execute("DROP TRIGGER delivery_counts_update ON delivery")
    op.execute(_statement_trigger(""))
