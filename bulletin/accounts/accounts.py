"""Console accounts: add, list, change role, disable, set a password. Each change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, delete, select

from bulletin.accounts.audit import record_audit
from bulletin.accounts.passwords import hash_password
from bulletin.errors import AddressError, NotFound, StateError
from bulletin.models import StaffAccount, StaffSession, id_of, utcnow
from bulletin.statuses import StaffRole

ROLES = StaffRole.ALL  # ("editor", "staff", "admin"): each role can do everything the one before it can


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


@dataclass(frozen=True)
class Account:
    """An account as shells see it (no hash)."""

    id: int
    email: str
    role: str
    disabled: bool
    created_at: datetime

    @property
    def actor(self) -> str:
        return f"staff:{self.email}"

    def can(self, role: str) -> bool:
        """True when this account's role includes `role`'s rights."""
        return not self.disabled and role_rank(self.role) >= role_rank(role)


def view(row: StaffAccount) -> Account:
    return Account(id=id_of(row), email=row.email, role=row.role, disabled=row.disabled,
                   created_at=row.created_at)


def _clean_email(email: str) -> str:
    value = email.strip().lower()
    if not value or "@" not in value or any(c.isspace() or ord(c) < 32 for c in value) or len(value) > 320:
        raise AddressError("not a usable sign-in address", where=f"address {email!r}")
    return value


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise StateError(f"unknown role (expected one of {', '.join(ROLES)})", where=f"role {role!r}")
    return role


def _get(session: Session, email: str) -> StaffAccount:
    row = session.exec(select(StaffAccount).where(StaffAccount.email == _clean_email(email))).first()
    if row is None:
        raise NotFound("no such staff account", where=f"address {email!r}")
    return row


def find_account(session: Session, email: str) -> StaffAccount | None:
    try:
        return session.exec(select(StaffAccount).where(StaffAccount.email == _clean_email(email))).first()
    except AddressError:
        return None


def add_account(session: Session, email: str, role: str, password: str, *, actor: str) -> Account:
    address = _clean_email(email)
    _check_role(role)
    if find_account(session, address) is not None:
        raise StateError("a staff account with this address exists", where=f"address {address!r}")
    row = StaffAccount(email=address, role=role, password_hash=hash_password(password))
    session.add(row)
    session.flush()
    record_audit(session, actor, "staff.add", f"staff:{address} role={role}")
    return view(row)


def list_accounts(session: Session) -> list[Account]:
    return [view(r) for r in session.exec(select(StaffAccount).order_by(StaffAccount.email)).all()]


def _keep_an_admin(session: Session, row: StaffAccount) -> None:
    """Refuse to demote or disable the last enabled admin: nobody could then manage accounts from the
    console (the CLI's `staff add --role admin` would be the only way back).

    The enabled admins are read FOR UPDATE (PostgreSQL), so two admins demoting each other at
    once cannot both pass: the second waits, then sees the first one's change.
    """
    if row.role != "admin" or row.disabled:
        return
    admins = session.exec(select(StaffAccount.id).where(StaffAccount.role == "admin",
                                                        StaffAccount.disabled.is_(False))  # type: ignore[attr-defined]
                          .with_for_update()).all()
    if set(admins) <= {row.id}:
        raise StateError("is the last enabled admin; make another account admin first",
                         where=f"staff:{row.email}")


def set_role(session: Session, email: str, role: str, *, actor: str) -> Account:
    row = _get(session, email)
    if _check_role(role) != "admin":
        _keep_an_admin(session, row)
    row.role, row.updated_at = role, utcnow()
    session.add(row)
    record_audit(session, actor, "staff.role", f"staff:{row.email} role={role}")
    return view(row)


def disable_account(session: Session, email: str, *, actor: str) -> Account:
    """Disable and end every open session of the account at once."""
    row = _get(session, email)
    _keep_an_admin(session, row)
    row.disabled, row.updated_at = True, utcnow()
    session.add(row)
    session.exec(delete(StaffSession).where(StaffSession.account_id == id_of(row)))  # type: ignore[call-overload]
    record_audit(session, actor, "staff.disable", f"staff:{row.email}")
    return view(row)


def set_password(session: Session, email: str, password: str, *, actor: str) -> Account:
    """A new password ends the account's other sessions: whoever knew the old one is out."""
    row = _get(session, email)
    row.password_hash, row.updated_at = hash_password(password), utcnow()
    session.add(row)
    session.exec(delete(StaffSession).where(StaffSession.account_id == id_of(row)))  # type: ignore[call-overload]
    record_audit(session, actor, "staff.password", f"staff:{row.email}")
    return view(row)
