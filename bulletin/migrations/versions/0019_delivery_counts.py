"""delivery counts: running counts beside the ledger, kept by triggers

Revision ID: 0019
Revises: 0016
Create Date: 2027-01-10 00:00:00

`status` and `report` counted every ledger row of an issue (GROUP BY state, and
per bucket of sent_at for the timeline): 0.7 s and 2.7 s at a million rows.
Two small tables now hold those counts: delivery_count (rows per issue, send,
segment and state; '' is "no segment") and delivery_minute (sent rows per
minute of sent_at, as report.sql.epoch spells the second, so the timeline's
buckets, all whole minutes, add up exactly as before).

Triggers on delivery keep them, in the statement that changes the ledger, so
no writer (the driver-SQL hot path, COPY, the ORM, a hand-run UPDATE) can
forget them. PostgreSQL: one statement-level trigger per operation reads the
transition tables and applies one upsert of deltas per table, in key order.
Each transaction writes to one of SHARDS copies of the counter rows (its
transaction id modulo SHARDS; readers add them up): a counter row stays locked
until commit, so with one copy two workers could never share a WAL flush, and
every group commit of one waited for the other's. Before touching its shard
a trigger takes a transaction-level advisory lock (7301 + shard, issue_id) per
issue, in issue order: every counter row of an issue's shard is only ever
touched under that lock, so transactions that change the ledger in several
statements (a claim that cancels the unsubscribed, a group of outcomes) cannot
deadlock on them (tests/delivery/test_counts.py deadlocked without it).
A transaction that set `bulletin.count_later = on` (the streamed queueing,
which would otherwise hold the lock for its whole COPY) skips the insert
trigger and adds its own count at the end (delivery/counts.py). SQLite: row
triggers and one shard (0), since a SQLite database has one writer at a time.

Also a partial index of the rows that carry an error, for the errors list of
`status`, and one of the consent-log events an issue caused, for the report's
unsubscribes and complaints (the log holds an event per imported person, and
counting an issue's read all of it). Existing rows are counted here, inside
the migration's transaction.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0019'
down_revision = '0016'
branch_labels = None
depends_on = None

LOCK_CLASS = 7301  # pg_advisory_xact_lock(LOCK_CLASS + shard, issue_id); delivery/counts.py uses the same
SHARDS = 32  # copies of each counter row; delivery/counts.py uses the same
COUNTED = ('issue_id', 'send_id', 'segment', 'state', 'sent_at')
PG_EPOCH = "CAST(EXTRACT(EPOCH FROM {0}) AS BIGINT)"
SQLITE_EPOCH = "CAST(strftime('%s', {0}) AS INTEGER)"


def upgrade() -> None:
    op.create_table('delivery_count',
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('send_id', sa.Integer(), nullable=False),
    sa.Column('segment', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.ForeignKeyConstraint(['send_id'], ['send.id'], ),
    sa.PrimaryKeyConstraint('issue_id', 'send_id', 'segment', 'state', 'shard')
    )
    op.create_table('delivery_minute',
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('minute', sa.BigInteger(), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.PrimaryKeyConstraint('issue_id', 'minute', 'shard')
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_errors', ['issue_id'], unique=False,
                              postgresql_where=sa.text('last_error IS NOT NULL'),
                              sqlite_where=sa.text('last_error IS NOT NULL'))
    with op.batch_alter_table('subscriber_event', schema=None) as batch_op:
        batch_op.create_index('ix_subscriber_event_issue', ['issue_id', 'kind'], unique=False,
                              postgresql_where=sa.text('issue_id IS NOT NULL'),
                              sqlite_where=sa.text('issue_id IS NOT NULL'))
    if op.get_bind().dialect.name == 'postgresql':
        for sql in _pg_triggers():
            op.execute(sql)
        epoch = PG_EPOCH
    else:
        for sql in _sqlite_triggers():
            op.execute(sql)
        epoch = SQLITE_EPOCH
    op.execute("INSERT INTO delivery_count (issue_id, send_id, segment, state, shard, n) "
               "SELECT issue_id, send_id, coalesce(segment, ''), state, 0, count(*) FROM delivery "
               "GROUP BY issue_id, send_id, coalesce(segment, ''), state")
    op.execute("INSERT INTO delivery_minute (issue_id, minute, shard, n) SELECT issue_id, e - e % 60, 0, count(*) "
               f"FROM (SELECT issue_id, {epoch.format('sent_at')} AS e FROM delivery "
               "WHERE state = 'sent' AND sent_at IS NOT NULL) s GROUP BY issue_id, e - e % 60")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for op_name in ('insert', 'update', 'delete'):
            op.execute(f"DROP TRIGGER IF EXISTS delivery_counts_{op_name} ON delivery")
            op.execute(f"DROP FUNCTION IF EXISTS delivery_counts_after_{op_name}()")
        op.execute("DROP FUNCTION IF EXISTS delivery_counts_shard()")
    else:
        for name in ('count_insert', 'count_update', 'count_delete', 'minute_insert', 'minute_update',
                     'minute_delete'):
            op.execute(f"DROP TRIGGER IF EXISTS delivery_{name}")
    with op.batch_alter_table('subscriber_event', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriber_event_issue')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_errors')
    op.drop_table('delivery_minute')
    op.drop_table('delivery_count')


# PostgreSQL -----------------------------------------------------------------------------------------

def _pg_apply(changes: str) -> str:
    """One statement: lock the issues' shard, then one upsert of deltas per table; `changes` yields
    (issue_id, send_id, segment, state, sent_at, d) with d = +1 or -1.

    Both upserts read `locked`, and each aggregates all its input before inserting a row, so the
    advisory locks are held before the first counter row is touched.
    """
    minute = PG_EPOCH.format('sent_at')
    return f"""
    WITH c AS MATERIALIZED ({changes}),
    locked AS MATERIALIZED (
        SELECT count(*) AS issues FROM (
            SELECT pg_advisory_xact_lock({LOCK_CLASS} + my_shard, i.issue_id)
              FROM (SELECT DISTINCT issue_id FROM c ORDER BY issue_id) i) l),
    counted AS (
        INSERT INTO delivery_count AS t (issue_id, send_id, segment, state, shard, n)
        SELECT issue_id, send_id, coalesce(segment, ''), state, my_shard, sum(d) FROM c, locked
         GROUP BY issue_id, send_id, coalesce(segment, ''), state HAVING sum(d) <> 0
         ORDER BY issue_id, send_id, coalesce(segment, ''), state
            ON CONFLICT (issue_id, send_id, segment, state, shard) DO UPDATE SET n = t.n + excluded.n)
    INSERT INTO delivery_minute AS t (issue_id, minute, shard, n)
    SELECT issue_id, e - e % 60, my_shard, sum(d)
      FROM (SELECT issue_id, {minute} AS e, d FROM c WHERE state = 'sent' AND sent_at IS NOT NULL) s, locked
     GROUP BY issue_id, e - e % 60 HAVING sum(d) <> 0 ORDER BY issue_id, e - e % 60
        ON CONFLICT (issue_id, minute, shard) DO UPDATE SET n = t.n + excluded.n;"""


def _pg_function(name: str, body: str) -> str:
    return f"""
