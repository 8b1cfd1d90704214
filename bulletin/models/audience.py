"""The audience stage's tables: lists, subscribers, their subscriptions, suppressions and consent log.

One module per stage keeps each under the size a reader takes in at once; the
SQL that reads and writes these tables lives in `bulletin.audience`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bulletin.models.base import utcnow
from bulletin.statuses import SubscriptionState

WITH_ISSUE = "issue_id IS NOT NULL"  # consent-log events an issue caused


class MailingList(SQLModel, table=True):
    """A bulletin people subscribe to, with its sender identity (from lists.toml)."""

    __tablename__ = "mailing_list"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str
    description: str = ""
    from_name: str
    from_address: str
    reply_to: str | None = None
    organisation: str = ""  # empty: bulletin.toml's `organisation`
    postal_address: str = ""  # empty: bulletin.toml's `postal_address`
    double_opt_in: bool = True
    archive_public: bool = True
    public_signup: bool = True  # offered on /signup; lists.toml defaults it to double_opt_in
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Subscriber(SQLModel, table=True):
    """One person, across all lists. `email` is None once erased; the hash stays."""

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, index=True, unique=True, max_length=320)
    email_hash: str = Field(index=True, unique=True, max_length=64)
    name: str = ""
    organisation: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    suppressed: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    erased_at: datetime | None = None


class Suppression(SQLModel, table=True):
    """Blocklist by address hash: survives erasure, so no import can bring someone back."""

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(index=True, unique=True, max_length=64)
    reason: str
    created_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("subscriber_id", "list_id", name="uq_subscription"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE")  # uq_subscription leads with it
    list_id: int = Field(foreign_key="mailing_list.id", index=True)
    state: str = Field(default=SubscriptionState.PENDING, index=True, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    confirmed_at: datetime | None = None
    confirmation_sent_at: datetime | None = None


class SubscriberEvent(SQLModel, table=True):
    """The consent log: every change of a subscriber, with when, why and who."""

    __tablename__ = "subscriber_event"
    # The report counts an issue's unsubscribes and complaints; only events an issue caused carry
    # one, a sliver of the log (every import writes an event per person), so the index is partial.
    __table_args__ = (
        Index("ix_subscriber_event_issue", "issue_id", "kind", postgresql_where=text(WITH_ISSUE),
              sqlite_where=text(WITH_ISSUE)),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    list_id: int | None = Field(default=None, foreign_key="mailing_list.id")
    at: datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=32)
    old_state: str | None = None
    new_state: str | None = None
    source: str = Field(max_length=16)  # cli, import, web, inbound, delivery
    actor: str = ""
    ip: str | None = None
    user_agent: str | None = None
    issue_id: int | None = Field(default=None, foreign_key="issue.id")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DataRequest(SQLModel, table=True):
    """A mailed, single-use link to export or erase someone's data (asked for from the preference centre)."""

    __tablename__ = "data_request"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)  # export, erase
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None
