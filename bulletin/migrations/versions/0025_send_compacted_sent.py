"""send.compacted_sent: how many sent rows of a send compaction folded away

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 10:30:00

The public archive lists an issue whose send to a public list has a sent row.
`bulletin db compact` deletes sent rows into per-issue tallies, which name no
send, so a cancelled send that had sent part of its list left the archive once
compacted. Each send now keeps the count itself. Tallies made before this
migration are attributed where that is certain: an issue with one send.
"""
from alembic import op
import sqlalchemy as sa


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('send', sa.Column('compacted_sent', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE send SET compacted_sent = (SELECT coalesce(sum(t.count), 0) FROM delivery_tally t "
               "WHERE t.issue_id = send.issue_id AND t.state = 'sent') "
               "WHERE (SELECT count(*) FROM send s WHERE s.issue_id = send.issue_id) = 1")


def downgrade() -> None:
    # Not batch mode: SQLite would rebuild `send`, and the ledger's foreign keys refuse its DROP TABLE.
    # Both databases drop a column in place (SQLite since 3.35).
    op.execute("ALTER TABLE send DROP COLUMN compacted_sent")
