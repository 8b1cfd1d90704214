"""The packaged defaults: email and web templates, the sample issue, sample lists and subscribers.

In a wheel they sit inside this package (`bulletin/defaults/templates/...`),
put there at build time from the repository's top-level `templates/`,
`content/` and `subscribers/` by the `package-dir` mapping in pyproject.toml
and setup.py, so git holds one copy. In a source checkout or an editable
install the package folder has no data and the top-level folders are used,
so an edit there shows at once.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

from bulletin.errors import ConfigError

__all__ = ["SAMPLE_ISSUE", "defaults_dir", "starter"]  # front door: what init and demo may call

Kind = Literal["templates", "content", "subscribers"]
SAMPLE_ISSUE = "2016-shared-service-map"
CHECKOUT = Path(__file__).resolve().parents[2]


def defaults_dir(kind: Kind) -> Path:
    """The folder of packaged `kind` files: inside the installed package, else the source checkout."""
    packaged = Path(str(files(__name__) / kind))  # wheels install unzipped, so this is a real folder
    if packaged.is_dir():
        return packaged
    checkout = CHECKOUT / kind
    if (CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    raise ConfigError(f"the packaged {kind}/ folder is missing: reinstall bulletin", where=str(packaged))


def sample_issue_dir() -> Path:
    return defaults_dir("content") / SAMPLE_ISSUE
