"""Block types and their typed front-matter fields.

Each type is a pydantic model with `extra="forbid"`, so a misspelt field is an
error naming the field instead of a silently missing part of the email.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bulletin.compose.media import is_local

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_EMAIL = re.compile(r"^[^@\s<>\"']+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def check_url(value: str) -> str:
    """Links go into mail clients verbatim: only absolute http(s) and mailto links are accepted."""
    value = value.strip()
    if re.search(r"\s", value):
        raise ValueError("a link may not contain spaces")
    if value.startswith("mailto:"):
        if not _EMAIL.match(value[7:].split("?", 1)[0]):
            raise ValueError(f"not a valid mailto link: {value!r}")
        return value
    if not re.match(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/|$|\?|#)", value):
        raise ValueError(f"must be an absolute http(s):// or mailto: link, got {value!r}")
    return value


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


def _nonblank(value: str) -> str:
    """Whitespace, line breaks included, collapses to single spaces: no CR/LF can reach a header."""
    if not value.strip():
        raise ValueError("must not be empty")
    return " ".join(value.split())


Url = Annotated[str, AfterValidator(check_url)]
Email = Annotated[str, AfterValidator(_email)]
Text = Annotated[str, AfterValidator(_nonblank)]
Slug = Annotated[str, Field(pattern=_SLUG.pattern)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Link(Strict):
    label: Text
    url: Url


class Quote(Strict):
    text: Text
    attribution: Text


def _image_src(value: str) -> str:
    """An image in the issue folder (`map.png`) or an absolute http(s) URL the editor hosts."""
    value = value.strip()
    if is_local(value):
        return value
    if value.startswith("mailto:"):
        raise ValueError("an image source is a file in the issue folder or an http(s):// URL")
    return check_url(value)


class Image(Strict):
    src: Annotated[str, AfterValidator(_image_src)]
    alt: Text
    width: int | None = Field(default=None, ge=1, le=600)
    height: int | None = Field(default=None, ge=1)  # filled in by the build for images in the folder

    @property
    def shown_width(self) -> int:
        return self.width or 550


class BlockFields(Strict):
    """Fields every block has: the type tag and the heading shown in the contents."""

    type: str
    heading: Text
    audience: str | None = None  # who sees the block: a condition, checked by the loader


class Article(BlockFields):
    quote: Quote | None = None
    image: Image | None = None
    link: Link | None = None


class Figure(Strict):
    value: Text
    label: Text
    note: str = ""


class Point(Strict):
    label: Text
    value: float = Field(ge=0)


class Series(Strict):
    title: Text
    unit: str = ""
    points: list[Point] = Field(min_length=1, max_length=24)


class Stats(BlockFields):
    figures: list[Figure] = Field(min_length=1)
    series: Series | None = None
    source: str = ""


class Document(Strict):
    title: Text
    url: Url
    description: str = ""
    kind: str = ""


class Documents(BlockFields):
    documents: list[Document] = Field(min_length=1)


class Paper(Strict):
    publisher: Text
    title: Text
    summary: Text
    url: Url


class Briefing(BlockFields):
    papers: list[Paper] = Field(min_length=1)


class Callout(BlockFields):
    contact: Email
    button: Link | None = None


class Event(BlockFields):
    title: Text
    starts: dt.datetime | dt.date | None = None
    ends: dt.datetime | None = None
    place: str = ""
    organisers: list[Text] = Field(min_length=1)
    link: Link | None = None


class Feedback(BlockFields):
    questions: list[Text] = Field(min_length=1)
    button_label: Text = "Reply to this bulletin"


class Bulletin(Strict):
    slug: Slug
    title: Text
    description: str = ""


class Subscribe(BlockFields):
    bulletins: list[Bulletin] = Field(min_length=1)


BLOCK_TYPES: dict[str, type[BlockFields]] = {
    "article": Article,
    "stats": Stats,
    "documents": Documents,
    "briefing": Briefing,
    "callout": Callout,
    "event": Event,
    "feedback": Feedback,
    "subscribe": Subscribe,
}
