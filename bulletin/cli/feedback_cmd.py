"""`bulletin feedback` (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="feedback", no_args_is_help=True)
