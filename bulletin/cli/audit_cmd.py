"""`bulletin audit`: the staff audit log (time, actor, action, target), newest first."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, ctx_of


def register(app: typer.Typer) -> None:
    @app.command()
    def audit(
        ctx: typer.Context,
        actor: Annotated[str | None, typer.Option("--actor", help="Only this actor, e.g. staff:ann@example.org.")] = None,
        limit: Annotated[int, typer.Option("--limit", "-n", help="How many entries, newest first.")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
    ) -> None:
        """Every staff action: time, actor, action and target (subscribers by id only)."""
        from bulletin.accounts import list_audit

        with ctx_of(ctx).ws.session() as session:
            rows = list_audit(session, per_page=limit, actor=actor).rows
        if as_json:
            console.print_json(json.dumps([{"at": r.at.isoformat(), "actor": r.actor, "action": r.action,
                                            "target": r.target} for r in rows]))
            return
        table = Table("time", "actor", "action", "target")
        for r in rows:
            table.add_row(r.at.strftime("%Y-%m-%d %H:%M:%S"), r.actor, r.action, r.target)
        console.print(table)
