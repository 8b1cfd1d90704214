"""list sender identity: organisation and postal address (CAN-SPAM, PECR)

Revision ID: 0014
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailing_list', schema=None) as batch_op:
        batch_op.add_column(sa.Column('organisation', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('postal_address', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('mailing_list', schema=None) as batch_op:
        batch_op.drop_column('postal_address')
        batch_op.drop_column('organisation')
