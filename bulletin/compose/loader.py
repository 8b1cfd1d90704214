"""Read an issue folder into an `Issue`, or fail with every mistake, each with file, line and field.

The folder holds `issue.toml` and block files `NN-<name>.md`, each with YAML
front matter between `---` lines. Line numbers come from the YAML node marks,
so an error points at the field the editor has to change.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError

from bulletin.compose.blocks import BLOCK_TYPES, Slug, Strict, Text, check_url
from bulletin.compose.issue import Block, Issue
from bulletin.compose.markdown import render_body
from bulletin.compose.media import MediaFile, MediaProblem, is_local, load_media
from bulletin.errors import ContentError, ContentErrors, location

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


def load_issue(path: Path, *, media_url: str | None = None) -> Issue:
    """The issue in folder `path`; raises ContentError naming file, line and field of every mistake.

    `media_url` is where the folder's images will be published (the build gives
    `<public_base_url>/media/<slug>`); without it image URLs are relative `media/...`.
    """
    if not (path / ISSUE_FILE).is_file():
        raise ContentError(f"no {ISSUE_FILE} here: not an issue folder", where=str(path))
    if not ISSUE_SLUG.match(path.name):
        raise ContentError("the folder name is the issue's slug in URLs: lower-case letters, digits and dashes",
                           where=str(path))
    errors: list[ContentError] = []
    meta = _read_meta(path / ISSUE_FILE, errors)
    media: dict[str, MediaFile] = {}
    blocks = _read_blocks(path, errors, _MediaSink(path, media_url or "media", media))
    if errors:
        raise ContentErrors.of(errors)
    assert meta is not None
    return Issue(
        slug=path.name,
        title=meta.title,
        date=meta.date,
        preheader=meta.preheader,
        lists=tuple(meta.lists),
        subject=meta.subject or meta.title,
        blocks=blocks,
        folder=path,
        media=tuple(media.values()),
        segments=tuple(meta.segments),
    )


class _MediaSink:
    """Resolves the folder's images for one issue, each file once, and remembers them for the build."""

    def __init__(self, folder: Path, url: str, found: dict[str, MediaFile]) -> None:
        self.folder, self.url, self.found = folder, url.rstrip("/"), found

    def resolve(self, src: str, alt: str, width: int | None) -> tuple[str, MediaFile]:
        """(absolute URL, file); raises MediaProblem."""
        media = load_media(self.folder, src, alt, width)
        self.found.setdefault(media.name, media)
        return f"{self.url}/{media.name}", media


def _read_meta(file: Path, errors: list[ContentError]) -> IssueMeta | None:
    text = file.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        errors.append(ContentError(f"bad TOML: {exc}", where=location(str(file), int(m.group(1)) if m else None)))
        return None
    try:
        return IssueMeta.model_validate(data)
    except ValidationError as exc:
        errors += _field_errors(exc, IssueMeta, str(file), lambda loc: _toml_line(text, str(loc[0]) if loc else None))
        return None


def _toml_line(text: str, key: str | None) -> int | None:
    if key:
        for n, raw in enumerate(text.splitlines(), 1):
            if re.match(rf"^\s*{re.escape(key)}\s*=", raw):
                return n
    return 1


def _read_blocks(folder: Path, errors: list[ContentError], sink: _MediaSink) -> tuple[Block, ...]:
    blocks: list[Block] = []
    seen: dict[str, Path] = {}
    files = sorted(p for p in folder.iterdir() if p.suffix == ".md")
    for file in files:
        m = BLOCK_FILE.match(file.name)
        if not m:
            errors.append(ContentError("block files are named NN-<name>.md (lower-case letters, digits, dashes)",
                                       where=str(file)))
            continue
        anchor = m.group(2)
        if anchor in RESERVED_ANCHORS or anchor in seen:
            why = "is reserved" if anchor in RESERVED_ANCHORS else f"is already used by {seen[anchor].name}"
            errors.append(ContentError(f"block name {anchor!r} {why}", where=str(file)))
            continue
        seen[anchor] = file
        try:
            block = _read_block(file, anchor, errors, sink)
        except ContentError as exc:  # the file cannot be read as a block at all
            errors.append(exc)
            continue
        if block is not None:
            blocks.append(block)
    if not files:
        errors.append(ContentError("the issue has no NN-<name>.md block files", where=str(folder)))
    return tuple(blocks)


