"""The Jinja2 environments and the filters the email templates use.

Both environments are strict (a missing variable is an error, not an empty
string). The HTML one autoescapes; Markdown bodies arrive already sanitised
and are marked safe in the templates.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from bulletin.compose.blocks import Event, Series
from bulletin.compose.issue import Block
from bulletin.render.parts import part_marker

TEXT_WIDTH = 72


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    percent: int


def make_environments(templates: Path) -> tuple[Environment, Environment]:
    """(html, text) environments over one templates folder."""
    loader = FileSystemLoader(str(templates))
    html_env = Environment(loader=loader, undefined=StrictUndefined, autoescape=True)
    text_env = Environment(loader=loader, undefined=StrictUndefined, autoescape=False,
                           trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    for env in (html_env, text_env):
        env.filters.update(longdate=longdate, when=when, bars=bars, wrap=wrap,
                           reply_href=reply_href, reply_subject=reply_subject,
                           signup_url=signup_url, mailto_plain=mailto_plain)
        env.globals["part"] = part_marker
    return html_env, text_env


def longdate(value: dt.date) -> str:
    return f"{value:%A} {value.day} {value:%B %Y}"


def when(event: Event) -> str:
    """Human date of an event; a date-less event is announced later, not left blank."""
    start = event.starts
    if start is None:
        return "date to be announced"
    if not isinstance(start, dt.datetime):
        return longdate(start)
    text = f"{longdate(start.date())}, {start:%H:%M}"
    if event.ends is not None:
        text += f" to {event.ends:%H:%M}" if event.ends.date() == start.date() else f" to {longdate(event.ends.date())}, {event.ends:%H:%M}"
    return text


def bars(series: Series) -> list[Bar]:
    """A bar chart as table widths: no image, so nothing remote and nothing blocked by the client."""
    top = max((p.value for p in series.points), default=0) or 1
    return [Bar(label=p.label, value=f"{p.value:g}", percent=max(1, round(100 * p.value / top)))
            for p in series.points]


def wrap(text: str, prefix: str = "", first: str | None = None) -> str:
    return textwrap.fill(" ".join(text.split()), TEXT_WIDTH, initial_indent=prefix if first is None else first,
                         subsequent_indent=prefix, break_long_words=False, break_on_hyphens=False)


@pass_context
def reply_subject(ctx: Context, block: Block) -> str:
    """`Re: <subject> [<anchor>]`: the inbound stage reads the block back from the brackets."""
    return f"Re: {ctx['issue'].subject} [{block.anchor}]"


@pass_context
def reply_href(ctx: Context, block: Block) -> str:
    subject = quote(reply_subject(ctx, block), safe="")
    return f"mailto:{ctx['slot']['reply_address']}?subject={subject}"


@pass_context
def signup_url(ctx: Context, list_slug: str) -> str:
    return f"{ctx['base_url']}/signup/{list_slug}"


def mailto_plain(url: str) -> str:
    """In plain text a mailto link reads better as the bare address."""
    return url[7:].split("?", 1)[0] if url.startswith("mailto:") else url


def render_context(issue: Any, slot: dict[str, str], base_url: str) -> dict[str, Any]:
    return {"issue": issue, "slot": slot, "base_url": base_url}
