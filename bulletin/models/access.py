"""Who may use the web side, and how often: staff accounts, sessions, sign-in attempts, the audit
log, and the rate-limit counters every web worker shares.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from bulletin.models.base import utcnow


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
