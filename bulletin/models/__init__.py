"""SQLModel tables, shared by every stage, one module per stage that owns them.

SQL lives in the stage modules that own each table (audience owns lists and
subscribers, delivery owns the ledger, inbound owns raw mail and feedback);
these modules only declare the shape. Times are timezone-aware UTC (SQLModel's
UTCDateTime stores them the same way on SQLite and PostgreSQL).

Importing the package declares every table (Alembic's env.py and the tests read
SQLModel.metadata whole), and every name stays importable from `bulletin.models`.
"""

from __future__ import annotations

from bulletin.models.access import AuditEntry, RateCount, SignInAttempt, StaffAccount, StaffSession
from bulletin.models.audience import (
    WITH_ISSUE,
    DataRequest,
    MailingList,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
)
from bulletin.models.base import id_of, utcnow
from bulletin.models.delivery import (
    DERIVED_MESSAGE_ID,
    OPEN_ROWS,
    WITH_ERROR,
    Delivery,
    DeliveryCount,
    DeliveryMinute,
    DeliveryTally,
    IssueRecord,
    Send,
    SubscriberDelivery,
)
from bulletin.models.inbound import Bounce, BounceScore, Evidence, Feedback, InboundMessage
from bulletin.models.notices import NoticeState, QueuedNotice

__all__ = [
    "AuditEntry",
    "Bounce",
    "BounceScore",
    "DERIVED_MESSAGE_ID",
    "DataRequest",
    "Delivery",
    "DeliveryCount",
    "DeliveryMinute",
    "DeliveryTally",
    "Evidence",
    "Feedback",
    "InboundMessage",
    "IssueRecord",
    "MailingList",
    "NoticeState",
    "OPEN_ROWS",
    "QueuedNotice",
    "RateCount",
    "Send",
    "SignInAttempt",
    "StaffAccount",
    "StaffSession",
    "Subscriber",
    "SubscriberDelivery",
    "SubscriberEvent",
    "Subscription",
    "Suppression",
    "WITH_ERROR",
    "WITH_ISSUE",
    "id_of",
    "utcnow",
]
