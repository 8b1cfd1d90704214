"""Markdown bodies: sanitised HTML for the email, and plain text with links spelt out.

Both come from the same markdown-it token stream, so the HTML and text parts
cannot disagree about what a block says. Raw HTML is allowed in Markdown but
passes through nh3, which keeps formatting and drops scripts, styles and
event handlers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bulletin.compose.media import is_local

_md = MarkdownIt("commonmark", {"html": True, "typographer": False}).enable("table")

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "em", "h3", "h4", "hr", "i", "img", "li",
    "ol", "p", "pre", "s", "small", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "u", "ul",
}
_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}, "td": {"align"}, "th": {"align"}}
WIDTH = 72


@dataclass(frozen=True)
class Body:
    html: str
    text: str


ImageResolver = Callable[[str, str, int], "tuple[str, int, int] | None"]


def render_body(source: str, check_link: Callable[[str, int], None],
                resolve_image: ImageResolver | None = None) -> Body:
    """HTML and text of one Markdown body; `check_link(href, line)` vets every link (0-based line).

    `resolve_image(src, alt, line)` turns an image in the issue folder into its
    (published URL, width, height), or None when it is unusable (it reports why).
    """
    tokens = _md.parse(source)
    if resolve_image is not None:
        _resolve_images(tokens, resolve_image)
    html = nh3.clean(_md.renderer.render(tokens, _md.options, {}), tags=_TAGS, attributes=_ATTRS,
                     url_schemes={"http", "https", "mailto"}, link_rel=None)
    return Body(html=html.strip(), text=_to_text(tokens, check_link))


def _resolve_images(tokens: list[Token], resolve_image: ImageResolver) -> None:
    line = 0
    for tok in tokens:
        if tok.map:
            line = tok.map[0]
        for child in tok.children or []:
            src = str(child.attrs.get("src", ""))
            if child.type != "image" or not is_local(src):
                continue
            found = resolve_image(src, child.content, line)
            if found is not None:
                child.attrs["src"], width, height = found
                child.attrs["width"], child.attrs["height"] = str(width), str(height)


def _to_text(tokens: list[Token], check_link: Callable[[str, int], None]) -> str:
    out: list[str] = []
    prefix: list[str] = []
    counters: list[int] = []
    line = 0
    for tok in tokens:
        if tok.map:
            line = tok.map[0]
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            counters.append(0 if tok.type == "bullet_list_open" else 1)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            counters.pop()
        elif tok.type == "list_item_open":
            n = counters[-1]
            prefix.append("- " if n == 0 else f"{n}. ")
            if n:
                counters[-1] += 1
        elif tok.type == "list_item_close":
            prefix.pop()
        elif tok.type == "blockquote_open":
            prefix.append("> ")
        elif tok.type == "blockquote_close":
            prefix.pop()
        elif tok.type == "inline":
            out.append(_wrap(_inline(tok.children or [], lambda h, ln=line: check_link(h, ln)), prefix))
        elif tok.type in ("fence", "code_block"):
            out.append(tok.content.rstrip("\n"))
        elif tok.type == "html_block":
            plain = nh3.clean(tok.content, tags=set()).strip()
            if plain:
                out.append(_wrap(plain, prefix))
        elif tok.type == "hr":
            out.append("-" * 20)
    return "\n\n".join(p for p in out if p).strip()


def _wrap(text: str, prefix: list[str]) -> str:
    first = "".join(prefix)
    rest = "".join(" " * len(p) if p != "> " else p for p in prefix)
    lines = []
    for para_line in text.split("\n"):
        lines.append(textwrap.fill(para_line, WIDTH, initial_indent=first if not lines else rest,
                                   subsequent_indent=rest, break_long_words=False,
                                   break_on_hyphens=False) or first)
    return "\n".join(lines)


def _inline(children: list[Token], check_link: Callable[[str], None]) -> str:
    parts: list[str] = []
    hrefs: list[tuple[str, int]] = []
    for tok in children:
        if tok.type == "text" or tok.type == "code_inline":
            parts.append(tok.content)
        elif tok.type == "softbreak":
            parts.append(" ")
        elif tok.type == "hardbreak":
            parts.append("\n")
        elif tok.type == "link_open":
            href = str(tok.attrs.get("href", ""))
            check_link(href)
            hrefs.append((href, len(parts)))
        elif tok.type == "link_close" and hrefs:
            href, start = hrefs.pop()
            label = "".join(parts[start:]).strip()
            shown = href[7:] if href.startswith("mailto:") else href
            if label != shown:
                parts.append(f" <{shown}>")
        elif tok.type == "image":
            parts.append(f"[{tok.content or 'image'}]")
        elif tok.type == "html_inline":
            parts.append(nh3.clean(tok.content, tags=set()))
    return "".join(parts).strip()
