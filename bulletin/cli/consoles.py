"""The two rich consoles every command prints to; a module of their own so the fast path
(`cli.quick`) can print exactly as the commands do without loading Typer."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
