"""What every command needs: the workspace's settings and database, loaded on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy.engine import Engine

from bulletin.config import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


@dataclass
class Context:
    """Per-invocation state carried in `typer.Context.obj`; nothing global."""

    workspace: Path | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.workspace)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from bulletin.db import make_engine

            self._engine = make_engine(self.settings.effective_database_url)
        return self._engine


def ctx_of(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    if not isinstance(obj, Context):
        obj = Context()
        ctx.find_root().obj = obj
    return obj


def read_only_settings(ctx: typer.Context) -> Settings:
    """Settings for commands that only look (config show, doctor, lists): they never create .bulletin/."""
    c = ctx_of(ctx)
    if c._settings is None:
        c._settings = load_settings(c.workspace, create_state=False)
    return c._settings
