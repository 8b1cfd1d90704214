"""Accounts stage: console accounts and roles, sign-in sessions, the audit log.

Front door: `add_account`, `list_accounts`, `set_role`, `disable_account`,
`set_password`, `Account`, `ROLES`; `sign_in`, `current_account`, `sign_out`,
`SignInRefused`, `SessionPolicy`; `record_audit`, `list_audit`, `AuditView`.
Internal: `passwords` (Argon2id and the password rules).
"""

from bulletin.accounts.accounts import (
    ROLES,
    Account,
    add_account,
    disable_account,
    list_accounts,
    set_password,
    set_role,
)
from bulletin.accounts.audit import AuditView, list_audit, record_audit
from bulletin.accounts.sessions import (
    SessionPolicy,
    SignInRefused,
    current_account,
    forget_old,
    sign_in,
    sign_out,
)

__all__ = [
    "ROLES", "Account", "AuditView", "SessionPolicy", "SignInRefused", "add_account", "current_account",
    "disable_account", "forget_old", "list_accounts", "list_audit", "record_audit", "set_password", "set_role",
    "sign_in", "sign_out",
]
