"""fewer indexes on the hot tables: each one is paid on every queued, claimed and sent row

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-28 05:20:00

delivery.message_id is never looked up by value (replies are matched by their
signed tokens, not by a ledger search), and every query on next_attempt_at also
names the send and a state that ix_delivery_open already narrows to; both indexes
cost a B-tree insertion per row queued and per state change (a claim, a send),
the Message-ID one a random insertion. subscription.subscriber_id is the leading
column of uq_subscription, which serves the same lookups.
"""
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_message_id')
        batch_op.drop_index('ix_delivery_next_attempt_at')
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.drop_index('ix_subscription_subscriber_id')


def downgrade() -> None:
    with op.batch_alter_table('subscription', schema=None) as batch_op:
        batch_op.create_index('ix_subscription_subscriber_id', ['subscriber_id'], unique=False)
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_next_attempt_at', ['next_attempt_at'], unique=False)
        batch_op.create_index('ix_delivery_message_id', ['message_id'], unique=False)
