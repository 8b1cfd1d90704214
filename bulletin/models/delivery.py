"""The delivery stage's tables: published issues, sends, the ledger and its running counts.

The SQL that reads and writes them lives in `bulletin.delivery`; the partial-index
predicates are here because the migrations and the queries must spell them alike.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, SmallInteger, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bulletin.models.base import utcnow
from bulletin.statuses import DeliveryState, SendStatus

DERIVED_MESSAGE_ID = ""  # Delivery.message_id when the message's own is derived (see Delivery)
OPEN_ROWS = "state IN ('queued', 'deferred')"  # the rows a claim looks at
WITH_ERROR = "last_error IS NOT NULL"  # the rows `status` lists errors from


class IssueRecord(SQLModel, table=True):
    """A built issue as the database knows it: the compiled render that every send fills."""

    __tablename__ = "issue"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=128)
    title: str
    subject: str
    issue_date: str = ""
    compiled: str = Field(sa_column=Column(Text, nullable=False))  # Compiled.to_json()
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Send(SQLModel, table=True):
    """One request to send an issue to a list: scheduling, pause and cancel live here."""

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    list_id: int = Field(foreign_key="mailing_list.id")
    status: str = Field(default=SendStatus.QUEUED, max_length=16)  # a SendStatus
    scheduled_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pause_reason: str | None = None  # "relay refused MAIL FROM: 530 5.7.0 Authentication required"
    pause_stage: str | None = Field(default=None, max_length=16)  # greeting, ehlo, starttls, auth, mail, ...
    # Sent rows of this send that `bulletin db compact` folded into the issue's tallies (migration 0025):
    # what still says a message of this send went out once its rows are gone (the public archive).
    compacted_sent: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Delivery(SQLModel, table=True):
    """The ledger: one row per (issue, subscriber); committed before and after each SMTP transaction."""

    # Indexes sized for millions of rows (migration 0018): uq_delivery also serves "by issue";
    # ix_delivery_issue_state_sent answers "sent in the last minute" and the first and last sent
    # from its ends (the counts themselves are DeliveryCount and DeliveryMinute); the partial
    # ix_delivery_open holds only rows still to send, so a claim costs the same at 1 % and 99 %.
    # ix_delivery_errors (0019) holds only rows with an error, for the errors list of `status`.
    # Triggers (0019) keep DeliveryCount and DeliveryMinute in step with every change of a row.
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id", name="uq_delivery"),
        Index("ix_delivery_issue_state_sent", "issue_id", "state", "sent_at"),
        Index("ix_delivery_open", "send_id", "id", postgresql_where=text(OPEN_ROWS), sqlite_where=text(OPEN_ROWS)),
        Index("ix_delivery_errors", "issue_id", postgresql_where=text(WITH_ERROR), sqlite_where=text(WITH_ERROR)),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id")
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True)
    send_id: int = Field(foreign_key="send.id", index=True)
    segment: str | None = Field(default=None, max_length=64)  # the segment that chose this recipient, if any
    state: str = Field(default=DeliveryState.QUEUED, max_length=16)
    # '' (DERIVED_MESSAGE_ID): derived when the message is built, from (subscriber, list, issue) and the
    # current key (Links.for_message), so queueing a million rows signs nothing. Rows queued before
    # that kept the one they were given. Never searched by value: replies carry signed tokens.
    message_id: str = Field(default=DERIVED_MESSAGE_ID, max_length=255)
    attempts: int = 0
    next_attempt_at: datetime | None = None  # read only with send_id and a state ix_delivery_open narrows to
    deadline: datetime | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    smtp_code: int | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class DeliveryCount(SQLModel, table=True):
    """Ledger rows per (issue, send, segment, state), kept by triggers on `delivery` (migration 0019),
    so `status` and `report` read a handful of rows instead of counting a million. `segment` is ''
    for rows no segment chose. A count is the sum over `shard`s: each transaction writes its own
    shard, so concurrent workers do not queue on one row. Rows folded into DeliveryTally by
    compaction are not counted here."""

    __tablename__ = "delivery_count"

    issue_id: int = Field(foreign_key="issue.id", primary_key=True)
    send_id: int = Field(foreign_key="send.id", primary_key=True)
    segment: str = Field(default="", max_length=64, primary_key=True)
    state: str = Field(max_length=16, primary_key=True)
    shard: int = Field(default=0, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class DeliveryMinute(SQLModel, table=True):
    """Sent ledger rows per minute of `sent_at` (epoch seconds of the minute's start), kept by the
    same triggers: every bucket of the report's timeline is a whole number of minutes."""

    __tablename__ = "delivery_minute"

    issue_id: int = Field(foreign_key="issue.id", primary_key=True)
    minute: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    shard: int = Field(default=0, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class DeliveryTally(SQLModel, table=True):
    """Compacted ledger rows (`bulletin db compact`): how many rows of an issue were in a state,
    and for sent rows the second they were sent, so report figures and timeline stay exact."""

    __tablename__ = "delivery_tally"

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="issue.id", index=True)
    state: str = Field(max_length=16)
    sent_second: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    count: int
    compacted_at: datetime = Field(default_factory=utcnow)


class SubscriberDelivery(SQLModel, table=True):
    """What compaction keeps about each person: the last issue sent to them and how many were."""

    __tablename__ = "subscriber_delivery"

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True, ondelete="CASCADE")
    last_issue_id: int = Field(foreign_key="issue.id")
    last_sent_at: datetime | None = None
    compacted_sent: int = 0
