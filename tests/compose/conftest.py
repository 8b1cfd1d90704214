"""An editable copy of a small valid issue, for tests that break one thing at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

ISSUE_TOML = """title = "Test bulletin"
date = 2026-03-01
preheader = "What is in it"
lists = ["shared-services"]
"""

ARTICLE = """---
type: article
heading: First story
---
Body with a [link](https://www.example.org/page).
"""


@pytest.fixture
def issue_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "test-issue"
    folder.mkdir()
    (folder / "issue.toml").write_text(ISSUE_TOML)
    (folder / "01-first.md").write_text(ARTICLE)
    return folder
