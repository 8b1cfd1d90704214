"""What every command needs: the `Workspace` (settings, database, links), opened on first use.

The workspace (and with it the settings, SQLAlchemy and the models) is imported when a
command first asks for it, not when the CLI loads: `--help` and registering the commands
cost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bulletin.cli.consoles import console as console
from bulletin.cli.consoles import err_console as err_console

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from bulletin.config import Settings
    from bulletin.workspace import Workspace



@dataclass
class Context:
    """Per-invocation state carried in `typer.Context.obj`: the workspace, opened on first use."""

    workspace: Path | None = None
    _ws: Workspace | None = field(default=None, repr=False)

    @property
    def ws(self) -> Workspace:
        if self._ws is None:
            from bulletin.workspace import Workspace

            self._ws = Workspace.open(self.workspace)
        return self._ws

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @property
    def engine(self) -> Engine:
        return self.ws.engine


def ctx_of(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    if not isinstance(obj, Context):
        obj = Context()
        ctx.find_root().obj = obj
    return obj


def read_only_settings(ctx: typer.Context) -> Settings:
    """Settings for commands that only look (config show, doctor, lists): they never create .bulletin/."""
    c = ctx_of(ctx)
    if c._ws is None:
        from bulletin.workspace import Workspace

        c._ws = Workspace.open(c.workspace, read_only=True)
    return c._ws.settings
