"""Per-issue figures: `issue_report(session, slug)` and its table, JSON, CSV and HTML forms.

The names below load their module on first use (PEP 562), as `delivery` does:
`bulletin status` formats times with `export.shown_time`, and the delivery
stage's `retention` uses `sql.epoch`; importing either loads this package first,
and that must not load the figures (the compiled render, the segments) or the
console's list of recent issues.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulletin.report.figures import BlockReplies, IssueReport, TimePoint, issue_report
    from bulletin.report.recent import all_issue_slugs, recent_issues

__all__ = ["BlockReplies", "IssueReport", "TimePoint", "all_issue_slugs", "chart_png", "export", "issue_report",
           "recent_issues"]  # export: CSV/HTML forms

_LAZY = {"BlockReplies": "figures", "IssueReport": "figures", "TimePoint": "figures", "issue_report": "figures",
         "all_issue_slugs": "recent", "recent_issues": "recent"}


def __getattr__(name: str) -> Any:
    """A front-door name, from its module (imported now if it was not yet)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


def chart_png(report: IssueReport, *, dpi: int = 100) -> bytes:
    """`chart.chart_png`, imported on call so loading the report stage does not load matplotlib."""
    from bulletin.report.chart import chart_png as draw

    return draw(report, dpi=dpi)
