"""web consent: public_signup per list, queued notices, data requests, shared rate counts

Revision ID: 0013
Revises: 0017
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailing_list', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_signup', sa.Boolean(), nullable=False, server_default=sa.false()))
    # Existing lists keep the rule lists.toml applies: public only when double opt-in.
    op.execute("UPDATE mailing_list SET public_signup = double_opt_in")

    op.create_table('queued_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('to_addr', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('from_addr', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('reply_to', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('queued_notice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queued_notice_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_queued_notice_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('data_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('data_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_request_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('rate_count',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'bucket')
    )


def downgrade() -> None:
    op.drop_table('rate_count')
    with op.batch_alter_table('data_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_request_subscriber_id'))
    op.drop_table('data_request')
    with op.batch_alter_table('queued_notice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queued_notice_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_queued_notice_state'))
    op.drop_table('queued_notice')
    with op.batch_alter_table('mailing_list', schema=None) as batch_op:
        batch_op.drop_column('public_signup')
