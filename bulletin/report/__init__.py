"""Per-issue figures: `issue_report(session, slug)` and its table, JSON, CSV and HTML forms."""

from bulletin.report.figures import BlockReplies, IssueReport, TimePoint, issue_report

__all__ = ["BlockReplies", "IssueReport", "TimePoint", "export", "issue_report"]  # export: CSV/HTML forms
