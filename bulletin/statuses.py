"""Every status a row can be in (subscription, delivery, send, inbound mail, feedback), in one place.

Also the few other fixed vocabularies a shell's help text names (the review classes of
inbound mail, the staff roles): here they cost nothing to import.

They are `StrEnum`s: the database stores the plain strings, rows read back
compare equal to the members, and JSON and logs print the value. The groups
(`ALL`, `OPEN`, ...) are plain tuples, not members.
"""

from __future__ import annotations

from enum import StrEnum, nonmember


class SubscriptionState(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    ALL = nonmember(("pending", "confirmed", "unsubscribed", "bounced", "complained"))
    # An import never moves someone out of these: they said no, or their mail said no.
    NEVER_RESUBSCRIBE = nonmember(("unsubscribed", "bounced", "complained"))


class DeliveryState(StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the connection broke after the final dot: maybe delivered; resent only on request
    ALL = nonmember(("queued", "claimed", "sent", "deferred", "failed", "cancelled", "unknown"))
    OPEN = nonmember(("queued", "claimed", "deferred"))


class SendStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    DONE = "done"
    RUNNABLE = nonmember(("queued", "sending"))
    FINISHED = nonmember(("cancelled", "done"))


class InboundStatus(StrEnum):
    STORED = "stored"
    PROCESSED = "processed"
    QUARANTINED = "quarantined"


class FeedbackStatus(StrEnum):
    NEW = "new"
    READ = "read"
    ANSWERED = "answered"
    ARCHIVED = "archived"
    ALL = nonmember(("new", "read", "answered", "archived"))


class ReviewClass(StrEnum):
    """What `bulletin inbound list --class` picks out for staff to look at."""

    UNMATCHED = "unmatched"
    UNVERIFIED = "unverified"
    QUARANTINED = "quarantined"
    ALL = nonmember(("unmatched", "unverified", "quarantined"))


class StaffRole(StrEnum):
    """A console account's role; each can do everything the one before it can."""

    EDITOR = "editor"
    STAFF = "staff"
    ADMIN = "admin"
    ALL = nonmember(("editor", "staff", "admin"))
