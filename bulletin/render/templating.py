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
from typing import Any, Literal
from urllib.parse import quote

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
)
from jinja2.runtime import Context

from bulletin.compose.blocks import Event, Series
from bulletin.compose.issue import Block
from bulletin.config import Settings, default_templates_dir
from bulletin.render.brand import BrandView, brand_view
from bulletin.render.parts import part_marker

TemplateKind = Literal["email", "web"]

TEXT_WIDTH = 72


CURRENCY = "£$€¥"


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    percent: int
    shown: str = ""  # the value with its unit, as a reader writes it: "£1,800k", "45%", "12 staff"


def template_search_path(settings: Settings, kind: TemplateKind) -> list[tuple[str, Path]]:
    """(origin, folder) in the order templates are looked up: the workspace's, then the packaged.

    Email template names carry their `email/` prefix (`email/layout.mjml.j2`), so
    their folders are the templates roots; web pages are named bare (`signup.html`),
    so theirs are the `web/` subfolders.
    """
    sub = "web" if kind == "web" else ""
    own, packaged = settings.templates_path / sub, default_templates_dir() / sub
    if own.resolve() == packaged.resolve():  # the source checkout is its own workspace
        return [("packaged", packaged)]
    return [("workspace", own), ("packaged", packaged)]


def template_loader(settings: Settings, kind: TemplateKind) -> BaseLoader:
    """One loader for email and web alike: each name is taken from the first folder that has it.

    So a team copies only `email/layout.mjml.j2` (or one block template) into its
    workspace and every other template still comes from the package.
    """
    return ChoiceLoader([FileSystemLoader(str(folder)) for _origin, folder in template_search_path(settings, kind)])


def make_environments(settings: Settings, brand: BrandView | None = None) -> tuple[Environment, Environment]:
    """(html, text) environments over the workspace's templates, then the packaged ones.

    `brand` is what the templates see as `brand` (default: the workspace's [brand], unchecked).
    """
    loader = template_loader(settings, "email")
    html_env = Environment(loader=loader, undefined=StrictUndefined, autoescape=True)
    text_env = Environment(loader=loader, undefined=StrictUndefined, autoescape=False,
                           trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    for env in (html_env, text_env):
        env.filters.update(longdate=longdate, when=when, bars=bars, wrap=wrap,
                           reply_href=reply_href, reply_subject=reply_subject,
                           signup_url=signup_url, mailto_plain=mailto_plain)
        env.globals["brand"] = brand or default_brand(settings)
        env.globals["part"] = part_marker
    return html_env, text_env


def default_brand(settings: Settings) -> BrandView:
    """The workspace's [brand] without a list's overrides or a logo: the web pages' look."""
    return brand_view(settings.brand, organisation=settings.organisation, postal_address=settings.postal_address)


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
    return [Bar(label=p.label, value=number(p.value), percent=max(1, round(100 * p.value / top)),
                shown=with_unit(p.value, series.unit)) for p in series.points]


def number(value: float) -> str:
    """1800 -> "1,800", 2.5 -> "2.5": thousands separated, no exponent, no trailing zeros."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def with_unit(value: float, unit: str) -> str:
    """A currency symbol leads ("£k" -> "£1,800k"), "%" follows closely, any other unit after a space."""
    unit = unit.strip()
    if not unit:
        return number(value)
    if unit[0] in CURRENCY:
        return f"{unit[0]}{number(value)}{unit[1:]}"
    if unit == "%":
        return f"{number(value)}%"
    return f"{number(value)} {unit}"


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
