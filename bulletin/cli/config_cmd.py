"""`bulletin config`: the effective settings."""

from __future__ import annotations

import json

import typer

from bulletin.cli.common import console, read_only_settings

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command()
def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the effective settings (bulletin.toml + BULLETIN_* variables), secrets masked."""
    from bulletin.config import masked

    values = masked(read_only_settings(ctx))
    if as_json:
        typer.echo(json.dumps(values, indent=2, default=str))
        return
    for name, value in values.items():
        console.print(f"[bold]{name}[/] = {value}", highlight=False)
