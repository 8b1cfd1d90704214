"""ledger at scale: indexes for millions of rows, compacted tallies

Revision ID: 0018
Revises: 0013
Create Date: 2026-12-01 00:00:00

Drops two delivery indexes that cost on every write and answer nothing alone
(issue_id: uq_delivery(issue_id, subscriber_id) serves it; state: five values),
adds (issue_id, state, sent_at) for status and report, and a partial index of
the rows still to send for the claim. Adds delivery_tally and
subscriber_delivery for `bulletin db compact`.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0018'
down_revision = '0013'
branch_labels = None
depends_on = None

OPEN_ROWS = "state IN ('queued', 'deferred')"


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_issue_id')
        batch_op.drop_index('ix_delivery_state')
        batch_op.create_index('ix_delivery_issue_state_sent', ['issue_id', 'state', 'sent_at'], unique=False)
        batch_op.create_index('ix_delivery_open', ['send_id', 'id'], unique=False,
                              postgresql_where=sa.text(OPEN_ROWS), sqlite_where=sa.text(OPEN_ROWS))
    op.create_table('delivery_tally',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('sent_second', sa.BigInteger(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('compacted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('delivery_tally', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_tally_issue_id'), ['issue_id'], unique=False)
    op.create_table('subscriber_delivery',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('last_issue_id', sa.Integer(), nullable=False),
    sa.Column('last_sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('compacted_sent', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['last_issue_id'], ['issue.id'], ),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id')
    )


def downgrade() -> None:
    op.drop_table('subscriber_delivery')
    with op.batch_alter_table('delivery_tally', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_tally_issue_id'))
    op.drop_table('delivery_tally')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_open')
        batch_op.drop_index('ix_delivery_issue_state_sent')
        batch_op.create_index('ix_delivery_state', ['state'], unique=False)
        batch_op.create_index('ix_delivery_issue_id', ['issue_id'], unique=False)
