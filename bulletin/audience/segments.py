"""Segments: named parts of a list, chosen by a condition (`subscribers/segments.toml`).

    [[segment]]
    name = "finance"
    description = "Finance officers of the shared-services bulletin"
    list = "shared-services"
    condition = "role contains 'finance' or organisation starts with 'Southby'"

The file is the source, like lists.toml; nothing about segments is stored but
the name the ledger writes next to each recipient a segment chose. The people
of a segment are the list's sendable subscribers (confirmed, not suppressed,
not erased) for whom the condition holds, decided by the database.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from bulletin.audience.conditions import Columns, Condition, ConditionError, parse_condition
from bulletin.audience.subscribers import get_list, sendable
from bulletin.errors import ConfigError, NotFound
from bulletin.models import Subscriber, Subscription, id_of

SEGMENTS_FILE = "segments.toml"
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
FIELDS = {"name", "description", "list", "condition"}
_CONDITION_KEY = re.compile(r"^(\s*condition\s*=\s*)('''|\"\"\"|'|\")")


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    list: str
    condition: Condition


def columns(subscription: Any = Subscription) -> Columns:
    """Where the condition language finds each field in a query over Subscriber joined to a Subscription."""
    return Columns(
        text={"email": Subscriber.email, "name": Subscriber.name, "organisation": Subscriber.organisation},
        attributes=Subscriber.attributes,
        dates={"subscribed": func.coalesce(subscription.confirmed_at, subscription.created_at),
               "created": Subscriber.created_at},
    )


def segments_file(subscribers_dir: Path) -> Path:
    return subscribers_dir / SEGMENTS_FILE


def load_segments(path: Path) -> list[Segment]:
    """Parse and check segments.toml; ConfigError names file, line and column (of a bad condition)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bad TOML: {exc}", where=str(path)) from None
    unknown = set(data) - {"segment"}
    if unknown:
        raise ConfigError(f"unknown table {sorted(unknown)[0]!r}; segments are [[segment]] entries", where=str(path))
    entries = data.get("segment", [])
    if not isinstance(entries, list):
        raise ConfigError("segments are [[segment]] entries", where=str(path))
    out: list[Segment] = []
    for n, entry in enumerate(entries):
        out.append(_segment(path, text, n, entry))
    seen: set[str] = set()
    for s in out:
        if s.name in seen:
            raise ConfigError(f"segment {s.name!r} is defined twice", where=str(path))
        seen.add(s.name)
    return out


def _segment(path: Path, text: str, n: int, entry: dict[str, Any]) -> Segment:
    where = f"{path}:{_entry_line(text, n)}"
    extra = set(entry) - FIELDS
    if extra:
        raise ConfigError(f"unknown field {sorted(extra)[0]!r} (fields: name, description, list, condition)",
                          where=where)
    for key in ("name", "list", "condition"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigError(f"field {key!r} is required and must be text", where=where)
    if not NAME.match(entry["name"]):
        raise ConfigError("a segment name is lower-case letters, digits and dashes", where=where)
    source = entry["condition"]
    try:
        condition = parse_condition(source)
    except ConditionError as exc:
        line, column = _condition_position(text, n, source, exc.column)
        raise ConfigError(f"segment {entry['name']!r}: {exc.message}",
                          where=f"{path}:{line}:{column}") from None
    return Segment(entry["name"], str(entry.get("description", "")), entry["list"], condition)


def _entry_line(text: str, n: int) -> int:
    """1-based line of the n-th [[segment]] header."""
    count = -1
    for i, raw in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*\[\[\s*segment\s*\]\]", raw):
            count += 1
            if count == n:
                return i
    return 1


def _condition_position(text: str, n: int, source: str, column: int) -> tuple[int, int]:
    """File line and column of `column` (1-based, in the condition) in the n-th segment's condition.

    Exact for the usual one-line string; escapes inside a basic string are not counted.
    """
    lines = text.splitlines()
    start = _entry_line(text, n)
    for i in range(start, len(lines) + 1):
        m = _CONDITION_KEY.match(lines[i - 1])
        if not m:
            continue
        before = source[: column - 1]
        line0, col0 = i, m.end()
        if len(m.group(2)) == 3 and lines[i - 1][m.end():].strip() == "":
            line0, col0 = i + 1, 0  # TOML drops a newline right after the opening quotes
        if "\n" in before:
            return line0 + before.count("\n"), len(before.rsplit("\n", 1)[-1]) + 1
        return line0, col0 + len(before) + 1
    return start, column


def find_segment(segments: list[Segment], name: str, path: Path) -> Segment:
    for s in segments:
        if s.name == name:
            return s
    known = ", ".join(s.name for s in segments) or "none defined"
    raise NotFound(f"no such segment (known: {known})", where=f"{path}: segment {name!r}")


# Who is in a segment ------------------------------------------------------------------------------


def _members_query(session: Session, segment: Segment):  # type: ignore[no-untyped-def]
    mlist = get_list(session, segment.list)
    return (select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.organisation)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .where(sendable(id_of(mlist)), segment.condition.to_sql(columns())))


def segment_members(session: Session, segment: Segment) -> list[tuple[int, str, str]]:
    """(subscriber_id, email, name) of everyone in the segment, by id: what a send to it queues."""
    stmt = _members_query(session, segment).order_by(Subscriber.id)
    return [(int(i), str(e), str(n or "")) for i, e, n, _ in session.exec(stmt).all()]


def segment_count(session: Session, segment: Segment) -> int:
    sub = _members_query(session, segment).subquery()
    return int(session.exec(select(func.count()).select_from(sub)).one())


def segment_page(session: Session, segment: Segment, *, page: int = 1,
                 per_page: int = 50) -> list[tuple[int, str, str, str]]:
    """One page of (id, email, name, organisation), by id."""
    stmt = _members_query(session, segment).order_by(Subscriber.id).offset((page - 1) * per_page).limit(per_page)
    return [(int(i), str(e), str(n or ""), str(o or "")) for i, e, n, o in session.exec(stmt).all()]
