"""The report as CSV and as one self-contained HTML page with the chart embedded.

The HTML page carries its chart as a base64 PNG and its style inline, so it can
be mailed to a committee or dropped on a file share and still open offline.
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, tzinfo
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: `bulletin status` imports this module for `shown_time`, not the figures
    from bulletin.report.figures import IssueReport

LABELS = {
    "recipients": "Recipients", "attempted": "Recipients attempted", "sent": "Sent",
    "deferred": "Deferred (retrying)", "failed": "Failed", "unknown": "Unknown (line lost after sending)", "pending": "Not sent yet", "cancelled": "Cancelled",
    "bounced": "Bounced", "hard_bounces": "Hard bounces", "soft_bounces": "Soft bounces",
    "complaints": "Complaints", "unsubscribes": "Unsubscribes", "replies": "Replies",
    "auto_replies": "Auto-replies", "hard_bounce_rate": "Hard bounce rate",
    "complaint_rate": "Complaint rate", "unsubscribe_rate": "Unsubscribe rate",
    "reply_rate": "Reply rate",
}


def display_value(name: str, value: int | float) -> str:
    """Rates as percentages with two decimals (Gmail's complaint line is 0.30 %), counts as-is."""
    return f"{value * 100:.2f} %" if name.endswith("_rate") else str(value)


def to_csv(report: IssueReport) -> str:
    """`metric,value` rows: the figures, then one `replies_block:<anchor>` row per block."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "value"])
    writer.writerow(["issue", report.slug])
    for name, value in report.metrics().items():
        writer.writerow([name, value])
    for block in report.replies_by_block:
        writer.writerow([f"replies_block:{block.anchor}", block.replies])
    return out.getvalue()


def shown_time(value: datetime, zone: tzinfo | None = None) -> str:
    """A stored time (UTC, or naive UTC from SQLite) as people read it: in the workspace's zone."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M %Z")


def to_html(report: IssueReport, zone: tzinfo | None = None) -> str:
    """A standalone page: figures, replies by block, and the chart as an embedded PNG."""
    # matplotlib costs ~0.5 s to import: only when drawing.
    from bulletin.report.chart import chart_png

    png = base64.b64encode(chart_png(report)).decode("ascii")
    rows = "\n".join(
        f"<tr><th>{escape(LABELS.get(name, name))}</th><td>{display_value(name, value)}</td></tr>"
        for name, value in report.metrics().items()
    )
    blocks = "\n".join(
        f"<tr><th>{escape(b.heading or '(none)')}</th><td><code>{escape(b.anchor)}</code></td>"
        f"<td>{b.replies}</td></tr>"
        for b in report.replies_by_block
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Report: {escape(report.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ text-align: left; padding: .25rem .75rem; border-bottom: 1px solid #ddd; }}
td {{ font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{escape(report.title)}</h1>
<p>Issue <code>{escape(report.slug)}</code>, subject “{escape(report.subject)}”.
Generated {escape(shown_time(report.generated_at, zone))}.</p>
<h2>Figures</h2>
<table id="figures">
{rows}
</table>
<h2>Replies by block</h2>
<table id="blocks">
<tr><th>Block</th><th>Anchor</th><th>Replies</th></tr>
{blocks}
</table>
<h2>Chart</h2>
<img id="chart" alt="Deliveries and replies over time; replies by block" src="data:image/png;base64,{png}">
</body></html>
"""