def _read_block(file: Path, anchor: str, errors: list[ContentError], sink: _MediaSink) -> Block | None:
    """The block in `file`, or None with its mistakes added to `errors` (all of them, not the first)."""
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
    before = len(errors)
    fields: Any = None
    try:
        fields = BLOCK_TYPES[kind].model_validate(data)
    except ValidationError as exc:
        errors += _field_errors(exc, BLOCK_TYPES[kind], where, lambda loc: _yaml_line(node, loc))
    if fields is not None and getattr(fields, "image", None) is not None:
        fields = _resolve_field_image(fields, sink, where, _yaml_line(node, ("image", "src")), errors)

    def check_link(href: str, md_line: int) -> None:
        try:
            check_url(href)
        except ValueError as exc:
            errors.append(ContentError(f"bad link in body: {exc}", where=location(where, body_line + md_line)))

    def resolve_image(src: str, alt: str, md_line: int) -> tuple[str, int, int] | None:
        try:
            url, media = sink.resolve(src, alt, None)
        except MediaProblem as exc:
            errors.append(ContentError(str(exc), where=location(where, body_line + md_line)))
            return None
        return url, media.width, media.height

    rendered = render_body(body, check_link, resolve_image)
    audience = _audience(fields.audience, node, where, errors) if fields is not None else ""
    if len(errors) > before or fields is None:
        return None
    return Block(type=kind, anchor=anchor, heading=fields.heading, fields=fields,
                 body_html=rendered.html, body_text=rendered.text, source=file, audience=audience)


def _audience(text: str | None, node: Any, where: str, errors: list[ContentError]) -> str:
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
        errors.append(ContentError(f"audience: {exc.message}", where=f"{where}:{line}:{column}: field 'audience'"))
        return ""
    return text.strip()


def _resolve_field_image(fields: Any, sink: _MediaSink, where: str, line: int,
                         errors: list[ContentError]) -> Any:
    """A block's `image:` in the issue folder becomes its published URL, width and height."""
    image = fields.image
    if not is_local(image.src):
        return fields.model_copy(update={"image": image.model_copy(update={"width": image.shown_width})})
    try:
        url, media = sink.resolve(image.src, image.alt, image.width)
    except MediaProblem as exc:
        errors.append(ContentError(str(exc), where=location(where, line, "image.src")))
        return fields
    return fields.model_copy(update={"image": image.model_copy(
        update={"src": url, "width": media.width, "height": media.height})})


def _field_errors(exc: ValidationError, model: type[BaseModel], where: str,
                  line_of: Callable[[tuple[Any, ...]], int | None]) -> list[ContentError]:
    """Every pydantic error as file:line: field; an unknown key gets a "did you mean" and hides the
    "missing" error of the field it was meant to be."""
    out: list[ContentError] = []
    meant: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] != "extra_forbidden":
            continue
        known = list(_model_at(model, loc[:-1]).model_fields)
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{guess[0]}'?)" if guess else f" (known: {', '.join(known)})"
        if guess:
            meant.add(loc[:-1] + (guess[0],))
        out.append(ContentError(f"unknown field '{_dotted(loc)}'{hint}", where=location(where, line_of(loc))))
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" or (err["type"] == "missing" and loc in meant):
            continue
        out.append(ContentError(err["msg"], where=location(where, line_of(loc), _dotted(loc))))
    return sorted(out, key=lambda e: _line_key(e.where))


def _line_key(where: str | None) -> int:
    m = re.match(r"^.*?:(\d+)", where or "")
    return int(m.group(1)) if m else 0


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model class that holds the fields at `loc` (list indexes skipped, Optional unwrapped)."""
    for part in loc:
        if isinstance(part, int) or part not in model.model_fields:
            continue
        inner = _model_in(model.model_fields[part].annotation)
        if inner is None:
            break
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


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
