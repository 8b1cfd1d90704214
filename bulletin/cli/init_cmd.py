"""`bulletin init [DIR]`: start a workspace of your own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bulletin.cli.common import console


def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new workspace (created if missing).",
                                              file_okay=False)] = Path("."),
) -> None:
    """Create bulletin.toml, subscribers/lists.toml with one list, a first issue and a .gitignore."""
    from bulletin.defaults.starter import init_workspace

    ws = init_workspace(directory)
    go = "" if ws.folder == Path.cwd().resolve() else f"cd {directory} && "
    console.print(
        f"created a workspace in [bold]{ws.folder}[/]\n"
        f"  settings:    {ws.config}\n"
        f"  lists:       {ws.lists}\n"
        f"  first issue: {ws.first_issue}\n"
        f"next: {go}bulletin lists sync && bulletin build {ws.first_issue.name}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
