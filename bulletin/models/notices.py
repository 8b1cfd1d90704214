"""Single mails waiting for the notice sender (confirmations, data-request links, answers to feedback).

The queue is a table so a notice commits with the change that asks for it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from bulletin.models.base import utcnow


class NoticeState:
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class QueuedNotice(SQLModel, table=True):
    """A single mail (confirmation, "already subscribed", data-request link, answer) waiting for the notice sender.

    Committed in the same transaction as the change that asks for it, so a web
    response never waits on mail and a crash never loses one. The text is
    cleared once sent: it holds a signed link.
    """

    __tablename__ = "queued_notice"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=32)  # confirm, already, export, erase, answer
    to_addr: str = Field(max_length=320)
    from_addr: str | None = None
    reply_to: str | None = None
    envelope_from: str | None = Field(default=None, max_length=320)  # None: the bounce address
    subject: str
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # An answer's place in the person's thread (RFC 5322 3.6.4).
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: str | None = Field(default=None, sa_column=Column("thread_references", Text, nullable=True))
    state: str = Field(default=NoticeState.QUEUED, index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = Field(default=None, max_length=255)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
