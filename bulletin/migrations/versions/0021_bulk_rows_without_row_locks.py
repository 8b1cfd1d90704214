"""PostgreSQL: the ledger and the consent log refer to their parents without foreign keys

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-28 08:50:00

A foreign key check on PostgreSQL is a query and a row lock (SELECT ... FOR KEY
SHARE) per inserted row: queueing an issue for a million people locked and
rewrote every subscriber row and spent half of the COPY's server time on the
checks; an import paid two checks for each subscription and each consent event.
The parents are never deleted (subscribers are erased in place, lists that
leave the definitions file are reported and kept, issues and sends stay), and
every row is written from parent ids read in the same transaction, so the
checks could only ever pass. `bulletin doctor` counts rows whose parent is
missing. SQLite keeps its foreign keys: a check there is one index probe
without a lock, and rebuilding the tables would drop the ledger's triggers.
"""
from alembic import op


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

DROPPED = [
    ('delivery', 'issue_id', 'issue', None),
    ('delivery', 'send_id', 'send', None),
    ('delivery', 'subscriber_id', 'subscriber', None),
    ('subscription', 'list_id', 'mailing_list', None),
    ('subscription', 'subscriber_id', 'subscriber', 'CASCADE'),
    ('subscriber_event', 'issue_id', 'issue', None),
    ('subscriber_event', 'list_id', 'mailing_list', None),
    ('subscriber_event', 'subscriber_id', 'subscriber', 'CASCADE'),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, _parent, _ondelete in DROPPED:
        op.drop_constraint(f'{table}_{column}_fkey', table, type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, parent, ondelete in DROPPED:
        op.create_foreign_key(f'{table}_{column}_fkey', table, parent, [column], ['id'], ondelete=ondelete)
