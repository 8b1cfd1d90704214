"""staff console: accounts, sessions, sign-in attempts, audit log; index-backed subscriber search

Revision ID: 0016
Revises: 0011
Create Date: 2026-11-28 03:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'staff_account',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_account_email', 'staff_account', ['email'], unique=True)
    op.create_table(
        'staff_session',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['staff_account.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_session_account_id', 'staff_session', ['account_id'])
    op.create_index('ix_staff_session_expires_at', 'staff_session', ['expires_at'])
    op.create_table(
        'sign_in_attempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_sign_in_attempt_key', 'sign_in_attempt', ['key'])
    op.create_index('ix_sign_in_attempt_at', 'sign_in_attempt', ['at'])
    op.create_table(
        'audit_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('target', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_entry_at', 'audit_entry', ['at'])
    # Console search: prefixes of address, name and organisation (case-folded) as index ranges.
    # PostgreSQL compares in the "C" collation there (byte order: a prefix is a range).
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index('ix_subscriber_email_c', 'subscriber', [sa.text('email COLLATE "C"')])
        op.create_index('ix_subscriber_name_lower', 'subscriber', [sa.text('lower(name) COLLATE "C"')])
        op.create_index('ix_subscriber_organisation_lower', 'subscriber', [sa.text('lower(organisation) COLLATE "C"')])
    else:
        op.create_index('ix_subscriber_name_lower', 'subscriber', [sa.text('lower(name)')])
        op.create_index('ix_subscriber_organisation_lower', 'subscriber', [sa.text('lower(organisation)')])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_subscriber_email_c', table_name='subscriber')
    op.drop_index('ix_subscriber_organisation_lower', table_name='subscriber')
    op.drop_index('ix_subscriber_name_lower', table_name='subscriber')
    op.drop_table('audit_entry')
    op.drop_table('sign_in_attempt')
    op.drop_table('staff_session')
    op.drop_table('staff_account')
