"""Console sign-in: server-side sessions with expiry and idle timeout, throttled in the database.

The cookie holds a random value; the database holds only its SHA-256, so a
copy of the database does not sign anyone in. Every failure (unknown address,
wrong password, disabled account, too many attempts) raises the same
`SignInRefused`, so the form cannot be used to learn who has an account.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import func
from sqlmodel import Session, delete, select

from bulletin.accounts.accounts import Account, find_account, view
from bulletin.accounts.audit import record_audit
from bulletin.accounts.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from bulletin.errors import BulletinError
from bulletin.models import SignInAttempt, StaffAccount, StaffSession, id_of, utcnow


class SignInRefused(BulletinError):
    """Any failed sign-in; one message whatever the reason."""

    exit_code = 5

    def __init__(self) -> None:
        super().__init__("the address or password is wrong, or too many attempts were made; try again later")


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives and how many failures are allowed, per account and per IP."""

    lifetime: timedelta = timedelta(hours=12)
    idle: timedelta = timedelta(minutes=30)
    touch_every: timedelta = timedelta(seconds=60)  # write last_seen_at at most this often
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_ip: int = 20


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _failures(session: Session, key: str, policy: SessionPolicy) -> int:
    since = utcnow() - policy.window
    return int(session.exec(select(func.count()).select_from(SignInAttempt)
                            .where(SignInAttempt.key == key, SignInAttempt.at >= since)).one())


def sign_in(session: Session, email: str, password: str, *, ip: str,
            policy: SessionPolicy = SessionPolicy(), previous: str | None = None) -> tuple[str, Account]:
    """(new cookie value, account), or SignInRefused. A session id brought along is dropped (fixation)."""
    if previous:
        sign_out(session, previous)
    account_key, ip_key = f"account:{email.strip().lower()[:320]}", f"ip:{ip[:64]}"
    if (_failures(session, account_key, policy) >= policy.per_account
            or _failures(session, ip_key, policy) >= policy.per_ip):
        # Past the limit the password is not checked at all: otherwise every request of a client
        # hammering the form would still cost us an Argon2id hash (64 MiB, tens of milliseconds).
        _refuse(session, account_key, ip_key)
    row = find_account(session, email)
    ok = verify_password(row.password_hash if row else dummy_hash(), password)
    if row is None or row.disabled or not ok:
        _refuse(session, account_key, ip_key)
    if needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
        session.add(row)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(StaffSession(id=_digest(token), account_id=id_of(row), created_at=now, last_seen_at=now,
                             expires_at=now + policy.lifetime))
    session.exec(delete(SignInAttempt).where(SignInAttempt.key == account_key))  # type: ignore[call-overload]
    record_audit(session, f"staff:{row.email}", "sign-in", "")
    session.flush()
    return token, view(row)


def _refuse(session: Session, account_key: str, ip_key: str) -> NoReturn:
    """Count the failure against the account and the address, and refuse (the same words every time)."""
    session.add(SignInAttempt(key=account_key))
    session.add(SignInAttempt(key=ip_key))
    session.commit()  # the failure must outlive the refusal that rolls the caller's unit back
    raise SignInRefused()


def current_account(session: Session, token: str | None,
                    policy: SessionPolicy = SessionPolicy()) -> Account | None:
    """The account of a live session, or None (expired, idle too long, unknown, disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.get(StaffSession, _digest(token))
    if row is None:
        return None
    now = utcnow()
    if now >= row.expires_at or now - row.last_seen_at >= policy.idle:
        session.delete(row)
        return None
    account = session.get(StaffAccount, row.account_id)
    if account is None or account.disabled:
        session.delete(row)
        return None
    if now - row.last_seen_at >= policy.touch_every:
        row.last_seen_at = now
        session.add(row)
    return view(account)


def sign_out(session: Session, token: str | None) -> None:
    if token and len(token) <= 200:
        row = session.get(StaffSession, _digest(token))
        if row is not None:
            account = session.get(StaffAccount, row.account_id)
            session.delete(row)
            if account is not None:
                record_audit(session, f"staff:{account.email}", "sign-out", "")
        session.flush()


def forget_old(session: Session, policy: SessionPolicy = SessionPolicy()) -> None:
    """Drop expired sessions and attempts older than the window (called at each sign-in page)."""
    now = utcnow()
    session.exec(delete(StaffSession).where(StaffSession.expires_at < now))  # type: ignore[call-overload,arg-type]
    session.exec(delete(SignInAttempt).where(SignInAttempt.at < now - policy.window))  # type: ignore[call-overload,arg-type]
