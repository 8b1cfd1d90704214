"""`bulletin inbound` (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="inbound", no_args_is_help=True)
