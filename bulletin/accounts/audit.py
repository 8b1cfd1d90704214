"""The audit log: every staff action with time, actor, action and target.

Targets name records by id (`subscriber #12`, `feedback #3`, `issue spring-2026`),
never a subscriber's address or name: the log outlives erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.db import Paged, page_bounds
from bulletin.models import AuditEntry


@dataclass(frozen=True)
class AuditView:
    at: datetime
    actor: str
    action: str
    target: str


def record_audit(session: Session, actor: str, action: str, target: str = "") -> None:
    session.add(AuditEntry(actor=actor[:400], action=action[:64], target=target[:400]))
    session.flush()


def list_audit(session: Session, *, page: int = 1, per_page: int = 50,
               actor: str | None = None) -> Paged[AuditView]:
    """One newest-first page of the log (optionally of one actor), the page number clamped to the pages."""
    stmt = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if actor:
        stmt, count = stmt.where(AuditEntry.actor == actor), count.where(AuditEntry.actor == actor)
    total = int(session.exec(count).one())
    per_page = max(min(per_page, 1000), 1)
    page, pages = page_bounds(total, page, per_page)
    rows = session.exec(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())  # type: ignore[attr-defined,union-attr]
                        .offset((page - 1) * per_page).limit(per_page)).all()
    return Paged(total, page, pages, [AuditView(r.at, r.actor, r.action, r.target) for r in rows])
