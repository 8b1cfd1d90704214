"""`bulletin lists` (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="lists", no_args_is_help=True)
