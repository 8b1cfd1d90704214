"""`bulletin templates`: which template files a build uses, and copying one to edit."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from bulletin.cli.common import console, read_only_settings

app = typer.Typer(help="The email and web templates: workspace copies first, then the packaged ones.",
                  no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every template with where it comes from (workspace or packaged)."""
    from bulletin.render.overrides import list_templates

    rows = list_templates(read_only_settings(ctx))
    if as_json:
        typer.echo(json.dumps([{"name": r.name, "origin": r.origin, "path": str(r.path)} for r in rows]))
        return
    table = Table("template", "from", "file")
    for r in rows:
        table.add_row(r.name, "[bold]workspace[/]" if r.origin == "workspace" else "packaged", str(r.path))
    console.print(table)


@app.command()
def copy(ctx: typer.Context,
         name: Annotated[str, typer.Argument(help="e.g. email/layout.mjml.j2, article.mjml.j2 or web/base.html.")],
         force: Annotated[bool, typer.Option("--force", help="Overwrite the workspace's copy.")] = False) -> None:
    """Copy a packaged template into the workspace's templates/ to edit; the others stay packaged."""
    from bulletin.render.overrides import copy_template

    target = copy_template(read_only_settings(ctx), name, force=force)
    console.print(f"copied to [bold]{target}[/]: edit it; `bulletin templates list` shows it in use", highlight=False)
