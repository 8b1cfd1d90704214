"""The Atom 1.0 feed (RFC 4287) of one public list's archive: one entry per sent issue, newest first.

Built with ElementTree so every title and name is escaped; ids are the
archive URLs, which never change once an issue is published.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from bulletin.delivery.archive import ListArchive

ATOM = "http://www.w3.org/2005/Atom"


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def atom_feed(archive: ListArchive, base_url: str, *, fallback_updated: datetime) -> bytes:
    """The feed document; `fallback_updated` stands in for `updated` while the list has no issue yet."""
    ET.register_namespace("", ATOM)
    page = f"{base_url}/archive/{archive.slug}/"
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, "id", page)
    _sub(feed, "title", archive.name)
    if archive.description:
        _sub(feed, "subtitle", archive.description)
    _sub(feed, "updated", _stamp(archive.updated or fallback_updated))
    author = _sub(feed, "author")
    _sub(author, "name", archive.from_name)
    _sub(feed, "link", rel="self", type="application/atom+xml", href=f"{page}feed.xml")
    _sub(feed, "link", rel="alternate", type="text/html", href=page)
    for issue in archive.issues:
        url = f"{base_url}/archive/{issue.slug}/"
        entry = _sub(feed, "entry")
        _sub(entry, "id", url)
        _sub(entry, "title", issue.title)
        _sub(entry, "updated", _stamp(issue.sent_at))
        _sub(entry, "published", _stamp(issue.sent_at))
        _sub(entry, "link", rel="alternate", type="text/html", href=url)
        _sub(entry, "summary", issue.subject)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
