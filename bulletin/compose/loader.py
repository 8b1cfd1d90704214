"""Read an issue folder into an `Issue`, or fail once with file, line and field.

The folder holds `issue.toml` and block files `NN-<name>.md`, each with YAML
front matter between `---` lines. Line numbers come from the YAML node marks,
so an error points at the field the editor has to change.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from bulletin.compose.blocks import BLOCK_TYPES, Slug, Strict, Text, check_url
from bulletin.compose.issue import Block, Issue
from bulletin.compose.markdown import render_body
from bulletin.errors import ContentError, location

ISSUE_FILE = "issue.toml"
BLOCK_FILE = re.compile(r"^(\d{2})-([a-z0-9][a-z0-9-]*)\.md$")
ISSUE_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
RESERVED_ANCHORS = {"top", "contents", "footer"}


class IssueMeta(Strict):
    title: Text
    date: dt.date
    preheader: Text
    lists: list[Slug] = Field(min_length=1)
    subject: Text | None = None
    segments: list[Slug] = Field(default_factory=list)


def load_issue(path: Path) -> Issue:
    """The issue in folder `path`; raises ContentError naming file, line and field."""
    if not (path / ISSUE_FILE).is_file():
        raise ContentError(f"no {ISSUE_FILE} here: not an issue folder", where=str(path))
    if not ISSUE_SLUG.match(path.name):
        raise ContentError("the folder name is the issue's slug in URLs: lower-case letters, digits and dashes",
                           where=str(path))
    meta = _read_meta(path / ISSUE_FILE)
    blocks = _read_blocks(path)
    return Issue(
        slug=path.name,
        title=meta.title,
        date=meta.date,
        preheader=meta.preheader,
        lists=tuple(meta.lists),
        subject=meta.subject or meta.title,
        blocks=blocks,
        folder=path,
        segments=tuple(meta.segments),
    )


def _read_meta(file: Path) -> IssueMeta:
    text = file.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        raise ContentError(f"bad TOML: {exc}", where=location(str(file), int(m.group(1)) if m else None)) from None
    try:
        return IssueMeta.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else None
        line = _toml_line(text, key)
        raise ContentError(err["msg"], where=location(str(file), line, _dotted(err["loc"]))) from None


def _toml_line(text: str, key: str | None) -> int | None:
    if key:
        for n, raw in enumerate(text.splitlines(), 1):
            if re.match(rf"^\s*{re.escape(key)}\s*=", raw):
                return n
    return 1


def _read_blocks(folder: Path) -> tuple[Block, ...]:
    blocks: list[Block] = []
    seen: dict[str, Path] = {}
    for file in sorted(p for p in folder.iterdir() if p.suffix == ".md"):
        m = BLOCK_FILE.match(file.name)
        if not m:
            raise ContentError("block files are named NN-<name>.md (lower-case letters, digits, dashes)",
                               where=str(file))
        anchor = m.group(2)
        if anchor in RESERVED_ANCHORS or anchor in seen:
            why = "is reserved" if anchor in RESERVED_ANCHORS else f"is already used by {seen[anchor].name}"
            raise ContentError(f"block name {anchor!r} {why}", where=str(file))
        seen[anchor] = file
        blocks.append(_read_block(file, anchor))
    if not blocks:
        raise ContentError("the issue has no NN-<name>.md block files", where=str(folder))
    return tuple(blocks)


def _read_block(file: Path, anchor: str) -> Block:
    front, body, body_line = _split(file)
    where = str(file)
    try:
        node = yaml.compose(front, Loader=yaml.SafeLoader)
        data = yaml.load(front, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark else 1
        raise ContentError(f"bad YAML front matter: {getattr(exc, 'problem', exc)}", where=location(where, line)) from None
    if not isinstance(data, dict):
        raise ContentError("front matter must be a mapping of fields", where=location(where, 2))
    kind = data.get("type")
    if kind not in BLOCK_TYPES:
        known = ", ".join(BLOCK_TYPES)
        msg = "missing block type" if kind is None else f"unknown block type {kind!r}"
        raise ContentError(f"{msg} (one of: {known})", where=location(where, _yaml_line(node, ("type",)), "type"))
    try:
        fields = BLOCK_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        line = _yaml_line(node, err["loc"])
        raise ContentError(err["msg"], where=location(where, line, _dotted(err["loc"]))) from None

    def check_link(href: str, md_line: int) -> None:
        try:
            check_url(href)
        except ValueError as exc:
            raise ContentError(f"bad link in body: {exc}", where=location(where, body_line + md_line)) from None

    rendered = render_body(body, check_link)
    audience = _audience(fields.audience, node, where)
    return Block(type=kind, anchor=anchor, heading=fields.heading, fields=fields,
                 body_html=rendered.html, body_text=rendered.text, source=file, audience=audience)


def _audience(text: str | None, node: Any, where: str) -> str:
    """The block's `audience` condition, checked now so a typo is reported at its file, line and column."""
    if text is None:
        return ""
    from bulletin.audience.conditions import ConditionError, parse_condition

    try:
        parse_condition(text)
    except ConditionError as exc:
        line = _yaml_line(node, ("audience",))
        value = next((v for k, v in node.value if k.value == "audience"), None)
        column = exc.column
        if value is not None and "\n" not in str(value.value):
            column += value.start_mark.column + (1 if value.style in ("'", '"') else 0)
        raise ContentError(f"audience: {exc.message}", where=f"{where}:{line}:{column}: field 'audience'") from None
    return text.strip()


def _split(file: Path) -> tuple[str, str, int]:
    """(front matter, body, 1-based file line of the body's first line)."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ContentError(f"not UTF-8 text: {exc.reason}", where=str(file)) from None
    if not lines or lines[0].strip() != "---":
        raise ContentError("missing front matter: the file must start with a '---' line", where=location(str(file), 1))
    for i, raw in enumerate(lines[1:], 1):
        if raw.strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:]), i + 2
    raise ContentError("front matter is not closed by a '---' line", where=location(str(file), 1))


def _yaml_line(node: Any, loc: tuple[Any, ...]) -> int:
    """1-based file line of the deepest node on `loc` that exists (front matter starts at line 2)."""
    if node is None:
        return 2
    line = node.start_mark.line
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line
        else:
            break
    return line + 2


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "?"

