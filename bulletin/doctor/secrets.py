"""Are the signing keys and passwords kept where they belong: private files, outside git.

A leaked signing key lets anyone forge unsubscribe and confirm links, and a
password in a committed bulletin.toml outlives any rotation, so the doctor
looks at file modes and asks git (when the workspace is a repository) whether
the secrets would be committed.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

from bulletin.config import CONFIG_FILE, Settings
from bulletin.doctor.result import PASS, WARN, Check

TOML_SECRETS = ("smtp_password", "imap_password", "secret_keys", "address_key")


def check_secrets(settings: Settings) -> Check:
    problems: list[tuple[str, str]] = []
    key_file = settings.state_dir / "secret_keys.json"
    address_file = settings.state_dir / "address_key.json"
    files = [p for p in (key_file, address_file, _dkim_path(settings)) if p is not None and p.is_file()]
    for path in files:
        if path.stat().st_mode & 0o077:
            problems.append((f"{path} is readable by other users", f"chmod 600 {path}"))
    in_toml = _secrets_in_toml(settings.workspace / CONFIG_FILE)
    if in_toml and _tracked_or_trackable(settings.workspace, settings.workspace / CONFIG_FILE):
        names = ", ".join(in_toml)
        problems.append((f"{CONFIG_FILE} holds {names} and is not ignored by git",
                         "move them to " + ", ".join(f"BULLETIN_{n.upper()}" for n in in_toml)
                         + " environment variables"))
    for path in files:
        if _tracked_or_trackable(settings.workspace, path):
            problems.append((f"{path} is not ignored by git", f"add {path.parent.name}/ to .gitignore"))
    if problems:
        return Check("secrets", WARN, "; ".join(p for p, _ in problems), "; ".join(f for _, f in problems))
    return Check("secrets", PASS, f"signing keys in {key_file} are private and outside git")


def _dkim_path(settings: Settings) -> Path | None:
    return settings.path(settings.dkim_key_path) if settings.dkim_key_path else None


def _secrets_in_toml(path: Path) -> list[str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [name for name in TOML_SECRETS if data.get(name)]


def _tracked_or_trackable(workspace: Path, path: Path) -> bool:
    """True when `path` sits in a git work tree and is not ignored; False outside git or without git."""
    git = shutil.which("git")
    if git is None:
        return False
    try:
        proc = subprocess.run([git, "check-ignore", "-q", str(path)], cwd=workspace, capture_output=True,
                              timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 1  # 0 = ignored, 1 = not ignored, 128 = not a repository
