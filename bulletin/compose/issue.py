"""The typed issue that crosses from compose to render."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from bulletin.compose.media import MediaFile


@dataclass(frozen=True)
class Block:
    """One block of an issue: its type's typed fields plus the Markdown body, already sanitised."""

    type: str
    anchor: str
    heading: str
    fields: BaseModel
    body_html: str
    body_text: str
    source: Path
    audience: str = ""  # a condition (audience/conditions.py); "" = every reader


@dataclass(frozen=True)
class Issue:
    """An issue as the editor wrote it, checked; render needs nothing else."""

    slug: str
    title: str
    date: dt.date
    preheader: str
    lists: tuple[str, ...]
    subject: str
    blocks: tuple[Block, ...]
    folder: Path
    media: tuple[MediaFile, ...] = ()  # images of the folder, published by the build under media/
    segments: tuple[str, ...] = ()  # issue.toml `segments`: what `bulletin send` sends to without --list
