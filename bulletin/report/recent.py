"""The last few issues with their figures, for the console's dashboard."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bulletin.models import IssueRecord
from bulletin.report.figures import IssueReport, issue_report


def recent_issues(session: Session, *, limit: int = 5) -> list[IssueReport]:
    slugs = session.exec(select(IssueRecord.slug).order_by(col(IssueRecord.created_at).desc()).limit(limit)).all()
    return [issue_report(session, slug) for slug in slugs]


def all_issue_slugs(session: Session) -> list[str]:
    return list(session.exec(select(IssueRecord.slug).order_by(col(IssueRecord.created_at).desc())).all())
