"""Commands of the issue group: new, build, preview, check."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of
from bulletin.errors import CheckFailed

IssueArg = Annotated[str, typer.Argument(help="Issue slug under content/, or a path to an issue folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def new(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Folder name of the new issue, e.g. 2026-spring.")],
    title: Annotated[str | None, typer.Option(help="Issue title (default: from the slug).")] = None,
    list_: Annotated[list[str] | None, typer.Option("--list", help="List slug to send to; repeatable.")] = None,
) -> None:
    """Scaffold an issue folder with one example block of each type."""
    from bulletin.compose.scaffold import new_issue

    s = ctx_of(ctx).settings
    folder = new_issue(s.path(s.content_dir), slug, title=title, lists=list_,
                       subscribers_file=s.path(s.subscribers_dir) / "lists.toml")
    console.print(f"created [bold]{folder}[/]: edit issue.toml and the NN-*.md blocks, then `bulletin build {slug}`")


def build(ctx: typer.Context, issue: IssueArg, as_json: JsonOpt = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False) -> None:
    """Render an issue to build/<slug>/: email.html, email.txt and index.html."""
    from bulletin.render.build import build_issue

    r = build_issue(ctx_of(ctx).settings, issue)
    if as_json:
        typer.echo(json.dumps({"slug": r.compiled.slug, "folder": str(r.folder), "blocks": len(r.compiled.blocks),
                               "html_bytes": r.html_bytes, "text_bytes": r.text_bytes,
                               "files": [str(r.email_html), str(r.email_text), str(r.index_html)]}))
        return
    if quiet:
        return
    table = Table(title=f"{r.compiled.subject}", show_header=True)
    table.add_column("#", justify="right")
    table.add_column("block")
    table.add_column("type")
    table.add_column("heading")
    for n, b in enumerate(r.compiled.blocks, 1):
        table.add_row(str(n), b.anchor, b.type, b.heading)
    console.print(table)
    console.print(f"wrote {r.email_html} ({r.html_bytes / 1024:.1f} KB), {r.email_text} "
                  f"({r.text_bytes / 1024:.1f} KB), {r.index_html}")


def preview(ctx: typer.Context, issue: IssueArg,
            port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 8025,
            as_address: Annotated[str | None, typer.Option("--as", metavar="ADDRESS",
                                                           help="Show what this subscriber gets (their blocks only).")] = None) -> None:
    """Build an issue and serve it on 127.0.0.1, desktop and mobile widths side by side."""
    from bulletin.render.preview import PREVIEW_FILE, prepare_preview

    c = ctx_of(ctx)
    result, server = prepare_preview(c.settings, issue, port, as_address=as_address,
                                     engine=c.engine if as_address else None)
    if as_address:
        console.print(f"email.html and email.txt show what {as_address} gets", highlight=False)
    host, bound = server.server_address[:2]
    console.print(f"previewing [bold]{result.compiled.slug}[/] at http://{host}:{bound}/{PREVIEW_FILE} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def check(ctx: typer.Context, issue: IssueArg, as_json: JsonOpt = False) -> None:
    """Run the pre-send checks: anchors, alt text, size, unsubscribe link, plain text, links."""
    from bulletin.render.checks import check_issue

    c = ctx_of(ctx)
    report = check_issue(c.settings, issue, engine_for_targeting=lambda: c.engine)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        for w in report.warnings:
            console.print(f"[yellow]warning:[/] {w}", highlight=False)
        for e in report.errors:
            console.print(f"[red]error:[/] {e}", highlight=False)
        if report.ok:
            console.print(f"[green]ok[/]: {report.html_bytes / 1024:.1f} KB HTML, {len(report.warnings)} warning(s)")
    if not report.ok:
        raise CheckFailed(f"{len(report.errors)} error(s) in pre-send checks", where=issue)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("new")(new)
    app.command("build")(build)
    app.command("preview")(preview)
    app.command("check")(check)
