"""Compile an issue once into a `Compiled`, and write its build folder.

The templates run with a marker in every per-recipient slot; the finished HTML
and text are split at the markers, so a send fills recipients by joining
strings. `build_issue` renders everything in memory before it writes a byte,
so a content error leaves the previous build untouched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from bulletin.compose import Issue, load_issue
from bulletin.config import Settings
from bulletin.errors import ContentError
from bulletin.render.brand import BrandView
from bulletin.render.compiled import (
    LIST_SLOTS,
    SLOTS,
    BlockRef,
    Compiled,
    Recipient,
    Sender,
    Targeting,
    Template,
    marker,
)
from bulletin.render.media import issue_brand, media_url, publish_media
from bulletin.render.parts import part_marker, resolve
from bulletin.render.pipeline import render_html, render_text
from bulletin.render.sender import sender_for_list
from bulletin.render.templating import make_environments


@dataclass(frozen=True)
class BuildResult:
    """What `bulletin build` wrote and how big it is."""

    compiled: Compiled
    folder: Path
    email_html: Path
    email_text: Path
    index_html: Path
    html_bytes: int
    text_bytes: int


def issue_folder(settings: Settings, issue: str) -> Path:
    """An issue is a slug under content_dir, or a path to a folder holding issue.toml."""
    as_path = Path(issue)
    if (as_path / "issue.toml").is_file():
        return as_path.resolve()
    by_slug = settings.path(settings.content_dir) / issue
    if (by_slug / "issue.toml").is_file():
        return by_slug
    raise ContentError(f"no issue {issue!r}: neither a folder with issue.toml nor a slug under {by_slug.parent}",
                       where=issue)


def compile_issue(settings: Settings, issue: str) -> Compiled:
    """Load and render `issue` once; raises ContentError naming file, line and field.

    Its images (and the brand's logo) are published to build/<slug>/media/ once
    the render has succeeded, so whatever sends or checks this issue links to files
    that exist; they are named by content, so publishing again changes nothing.
    """
    folder = issue_folder(settings, issue)
    loaded = load_issue(folder, media_url=media_url(settings, folder.name))
    brand, logo = issue_brand(settings, loaded)
    compiled = compile_loaded(settings, loaded, brand)
    publish_media(settings, loaded.slug, loaded.media + logo)
    return compiled


def compile_loaded(settings: Settings, issue: Issue, brand: BrandView | None = None) -> Compiled:
    html_env, text_env = make_environments(settings, brand or issue_brand(settings, issue)[0])
    slots = {s: marker(s) for s in SLOTS + LIST_SLOTS}
    base = settings.public_base_url
    marked_html = render_html(html_env, issue, slots, base, marked=True)
    marked_text = render_text(text_env, issue, slots, base, marked=True)
    every = tuple(True for _ in issue.blocks)
    targeting = None
    if any(b.audience for b in issue.blocks):
        if part_marker("open", 0)[:12] not in marked_html or part_marker("open", 0)[:12] not in marked_text:
            raise ContentError("the issue has blocks with an audience, but the workspace's email templates do not "
                               "mark them (compare with the shipped templates/email/layout.*)",
                               where=str(settings.templates_path))
        targeting = Targeting(html=marked_html, text=marked_text)
    compiled = Compiled(
        slug=issue.slug,
        title=issue.title,
        subject=issue.subject,
        preheader=issue.preheader,
        issue_date=issue.date.isoformat(),
        lists=issue.lists,
        html=Template.split(resolve(marked_html, every), escape=True),
        text=Template.split(resolve(marked_text, every, text=True), escape=False),
        web_html="",
        blocks=tuple(BlockRef(b.anchor, b.type, b.heading, b.audience) for b in issue.blocks),
        targeting=targeting,
        segments=issue.segments,
    )
    web = compiled.for_sender(first_sender(settings, compiled)).variant((1 << len(issue.blocks)) - 1, notes=True)
    archive = archive_recipient(settings, compiled)
    return replace(compiled, web_html=web_page(web.html.fill(web.html.values_for(archive))))


def web_page(email_html: str) -> str:
    """The archive page is the email with a `<main>` landmark round the body, for screen readers."""
    body = re.search(r"<body\b[^>]*>", email_html)
    end = email_html.rfind("</body>")
    if body is None or end < body.end():
        return email_html
    return f"{email_html[:body.end()]}\n<main>{email_html[body.end():end]}</main>\n{email_html[end:]}"


def first_sender(settings: Settings, compiled: Compiled) -> Sender:
    """The web copy and the build's files show the footer of the issue's first list."""
    return sender_for_list(settings, compiled.lists[0] if compiled.lists else "")


def archive_recipient(settings: Settings, compiled: Compiled) -> Recipient:
    """Slot values of the public web copy: no personal tokens, subscription links go to signup."""
    base = settings.public_base_url
    signup = f"{base}/signup/{compiled.lists[0]}" if compiled.lists else f"{base}/signup"
    return Recipient(
        name="reader",
        unsubscribe_url=signup,
        preferences_url=signup,
        view_online_url=f"{base}/archive/{compiled.slug}/",
        reply_address=f"{settings.reply_local}@{settings.sending_domain}",
    )


def preview_recipient(settings: Settings, compiled: Compiled) -> Recipient:
    """Plausible values for the build's email files, so an editor sees real-looking links."""
    base = settings.public_base_url
    return Recipient(
        name="Sample Reader",
        unsubscribe_url=f"{base}/unsubscribe/preview-token",
        preferences_url=f"{base}/preferences/preview-token",
        view_online_url=f"{base}/archive/{compiled.slug}/",
        reply_address=f"{settings.reply_local}+preview@{settings.sending_domain}",
    )


def build_issue(settings: Settings, issue: str) -> BuildResult:
    """Render `issue` and write build/<slug>/{email.html,email.txt,index.html} (and compiled.json)."""
    compiled = compile_issue(settings, issue)
    filled = compiled.fill(preview_recipient(settings, compiled), first_sender(settings, compiled))
    folder = settings.path(settings.build_dir) / compiled.slug
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "email.html": filled.html,
        "email.txt": filled.text,
        "index.html": compiled.web_html,
        "compiled.json": compiled.to_json(),
    }
    for name, content in files.items():
        _write_atomic(folder / name, content)
    return BuildResult(
        compiled=compiled,
        folder=folder,
        email_html=folder / "email.html",
        email_text=folder / "email.txt",
        index_html=folder / "index.html",
        html_bytes=len(filled.html.encode()),
        text_bytes=len(filled.text.encode()),
    )


def _write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)
