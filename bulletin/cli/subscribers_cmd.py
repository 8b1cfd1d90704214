"""`bulletin subscribers` (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="subscribers", no_args_is_help=True)
