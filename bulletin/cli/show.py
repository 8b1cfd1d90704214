"""What `status` and `report` print: shared by the commands, `bulletin demo` and the fast path (`cli.quick`).

Imports neither Typer nor the stages, so that the fast path prints exactly what
the full commands print.
"""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from rich.table import Table

from bulletin.cli.consoles import console

if TYPE_CHECKING:
    from bulletin.delivery.readout import IssueStatus
    from bulletin.report import IssueReport


def show_status(st: IssueStatus, zone: tzinfo | None, *, as_json: bool = False) -> None:
    from bulletin.report.export import shown_time

    if as_json:
        print(json.dumps({"issue": st.issue, "sends": st.sends, "counts": st.counts,
                          "rate_per_minute": st.rate_per_minute, "errors": st.errors}))
        return
    console.print(f"[bold]{st.issue}[/]: " + ", ".join(f"{k} {v}" for k, v in st.counts.items()))
    console.print(f"sent in the last minute: {st.rate_per_minute:.0f}")
    for s in st.sends:
        when = f", scheduled {shown_time(datetime.fromisoformat(str(s['scheduled_at'])), zone)}" \
            if s.get("scheduled_at") else ""
        line = f"  send #{s['send']} list #{s['list_id']}: {s['status']}{when}"
        if s["status"] == "paused" and s.get("pause_reason"):
            line = f"  send #{s['send']} list #{s['list_id']}: paused: {s['pause_reason']}"
        console.print(line, highlight=False, markup=False)
    for e in st.errors:
        console.print(f"  {e['count']} x {e['code']} {e['error']}", highlight=False)


def show_report(result: IssueReport, zone: tzinfo | None, *, as_json: bool = False, as_csv: bool = False) -> None:
    from bulletin.report.export import to_csv

    if as_json:
        print(result.to_json())
    elif as_csv:
        print(to_csv(result), end="")
    else:
        print_report(result, zone)


SECTIONS = {"recipients": "Delivery", "bounced": "Bounces", "complaints": "Responses",
            "hard_bounce_rate": "Rates"}


def print_report(result: IssueReport, zone: tzinfo | None = None) -> None:
    """The terminal table; shared with `bulletin demo`, which ends by showing it. Times in `zone`."""
    from bulletin.report.export import LABELS, display_value, shown_time

    console.print(f"[bold]{result.title}[/] ({result.slug})\nSubject: {result.subject}", highlight=False)
    sent = [p.at for p in result.timeline if p.sent]
    if sent:
        console.print(f"Sent {shown_time(min(sent), zone)} to {shown_time(max(sent), zone)}", highlight=False)
    console.print(f"Figures as of {shown_time(result.generated_at, zone)}", highlight=False)
    figures = Table(show_header=False, box=None, padding=(0, 2))
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for name, value in result.metrics().items():
        if name in SECTIONS:
            figures.add_row(f"[bold underline]{SECTIONS[name]}[/]", "")
        figures.add_row(LABELS.get(name, name), display_value(name, value))
    console.print(figures)
    blocks = Table(title="Replies by block", title_justify="left")
    blocks.add_column("block")
    blocks.add_column("anchor", style="dim")
    blocks.add_column("replies", justify="right")
    for block in result.replies_by_block:
        blocks.add_row(block.heading or "(none)", block.anchor, str(block.replies))
    console.print(blocks)
    if result.by_segment:
        segments = Table("segment", "recipients", "sent", "failed", "bounced", "unsubscribes", "replies",
                         title="By segment", title_justify="left")
        for f in result.by_segment:
            segments.add_row(f.segment, str(f.recipients), str(f.sent), str(f.failed), str(f.bounced),
                             str(f.unsubscribes), str(f.replies))
        console.print(segments)
