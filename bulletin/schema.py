"""The schema's newest migration, read from the version files without importing Alembic.

Every command that opens the database asks whether it is up to date, and
Alembic's answer costs a third of a second of imports and script loading; the
fast path of `status` and `report` (`cli.quick`) asks too, and loads no
SQLAlchemy at all. So the one head is read here from the files themselves.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@cache
def newest_revision(migrations: Path = MIGRATIONS) -> str | None:
    """The one head of migrations/versions/, read from each file's `revision` and `down_revision`
    (as Alembic reads them); None when unsure: a file without a plain revision id, or not one head."""
    import ast

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((migrations / "versions").glob("*.py")):
        if path.name.startswith(("__init__", ".#")):  # files Alembic does not take as revisions
            continue
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:  # `revision: str = "0021"`
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    values[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        downs = [down] if isinstance(down, str) else list(down) if isinstance(down, (tuple, list)) else []
        if down is not None and not downs or not all(isinstance(d, str) for d in downs):
            return None
        parents.update(downs)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