CREATE FUNCTION delivery_counts_after_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard smallint := delivery_counts_shard();
BEGIN{body}
    RETURN NULL;
END $$"""


def _pg_triggers() -> list[str]:
    cols = ', '.join(COUNTED)
    inserted = f"SELECT {cols}, 1 AS d FROM new_rows"
    deleted = f"SELECT {cols}, -1 AS d FROM old_rows"
    differs = (f"({', '.join('o.' + c for c in COUNTED)}) IS DISTINCT FROM "
               f"({', '.join('n.' + c for c in COUNTED)})")
    moved = (f"SELECT {', '.join('o.' + c for c in COUNTED)}, -1 AS d FROM old_rows o JOIN new_rows n "
             f"ON n.id = o.id WHERE {differs} UNION ALL "
             f"SELECT {', '.join('n.' + c for c in COUNTED)}, 1 AS d FROM old_rows o JOIN new_rows n "
             f"ON n.id = o.id WHERE {differs}")
    skip = "\n    IF current_setting('bulletin.count_later', true) = 'on' THEN RETURN NULL; END IF;"
    return [
        # The transaction's shard: every statement of one transaction writes the same one.
        f"CREATE FUNCTION delivery_counts_shard() RETURNS smallint LANGUAGE sql VOLATILE AS "
        f"$$ SELECT (txid_current() % {SHARDS})::smallint $$",
        _pg_function('insert', skip + _pg_apply(inserted)),
        _pg_function('update', _pg_apply(moved)),
        _pg_function('delete', _pg_apply(deleted)),
        "CREATE TRIGGER delivery_counts_insert AFTER INSERT ON delivery REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_after_insert()",
        "CREATE TRIGGER delivery_counts_update AFTER UPDATE ON delivery "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_after_update()",
        "CREATE TRIGGER delivery_counts_delete AFTER DELETE ON delivery REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_after_delete()",
    ]


# SQLite ---------------------------------------------------------------------------------------------

def _sqlite_count(row: str, d: int) -> str:
    return (f"INSERT INTO delivery_count (issue_id, send_id, segment, state, shard, n) VALUES ({row}.issue_id, "
            f"{row}.send_id, coalesce({row}.segment, ''), {row}.state, 0, {d}) "
            "ON CONFLICT (issue_id, send_id, segment, state, shard) DO UPDATE SET n = n + excluded.n;")


def _sqlite_minute(row: str, d: int) -> str:
    return (f"INSERT INTO delivery_minute (issue_id, minute, shard, n) SELECT {row}.issue_id, e - e % 60, 0, {d} "
            f"FROM (SELECT {SQLITE_EPOCH.format(row + '.sent_at')} AS e) "
            f"WHERE {row}.state = 'sent' AND {row}.sent_at IS NOT NULL "
            "ON CONFLICT (issue_id, minute, shard) DO UPDATE SET n = n + excluded.n;")


def _sqlite_triggers() -> list[str]:
    moved = ' OR '.join(f"OLD.{c} IS NOT NEW.{c}" for c in ('issue_id', 'send_id', 'segment', 'state'))
    resent = (f"(OLD.state = 'sent' OR NEW.state = 'sent') AND "
              f"(OLD.issue_id IS NOT NEW.issue_id OR OLD.state IS NOT NEW.state OR OLD.sent_at IS NOT NEW.sent_at)")
    return [
        f"CREATE TRIGGER delivery_count_insert AFTER INSERT ON delivery BEGIN {_sqlite_count('NEW', 1)} END",
        "CREATE TRIGGER delivery_count_update AFTER UPDATE OF issue_id, send_id, segment, state ON delivery "
        f"WHEN {moved} BEGIN {_sqlite_count('OLD', -1)} {_sqlite_count('NEW', 1)} END",
        f"CREATE TRIGGER delivery_count_delete AFTER DELETE ON delivery BEGIN {_sqlite_count('OLD', -1)} END",
        "CREATE TRIGGER delivery_minute_insert AFTER INSERT ON delivery WHEN NEW.state = 'sent' "
        f"BEGIN {_sqlite_minute('NEW', 1)} END",
        "CREATE TRIGGER delivery_minute_update AFTER UPDATE OF issue_id, state, sent_at ON delivery "
        f"WHEN {resent} BEGIN {_sqlite_minute('OLD', -1)} {_sqlite_minute('NEW', 1)} END",
        "CREATE TRIGGER delivery_minute_delete AFTER DELETE ON delivery WHEN OLD.state = 'sent' "
        f"BEGIN {_sqlite_minute('OLD', -1)} END",
    ]
