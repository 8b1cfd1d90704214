"""Preview a build in a browser: desktop and mobile widths side by side, served on 127.0.0.1 only."""

from __future__ import annotations

import functools
import html
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy.engine import Engine

from bulletin.config import Settings
from bulletin.render.build import BuildResult, build_issue
from bulletin.render.compiled import BlockRef

PREVIEW_FILE = "preview.html"
WIDTHS = (("Desktop", 700), ("Mobile", 375))


def write_preview_page(result: BuildResult) -> Path:
    """preview.html next to email.html: one iframe per width, plus links to the text and web copies."""
    frames = "\n".join(
        f'<figure><figcaption>{label} · {width} px</figcaption>'
        f'<iframe src="email.html" width="{width}" height="1400" title="{label} preview"></iframe></figure>'
        for label, width in WIDTHS
    )
    title = html.escape(result.compiled.subject)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:16px;background:#f4f4f4}}
main{{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}}
iframe{{border:1px solid #bbb;background:#fff}}figure{{margin:0}}</style></head>
<body><h1>{title}</h1>
<p>{result.html_bytes // 1024} KB HTML · <a href="email.txt">plain text</a> · <a href="index.html">web archive page</a></p>
<main>{frames}</main></body></html>
"""
    path = result.folder / PREVIEW_FILE
    path.write_text(page, encoding="utf-8")
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(folder: Path, port: int = 8025) -> ThreadingHTTPServer:
    """An HTTP server for `folder` bound to 127.0.0.1 (port 0 picks a free port)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def prepare_preview(settings: Settings, issue: str, port: int, *, as_address: str | None = None,
                    engine: Engine | None = None) -> tuple[BuildResult, ThreadingHTTPServer]:
    """Build `issue`, write its preview page and bind a server for the build folder.

    With `as_address` (and the engine to find them in) the email files show what
    that subscriber will get: their name and only the blocks meant for them.
    """
    result = build_issue(settings, issue)
    if as_address is not None:
        if engine is None:
            raise ValueError("as_address needs the engine")
        write_as_reader(settings, engine, result, as_address)
    write_preview_page(result)
    return result, make_server(result.folder, port)


def write_as_reader(settings: Settings, engine: Engine, result: BuildResult, address: str) -> tuple[BlockRef, ...]:
    """Overwrite the build's email.html and email.txt with what `address` gets; returns the blocks they see."""
    from dataclasses import replace

    from bulletin.audience.targeting import reader_by_address
    from bulletin.db import session_scope
    from bulletin.render.build import first_sender, preview_recipient

    compiled = result.compiled
    with session_scope(engine) as session:
        reader = reader_by_address(session, address, compiled.lists)
    recipient = replace(preview_recipient(settings, compiled), name=reader.name or "reader")
    filled = compiled.fill(recipient, first_sender(settings, compiled), reader=reader)
    result.email_html.write_text(filled.html, encoding="utf-8")
    result.email_text.write_text(filled.text, encoding="utf-8")
    return compiled.visible_blocks(compiled.choose(reader))
