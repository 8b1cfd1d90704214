"""`bulletin db`: schema migrations."""

from __future__ import annotations

import typer

from bulletin.cli.common import console, ctx_of

app = typer.Typer(help="Database schema: upgrade and status.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration to the configured database."""
    from bulletin.db import current_revision, make_engine, upgrade_schema

    c = ctx_of(ctx)
    engine = make_engine(c.settings.effective_database_url, upgrade=False)
    upgrade_schema(engine)
    console.print(f"database at revision {current_revision(engine)}")


@app.command()
def compact(
    ctx: typer.Context,
    older_than: str = typer.Option("90d", "--older-than", help="Compact issues whose last message went out "
                                   "longer ago than this (e.g. 90d, 12w, 36h)."),
) -> None:
    """Fold sent ledger rows of old issues into per-issue tallies; reports stay identical."""
    from bulletin.db import session_scope
    from bulletin.delivery.retention import compact as compact_ledger
    from bulletin.delivery.retention import parse_age, segmented_issues

    c = ctx_of(ctx)
    age = parse_age(older_than)
    done = compact_ledger(c.engine, age)
    for item in done:
        console.print(f"{item.slug}: {item.rows} sent rows compacted")
    console.print(f"{len(done)} issue(s) compacted, {sum(i.rows for i in done)} rows")
    with session_scope(c.engine) as session:
        kept = segmented_issues(session)
    if kept:
        console.print(f"{kept} issue(s) sent to segments keep their rows: the report splits them by segment")


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the database's migration level against the newest one."""
    from bulletin.db import current_revision, head_revision, make_engine

    c = ctx_of(ctx)
    engine = make_engine(c.settings.effective_database_url, upgrade=False)
    current, head = current_revision(engine), head_revision()
    state = "up to date" if current == head else "needs `bulletin db upgrade`"
    console.print(f"current: {current or 'none'}  head: {head}  ({state})")
    if current != head:
        raise typer.Exit(1)
