"""Per-issue figures: `issue_report(session, slug)` and its table, JSON, CSV and HTML forms."""

from bulletin.report.figures import BlockReplies, IssueReport, TimePoint, issue_report
from bulletin.report.recent import all_issue_slugs, recent_issues

__all__ = ["BlockReplies", "IssueReport", "TimePoint", "all_issue_slugs", "chart_png", "export", "issue_report",
           "recent_issues"]  # export: CSV/HTML forms


def chart_png(report: IssueReport, *, dpi: int = 100) -> bytes:
    """`chart.chart_png`, imported on call so loading the report stage does not load matplotlib."""
    from bulletin.report.chart import chart_png as draw

    return draw(report, dpi=dpi)
