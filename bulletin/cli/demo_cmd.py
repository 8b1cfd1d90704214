"""`bulletin demo`: the whole job once, on embedded defaults, in a fresh workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bulletin.cli.common import console
from bulletin.cli.show import print_report


def demo(
    directory: Annotated[Path | None, typer.Argument(help="Workspace folder to create (default: a new temporary folder).",
                                                     file_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON at the end.")] = False,
) -> None:
    """Sync lists, import sample subscribers, build and send the sample issue, feed back replies, bounces and a complaint, report."""
    from bulletin.demo import run_demo  # imports every stage: only when the demo runs

    result = run_demo(directory, step=lambda line: console.print(f"[green]✓[/] {line}", highlight=False))
    assert result.report is not None
    if as_json:
        typer.echo(result.report.to_json())
        return
    console.print()
    print_report(result.report, result.settings.zone)
    ws = result.workspace
    console.print(
        "\n[bold]Where to look[/]\n"
        f"  outbox (one file per message): {result.outbox}\n"
        f"  web archive page:              {result.build.index_html}\n"
        f"  email as rendered:             {result.build.email_html}\n"
        f"  replies:                       bulletin -w {ws} feedback list\n"
        f"  the issue's figures:           bulletin -w {ws} report {result.report.slug}\n"
        f"  the web app (signup, archive): bulletin -w {ws} serve",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(demo)
