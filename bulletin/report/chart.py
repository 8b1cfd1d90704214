"""The report's chart: deliveries and replies over time, replies by block, as one PNG.

matplotlib runs on the Agg backend through its object API (no pyplot state),
so the chart renders headless, offline and safely from a web worker thread.
"""

from __future__ import annotations

import io
from datetime import timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from bulletin.report.figures import IssueReport

SENT_COLOUR = "#1f5f8b"
REPLY_COLOUR = "#d9822b"


def chart_png(report: IssueReport, *, dpi: int = 100) -> bytes:
    """A two-panel PNG: sent and replies per bucket (two y axes), then replies per block."""
    fig = Figure(figsize=(8, 6.5), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    over_time, by_block = fig.subplots(2, 1, height_ratios=(3, 2))
    _plot_timeline(over_time, report)
    _plot_blocks(by_block, report)
    fig.suptitle(f"{report.title} ({report.slug})", fontsize=11)
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _plot_timeline(ax, report: IssueReport) -> None:  # type: ignore[no-untyped-def]
    ax.set_title(f"Deliveries and replies per {report.bucket}", fontsize=10, loc="left")
    if not report.timeline:
        ax.text(0.5, 0.5, "nothing sent yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    times = [p.at for p in report.timeline]
    width = report.bucket_seconds / 86400 * 0.8  # matplotlib dates are in days
    ax.bar(times, [p.sent for p in report.timeline], width=width, color=SENT_COLOUR, label="sent",
           align="edge")
    ax.set_ylabel("messages sent", color=SENT_COLOUR)
    replies = ax.twinx()
    middles = [t + timedelta(days=width / 0.8 / 2) for t in times]
    replies.plot(middles, [p.replies for p in report.timeline], color=REPLY_COLOUR, marker="o",
                 label="replies")
    replies.set_ylabel("replies", color=REPLY_COLOUR)
    replies.set_ylim(bottom=0)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _plot_blocks(ax, report: IssueReport) -> None:  # type: ignore[no-untyped-def]
    ax.set_title("Replies by block", fontsize=10, loc="left")
    blocks = list(report.replies_by_block)
    if not blocks:
        ax.text(0.5, 0.5, "no blocks", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    labels = [_short(b.heading or b.anchor or "(none)") for b in blocks]
    ax.barh(range(len(blocks)), [b.replies for b in blocks], color=REPLY_COLOUR)
    ax.set_yticks(range(len(blocks)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("replies")
    ax.xaxis.get_major_locator().set_params(integer=True)


def _short(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
