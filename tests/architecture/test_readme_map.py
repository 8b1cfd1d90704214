"""The README's "How it is built" map names exactly the folders and top-level modules of bulletin/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _map() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## How it is built", 1)[1]
    return section.split("```", 2)[1]


def test_the_readme_map_matches_the_folders() -> None:
    block = _map()
    named_dirs = set(re.findall(r"^ +([a-z_]+)/", block, re.M))
    named_files = set(re.findall(r"\b([a-z_]+\.py)\b", block))
    pkg = ROOT / "bulletin"
    dirs = {p.name for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists() or
            p.is_dir() and p.name == "migrations"}
    files = {p.name for p in pkg.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert named_dirs == dirs
    assert named_files == files
