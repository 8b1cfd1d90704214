"""`bulletin report <issue>` and `bulletin doctor`: how an issue did, and whether sending can work."""

from __future__ import annotations

import json
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of, read_only_settings

if TYPE_CHECKING:
    from bulletin.doctor import Check
    from bulletin.report import IssueReport

STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]fail[/]"}


def report(
    ctx: typer.Context,
    issue: Annotated[str, typer.Argument(help="Slug of the published issue.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the figures as CSV (metric,value).")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a standalone HTML page with a chart to FILE.",
                                              metavar="FILE", dir_okay=False)] = None,
) -> None:
    """Recipients, sent, deferred, failed, bounces, complaints, unsubscribes and replies of one issue."""
    from bulletin.report import issue_report
    from bulletin.report.export import to_csv, to_html

    c = ctx_of(ctx)
    with c.ws.session() as session:
        result = issue_report(session, issue)
    if html is not None:
        html.write_text(to_html(result, c.settings.zone), encoding="utf-8")
    if as_json:
        typer.echo(result.to_json())
    elif as_csv:
        typer.echo(to_csv(result), nl=False)
    else:
        print_report(result, c.settings.zone)
        if html is not None:
            console.print(f"HTML report written to {html}", highlight=False)


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


def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Skip the DNS (SPF, DKIM, DMARC) checks.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each network check.")] = 5.0,
) -> None:
    """Check database, SMTP, the public unsubscribe URL and the sending domain's SPF/DKIM/DMARC."""
    from bulletin.doctor import FAIL, run_checks

    checks = run_checks(read_only_settings(ctx), timeout=timeout, offline=offline)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        print_checks(checks)
    if any(c.status == FAIL for c in checks):
        raise typer.Exit(1)


def print_checks(checks: list[Check]) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("result")
    table.add_column("found")
    table.add_column("fix")
    for check in checks:
        table.add_row(check.name, STYLE[check.status], check.detail, check.fix)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `report` and `doctor` to the root app."""
    app.command("report")(report)
    app.command("doctor")(doctor)
