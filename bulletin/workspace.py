"""One workspace (settings, database engine, links, template folders), built once per shell.

The CLI, the web app and the coming console each used to assemble these
themselves; now they open a `Workspace` and pass it down. The engine and the
links are made on first use, so commands that never touch the database (init,
config, render) do not need one. Likewise the template machinery (Jinja2, the render
stage) and the links are imported on first use: `bulletin status` needs neither.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bulletin.config import Settings, load_settings
from bulletin.db import make_engine, session_scope, use_address_key

if TYPE_CHECKING:
    from jinja2 import BaseLoader

    from bulletin.audience.links import Links
    from bulletin.render.brand import BrandView
    from bulletin.render.templating import TemplateKind


class Workspace:
    """A workspace opened for one process; hand it to stage calls instead of rebuilding its parts."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        if engine is not None:
            if settings.address_key:
                use_address_key(engine, settings.address_key)
            self.__dict__["engine"] = engine

    @classmethod
    def open(cls, path: Path | None = None, *, read_only: bool = False) -> Workspace:
        """The workspace at `path` (or BULLETIN_WORKSPACE, or the current folder).

        `read_only` is for commands that only look (config show, doctor, lists): they
        read an existing signing key but never create `.bulletin/`.
        """
        return cls(load_settings(path, create_state=not read_only))

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url, address_key=self.settings.address_key)

    @cached_property
    def links(self) -> Links:
        from bulletin.audience.links import Links

        return Links.for_settings(self.settings)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on an error."""
        with session_scope(self.engine) as session:
            yield session

    def template_loader(self, kind: TemplateKind) -> BaseLoader:
        """Templates of one kind ("web", "email"): each file from the workspace's own folder if it has it,
        else the packaged default."""
        from bulletin.render.templating import template_loader

        return template_loader(self.settings, kind)

    @cached_property
    def brand(self) -> BrandView:
        """The workspace's [brand], as the web pages show it."""
        from bulletin.render.templating import default_brand

        return default_brand(self.settings)

    def close(self) -> None:
        engine = self.__dict__.pop("engine", None)
        if engine is not None:
            engine.dispose()
