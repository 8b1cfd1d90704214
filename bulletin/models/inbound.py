"""The inbound stage's tables: raw mail as received, bounces with their evidence, and feedback.

The SQL that reads and writes them lives in `bulletin.inbound`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bulletin.models.base import utcnow
from bulletin.statuses import FeedbackStatus, InboundStatus


class InboundMessage(SQLModel, table=True):
    """Raw inbound mail, stored before anything else; the rest is recomputable from it."""

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    # Keyed by (Message-ID, sha256 of the bytes): a reused Message-ID with other bytes is a new message.
    __table_args__ = (UniqueConstraint("message_id", "sha256", name="uq_inbound_message_id_sha256"),)

    message_id: str = Field(index=True, max_length=998)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    source: str = Field(max_length=16)  # stdin, maildir, mbox, imap, lmtp, demo
    envelope_from: str | None = None
    envelope_to: str | None = None
    received_at: datetime = Field(default_factory=utcnow, index=True)
    status: str = Field(default=InboundStatus.STORED, max_length=16)  # an InboundStatus
    classification: str | None = Field(default=None, max_length=16)  # reply, auto_reply, bounce, complaint, unmatched
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id")
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    error: str | None = None
    processed_at: datetime | None = None


class Bounce(SQLModel, table=True):
    """A hard or soft bounce of one recipient; soft ones score inside a window and expire."""

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    delivery_id: int | None = Field(default=None, foreign_key="delivery.id")
    evidence_id: int | None = Field(default=None, foreign_key="evidence.id", index=True)
    permanent: bool
    status_code: str = ""
    diagnostic: str = ""
    at: datetime = Field(default_factory=utcnow, index=True)


class Evidence(SQLModel, table=True):
    """One bounce, complaint or unsubscribe signal, with its source and how (or whether) it was authenticated.

    Only `verified` evidence changes a subscription; the rest is kept for staff to see.
    """

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id", index=True)
    kind: str = Field(max_length=16)  # bounce, complaint, unsubscribe
    address: str = Field(default="", max_length=320)
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True, ondelete="SET NULL")
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    list_id: int | None = Field(default=None, foreign_key="mailing_list.id")
    permanent: bool = False
    status_code: str = Field(default="", max_length=32)
    diagnostic: str = ""
    verified: bool = Field(default=False, index=True)
    auth: str = Field(default="", max_length=64)  # verp-token, report-message-id, ses-sns, unsubscribe-token, or why not
    source: str = Field(default="inbound", max_length=16)  # inbound, smtp
    at: datetime = Field(default_factory=utcnow, index=True)


class BounceScore(SQLModel, table=True):
    """A subscriber's bounce score (Mailman 3 style): one point per day at most, reset when stale."""

    __tablename__ = "bounce_score"

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True, ondelete="CASCADE")
    score: int = 0
    last_bounce_at: datetime | None = None


class Feedback(SQLModel, table=True):
    """A subscriber's reply, cleaned and matched to the issue and block it answers."""

    id: int | None = Field(default=None, primary_key=True)
    inbound_id: int = Field(foreign_key="inbound_message.id", unique=True)
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True)
    issue_id: int | None = Field(default=None, foreign_key="issue.id", index=True)
    block_anchor: str | None = Field(default=None, max_length=128)
    from_address: str = ""
    subject: str = ""
    visible_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    full_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=FeedbackStatus.NEW, index=True, max_length=16)  # a FeedbackStatus
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, index=True)
    answered_at: datetime | None = None
    answer_message_id: str | None = None  # answers sent before migration 0024; later ones: their notice's
    answer_notice_id: int | None = Field(default=None, foreign_key="queued_notice.id", ondelete="SET NULL")
    attached_by: str | None = Field(default=None, max_length=200)  # staff who attached an unmatched message by hand
