"""`bulletin report <issue>` and `bulletin doctor`: how an issue did, and whether sending can work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of, read_only_settings
from bulletin.cli.show import show_report

if TYPE_CHECKING:
    from bulletin.doctor import Check

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
    from bulletin.report.export import to_html

    c = ctx_of(ctx)
    with c.ws.session() as session:
        result = issue_report(session, issue)
    if html is not None:
        html.write_text(to_html(result, c.settings.zone), encoding="utf-8")
    show_report(result, c.settings.zone, as_json=as_json, as_csv=as_csv)
    if html is not None and not (as_json or as_csv):
        console.print(f"HTML report written to {html}", highlight=False)


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
