"""inbound evidence, bounce score, inbound keyed by (Message-ID, sha256), feedback attached by staff

Revision ID: 0011
Revises: 0012
Create Date: 2026-11-28 03:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('issue_id', sa.Integer(), nullable=True),
    sa.Column('list_id', sa.Integer(), nullable=True),
    sa.Column('permanent', sa.Boolean(), nullable=False),
    sa.Column('status_code', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('diagnostic', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('auth', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'], ),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], ),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_inbound_id'), ['inbound_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_subscriber_id'), ['subscriber_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_verified'), ['verified'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_at'), ['at'], unique=False)
    op.create_table('bounce_score',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('last_bounce_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id')
    )
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_bounce_evidence_id'), ['evidence_id'], unique=False)
        batch_op.create_foreign_key('fk_bounce_evidence_id', 'evidence', ['evidence_id'], ['id'])
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attached_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_message_message_id'))
        batch_op.create_index(batch_op.f('ix_inbound_message_message_id'), ['message_id'], unique=False)
        batch_op.create_unique_constraint('uq_inbound_message_id_sha256', ['message_id', 'sha256'])


def downgrade() -> None:
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_constraint('uq_inbound_message_id_sha256', type_='unique')
        batch_op.drop_index(batch_op.f('ix_inbound_message_message_id'))
        batch_op.create_index(batch_op.f('ix_inbound_message_message_id'), ['message_id'], unique=True)
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('attached_by')
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.drop_constraint('fk_bounce_evidence_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_bounce_evidence_id'))
        batch_op.drop_column('evidence_id')
    op.drop_table('bounce_score')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_at'))
        batch_op.drop_index(batch_op.f('ix_evidence_verified'))
        batch_op.drop_index(batch_op.f('ix_evidence_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_evidence_inbound_id'))
    op.drop_table('evidence')
