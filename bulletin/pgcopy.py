"""Rows in PostgreSQL's COPY text format, built a column at a time.

psycopg's `Copy.write_row` dumps every value through its type's dumper: about
a microsecond a value here, which was most of a million-row import and queue.
The bulk writers' columns are each of one type (ids, hashes, a timestamp shared
by the whole batch), so a column is formatted by one comprehension of C-level
calls, and the batch goes to the server as one `Copy.write`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from itertools import repeat
from typing import Any

NULL = "\\N"
# COPY text format: backslash, tab, newline and carriage return are the characters it escapes.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def field(value: Any) -> str:
    """One value as COPY's text format reads it (the slow, general path)."""
    if value is None:
        return NULL
    if isinstance(value, str):
        return _escaped(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"no COPY text form for {type(value).__name__} value {value!r}")


def column(values: Sequence[Any]) -> Iterable[str]:
    """A column's values as text, with one formatter for the column's type."""
    if not values:
        return []
    first = values[0]
    if all(v is first for v in values):  # one value for the whole batch: a state, a timestamp, NULL
        return repeat(field(first), len(values))
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return _texts(values)
    if kinds == {int}:
        return list(map(str, values))
    return [field(v) for v in values]  # NULLs, mixed or other types: value by value


def _needs_escape(text: str) -> bool:
    """Text needs escaping only where it holds one of four characters, which it almost never does:
    four scans at C speed (0.13 us for an address) decide, where a translate costs 1.7 us (its
    map gives two characters for one, so it goes a character at a time), three times a row of
    an import."""
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


def _escaped(text: str) -> str:
    return text.translate(_ESCAPES) if _needs_escape(text) else text


def _texts(values: Sequence[str]) -> Sequence[str]:
    """A text column: one check of the joined column instead of one per value."""
    if _needs_escape("".join(values)):
        return [v.translate(_ESCAPES) for v in values]
    return values


def block(columns: Sequence[Sequence[Any]]) -> str:
    """The text of one COPY FROM STDIN: the columns side by side, a line per row."""
    if not columns or not columns[0]:
        return ""
    return "\n".join(map("\t".join, zip(*map(column, columns), strict=True))) + "\n"


def array_literal(values: Iterable[str | int]) -> str:
    """A PostgreSQL array literal ('{1,2}', '{"a","b"}') for one text parameter cast to an array."""
    return "{" + ",".join(str(v) if isinstance(v, int) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"
