"""Audience fixtures: a migrated database (SQLite and PostgreSQL) with the workspace's lists synced."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bulletin.audience.lists import lists_file, sync_file
from bulletin.db import session_scope


@pytest.fixture
def lists(engine: Engine, workspace: Path) -> dict[str, int]:
    """Sync subscribers/lists.toml into the database; returns {slug: id}."""
    with session_scope(engine) as s:
        sync_file(s, lists_file(workspace / "subscribers"))
    from sqlmodel import select

    from bulletin.models import MailingList

    with session_scope(engine) as s:
        return {m.slug: int(m.id) for m in s.exec(select(MailingList)).all()}


def write_csv(path: Path, text: str) -> Path:
    """Write a CSV exactly as given (newline='' keeps CR/LF inside quoted fields)."""
    path.write_text(text, encoding="utf-8", newline="")
    return path
