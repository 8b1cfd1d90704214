"""Which template comes from where, and copying a packaged one into the workspace to edit.

The lookup itself is `templating.template_search_path`; this module only
reports on it and copies, so `bulletin templates list` shows exactly what a
build will use.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bulletin.config import Settings
from bulletin.errors import NotFound, StateError
from bulletin.render.templating import TemplateKind, template_search_path

KINDS: tuple[TemplateKind, ...] = ("email", "web")
SUFFIXES = (".j2", ".html")


@dataclass(frozen=True)
class TemplateSource:
    name: str      # as `templates copy` takes it: email/layout.mjml.j2, web/signup.html
    origin: str    # workspace | packaged
    path: Path


def _files(folder: Path, kind: TemplateKind) -> dict[str, Path]:
    root = folder / "email" if kind == "email" else folder
    if not root.is_dir():
        return {}
    return {f"{kind}/{p.relative_to(root).as_posix()}": p
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in SUFFIXES}


def list_templates(settings: Settings) -> list[TemplateSource]:
    """Every template a build or the web app can use, with the file that wins."""
    found: dict[str, TemplateSource] = {}
    for kind in KINDS:
        for origin, folder in template_search_path(settings, kind):
            for name, path in _files(folder, kind).items():
                found.setdefault(name, TemplateSource(name, origin, path))
    return sorted(found.values(), key=lambda t: t.name)


def copy_template(settings: Settings, name: str, *, force: bool = False) -> Path:
    """Copy packaged template `name` (full name, or a file name that is unique) into the workspace."""
    packaged = {n: p for kind in KINDS for origin, folder in template_search_path(settings, kind)
                if origin == "packaged" for n, p in _files(folder, kind).items()}
    matches = [n for n in packaged if n == name or n.rsplit("/", 1)[-1] == name]
    if len(matches) != 1:
        hint = f"one of {', '.join(matches)}" if matches else "see `bulletin templates list`"
        raise NotFound(f"no single packaged template by that name ({hint})", where=name)
    full = matches[0]
    target = settings.templates_path / full
    if target.resolve() == packaged[full].resolve():
        raise StateError("this workspace is the source checkout: edit the file in place", where=str(target))
    if target.exists() and not force:
        raise StateError("already in the workspace; edit it, or pass --force to start again from the default",
                         where=str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(packaged[full], target)
    return target
