"""What every table module shares: the one clock and the id of a stored row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    """Aware UTC now: the one clock every table uses."""
    return datetime.now(UTC)


def id_of(row: Any) -> int:
    """The primary key of a stored row (SQLModel types `id` as optional until the row is flushed)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return int(row.id)
