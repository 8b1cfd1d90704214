"""SQLModel tables, shared by every stage.

SQL lives in the stage modules that own each table (audience owns lists and
subscribers, delivery owns the ledger, inbound owns raw mail and feedback);
this module only declares the shape. Times are timezone-aware UTC (SQLModel's
UTCDateTime stores them the same way on SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from bulletin.statuses import (
    DeliveryState,
    FeedbackStatus,
    InboundStatus,
    SendStatus,
    SubscriptionState,
)

DERIVED_MESSAGE_ID = ""  # Delivery.message_id when the message's own is derived (see Delivery)


def utcnow() -> datetime:
    """Aware UTC now: the one clock every table uses."""
    return datetime.now(UTC)


def id_of(row: Any) -> int:
    """The primary key of a stored row (SQLModel types `id` as optional until the row is flushed)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return int(row.id)


OPEN_ROWS = "state IN ('queued', 'deferred')"  # the rows a claim looks at
WITH_ERROR = "last_error IS NOT NULL"  # the rows `status` lists errors from
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


# On PostgreSQL the foreign keys of Subscription, SubscriberEvent and Delivery are declared here but
# dropped by migration 0021 (a check is a query and a row lock per bulk-written row); parents are
# never deleted, and `bulletin doctor` checks the references. SQLite keeps them.


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
    answer_message_id: str | None = None
    attached_by: str | None = Field(default=None, max_length=200)  # staff who attached an unmatched message by hand


class NoticeState:
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class QueuedNotice(SQLModel, table=True):
    """A single mail (confirmation, "already subscribed", data-request link) waiting for the notice sender.

    Committed in the same transaction as the change that asks for it, so a web
    response never waits on mail and a crash never loses one. The text is
    cleared once sent: it holds a signed link.
    """

    __tablename__ = "queued_notice"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int | None = Field(default=None, foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=32)  # confirm, already, export, erase
    to_addr: str = Field(max_length=320)
    from_addr: str | None = None
    reply_to: str | None = None
    subject: str
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    state: str = Field(default=NoticeState.QUEUED, index=True, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    message_id: str | None = Field(default=None, max_length=255)
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class DataRequest(SQLModel, table=True):
    """A mailed, single-use link to export or erase someone's data (asked for from the preference centre)."""

    __tablename__ = "data_request"

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=16)  # export, erase
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None


class RateCount(SQLModel, table=True):
    """Hits per key per fixed time bucket: rate limits every web worker process shares."""

    __tablename__ = "rate_count"

    key: str = Field(primary_key=True, max_length=128)
    bucket: int = Field(primary_key=True)
    hits: int = 0


class StaffAccount(SQLModel, table=True):
    """A person who signs in to the console; `role` is editor, staff or admin."""

    __tablename__ = "staff_account"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True, max_length=320)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """A signed-in console session; `id` is the SHA-256 of the cookie value, never the value itself."""

    __tablename__ = "staff_session"

    id: str = Field(primary_key=True, max_length=64)
    account_id: int = Field(foreign_key="staff_account.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class SignInAttempt(SQLModel, table=True):
    """A failed sign-in, kept per account and per IP for throttling (`key` is 'account:..' or 'ip:..')."""

    __tablename__ = "sign_in_attempt"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, max_length=400)
    at: datetime = Field(default_factory=utcnow, index=True)


class AuditEntry(SQLModel, table=True):
    """One staff action: who did what to which record (subscriber ids only, never their details)."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=400)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=400)
