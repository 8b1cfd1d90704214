"""answers to feedback go through the notice queue: threading headers and envelope sender on queued_notice, the answer's notice on feedback

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 10:00:00

An answer used to be sent before the transaction that marked the feedback
answered committed: a failed commit, or two people answering at once, sent two
answers. It is now a queued notice committed with the "answered" mark and sent
after it by the notice sender, so the queue row carries what an answer needs
(In-Reply-To, References, the envelope sender `--from` chose) and the feedback
names its notice, whose state tells staff whether the answer has left.
"""
import warnings

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with warnings.catch_warnings():
        # SQLite rebuilds `feedback` to add the foreign key, and Alembic reflects the tables it refers to
        # on the way; it cannot reflect `subscriber`'s expression indexes (0023), which it leaves alone
        # anyway, and would say so on every new database's stderr.
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        _upgrade()


def _upgrade() -> None:
    with op.batch_alter_table('queued_notice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_reply_to', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True))
        batch_op.add_column(sa.Column('thread_references', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('envelope_from', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer_notice_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_feedback_answer_notice_id_queued_notice', 'queued_notice',
                                    ['answer_notice_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_constraint('fk_feedback_answer_notice_id_queued_notice', type_='foreignkey')
        batch_op.drop_column('answer_notice_id')
    with op.batch_alter_table('queued_notice', schema=None) as batch_op:
        batch_op.drop_column('envelope_from')
        batch_op.drop_column('thread_references')
        batch_op.drop_column('in_reply_to')
