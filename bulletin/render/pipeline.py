"""Issue -> email HTML and text: Jinja2, then MJML, then premailer.

All network is off (ARCHITECTURE invariant 7): MJML gets `fonts={}` and a
font-family in mj-attributes, premailer runs with `allow_network=False`.
premailer drops the doctype, so it is put back; it must also keep the
@media rules (mobile and dark scheme) and the classes they select on.
"""

from __future__ import annotations

import logging
import re

import mjml
from jinja2 import Environment, TemplateError
from premailer import Premailer

from bulletin.compose.issue import Issue
from bulletin.errors import ContentError
from bulletin.render.parts import resolve
from bulletin.render.templating import render_context

DOCTYPE = "<!doctype html>"
LAYOUT_HTML = "email/layout.mjml.j2"
LAYOUT_TEXT = "email/text/layout.txt.j2"


def render_mjml(env: Environment, issue: Issue, slot: dict[str, str], base_url: str) -> str:
    try:
        return env.get_template(LAYOUT_HTML).render(render_context(issue, slot, base_url))
    except TemplateError as exc:
        raise ContentError(f"template error: {exc}", where=LAYOUT_HTML) from None


def mjml_to_html(source: str) -> str:
    try:
        return mjml.mjml2html(source, fonts={}, disable_comments=True)
    except Exception as exc:  # noqa: BLE001 - MRML raises its own types; the message names the tag
        raise ContentError(f"MJML could not render the issue: {exc}", where=LAYOUT_HTML) from None


def inline_css(html: str) -> str:
    inlined = Premailer(
        html,
        allow_network=False,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        disable_basic_attributes=["width", "height"],  # keep an image's pixel width attribute (Outlook reads it)
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    inlined = re.sub(r"^\s*<!doctype[^>]*>\s*", "", inlined, flags=re.I)
    return f"{DOCTYPE}\n{inlined}"


def render_html(env: Environment, issue: Issue, slot: dict[str, str], base_url: str, *, marked: bool = False) -> str:
    """The full email HTML for one set of slot values (markers or one recipient's values).

    `marked` keeps the part markers of targeted blocks and block numbers (see
    `parts`) for `Compiled`; otherwise every block is shown.
    """
    out = inline_css(mjml_to_html(render_mjml(env, issue, slot, base_url)))
    return out if marked else resolve(out, tuple(True for _ in issue.blocks))


def render_text(env: Environment, issue: Issue, slot: dict[str, str], base_url: str, *, marked: bool = False) -> str:
    try:
        text = env.get_template(LAYOUT_TEXT).render(render_context(issue, slot, base_url))
    except TemplateError as exc:
        raise ContentError(f"template error: {exc}", where=LAYOUT_TEXT) from None
    text = re.sub(r"(?m)^(?!-- $)(.*?)[ \t]+$", r"\1", text)  # keeps the "-- " signature delimiter
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return text if marked else resolve(text, tuple(True for _ in issue.blocks), text=True)
