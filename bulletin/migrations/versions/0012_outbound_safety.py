"""outbound safety: why and where a send was paused

Revision ID: 0012
Revises: 0018
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('send') as batch:
        batch.add_column(sa.Column('pause_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column('pause_stage', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('send') as batch:
        batch.drop_column('pause_stage')
        batch.drop_column('pause_reason')
