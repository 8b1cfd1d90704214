"""The Python compilation of a condition: a predicate over a Reader, for fill to choose targeted blocks per recipient.

It follows the rules in the docstring of `bulletin.audience.conditions`, as
`condition_sql` does, so a block shown to a reader and a segment counting them
never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bulletin.audience.condition_syntax import (
    DATE_FIELDS,
    TEXT_FIELDS,
    AllOf,
    AnyOf,
    Node,
    Not,
    day_start,
    fold,
)


@dataclass(frozen=True)
class Reader:
    """One subscriber as conditions see them (`subscribed`: their subscription to the list in question)."""

    email: str = ""
    name: str = ""
    organisation: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    subscribed: dt.datetime | None = None
    created: dt.datetime | None = None


def _text_of(name: str) -> Callable[[Reader], str]:
    if name in TEXT_FIELDS:
        return lambda r: fold(getattr(r, name) or "")
    key = name.removeprefix("attributes.")

    def attribute(r: Reader) -> str:
        value = r.attributes.get(key)
        return "" if value is None else fold(value if isinstance(value, str) else _as_text(value))
    return attribute


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _combine(parts: list[Callable[[Reader], bool]], every: bool) -> Callable[[Reader], bool]:
    """Short-circuit and/or; pairs (the usual case) without a generator, which fill time notices."""
    if len(parts) == 2:
        a, b = parts
        return (lambda r: a(r) and b(r)) if every else (lambda r: a(r) or b(r))
    if every:
        return lambda r: all(p(r) for p in parts)
    return lambda r: any(p(r) for p in parts)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def predicate(node: Node) -> Callable[[Reader], bool]:
    if isinstance(node, Not):
        inner = predicate(node.item)
        return lambda r: not inner(r)
    if isinstance(node, AllOf | AnyOf):
        return _combine([predicate(n) for n in node.items], isinstance(node, AllOf))
    if node.field in DATE_FIELDS:
        attr = node.field
        if node.op == "exists":
            return lambda r: getattr(r, attr) is not None
        limit = day_start(node.day) if node.op == "before" else day_start(node.day) + dt.timedelta(days=1)  # type: ignore[arg-type]
        if node.op == "before":
            return lambda r: (v := getattr(r, attr)) is not None and _aware(v) < limit
        return lambda r: (v := getattr(r, attr)) is not None and _aware(v) >= limit
    get = _text_of(node.field)
    values = tuple(fold(v) for v in node.values)
    first = values[0] if values else ""
    ops: dict[str, Callable[[Reader], bool]] = {
        "=": lambda r: get(r) == first,
        "!=": lambda r: get(r) != first,
        "in": lambda r: get(r) in values,
        "contains": lambda r: first in get(r),
        "starts": lambda r: get(r).startswith(first),
        "exists": lambda r: get(r) != "",
    }
    return ops[node.op]
