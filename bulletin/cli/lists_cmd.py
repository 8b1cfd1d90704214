"""`bulletin lists`: the bulletins from lists.toml, with subscriber counts by state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of, read_only_settings
from bulletin.statuses import SubscriptionState

app = typer.Typer(help="The bulletins (lists.toml) and their subscriber counts.", invoke_without_command=True)


@app.callback()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the lists and counts as JSON.")] = False,
) -> None:
    """Show every list with its subscriber counts by state."""
    if ctx.invoked_subcommand is not None:
        return
    from bulletin.audience.lists import overview
    from bulletin.db import database_exists

    c = ctx_of(ctx)
    settings = read_only_settings(ctx)
    rows = []
    if database_exists(settings.effective_database_url):  # looking never creates the database
        with c.ws.session() as session:
            rows = overview(session)
    if as_json:
        console.print_json(json.dumps([{**r.__dict__, "total": r.total} for r in rows]))
        return
    if not rows:
        console.print("no lists yet: edit subscribers/lists.toml and run `bulletin lists sync`")
        return
    table = Table("slug", "name", *SubscriptionState.ALL, "total", "opt-in", "archive")
    for r in rows:
        table.add_row(r.slug, r.name, *(str(r.counts[s]) for s in SubscriptionState.ALL), str(r.total),
                      "double" if r.double_opt_in else "single", "public" if r.archive_public else "private")
    console.print(table)


@app.command()
def sync(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="lists.toml to load (default: subscribers/lists.toml).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes without writing them.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
    allow_single_opt_in: Annotated[bool, typer.Option(
        "--allow-single-opt-in", help="Accept public_signup = true on a list without double opt-in.")] = False,
) -> None:
    """Load lists.toml into the database: adds and updates lists, never deletes one."""
    from bulletin.audience.lists import lists_file, sync_file

    c = ctx_of(ctx)
    path = file or lists_file(c.settings.path(c.settings.subscribers_dir))
    with c.ws.session() as session:
        report = sync_file(session, path, dry_run=dry_run, allow_single_opt_in=allow_single_opt_in)
        if dry_run:
            session.rollback()
    if as_json:
        console.print_json(json.dumps(report.__dict__, default=str))
        return
    verb = "would " if dry_run else ""
    for slug in report.added:
        console.print(f"[green]+[/] {verb}add {slug}")
    for slug, diff in report.changed.items():
        for name, (old, new) in diff.items():
            console.print(f"[yellow]~[/] {verb}change {slug}.{name}: {old!r} -> {new!r}", highlight=False)
    for slug in report.not_in_file:
        console.print(f"[red]![/] {slug} is in the database but not in {path.name}: kept (lists are never deleted)")
    console.print(f"{len(report.added)} added, {len(report.changed)} changed, {len(report.unchanged)} unchanged")
