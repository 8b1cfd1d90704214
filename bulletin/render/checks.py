"""Pre-send checks of a `Compiled` issue: what would embarrass us in 30,000 inboxes.

The checks run on the issue filled with long, realistic slot values, so the
size limit is measured on what a recipient actually gets. The send stage calls
`check_compiled` before it queues anything; `bulletin check` prints the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from bulletin.compose import Issue
from bulletin.config import Settings
from bulletin.render.compiled import Compiled, Recipient, Sender

GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARNING_BYTES = 90 * 1024
TOP_ANCHOR = "top"

PROBE = Recipient(
    name="Alexandra Fitzgerald-Montgomery",
    unsubscribe_url="https://bulletin.example.org/unsubscribe/" + "x" * 120,
    preferences_url="https://bulletin.example.org/preferences/" + "x" * 80,
    view_online_url="https://bulletin.example.org/archive/issue-slug-of-some-length/",
    reply_address="reply+" + "x" * 40 + "@bulletin.example.org",
)

PROBE_SENDER = Sender(
    organisation="The Northshire and Wellsbury Councils' Shared Services Partnership",
    list_name="Shared Services and Digital Transformation e-bulletin",
    postal_address="Partnership Office, Floor 3, 14 Guildhall Walk, Wellsbury, WB1 4QT, United Kingdom",
)


@dataclass
class CheckReport:
    """Errors stop a send; warnings are shown and left to the editor."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    html_bytes: int = 0
    text_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "errors": self.errors, "warnings": self.warnings,
                "html_bytes": self.html_bytes, "text_bytes": self.text_bytes}


class _Scan(HTMLParser):
    """Ids, links and images of one HTML document, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.names: set[str] = set()  # <a name="...">: the only in-email target Gmail, Outlook and Yahoo follow
        self.hrefs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.events: list[tuple[str, str]] = []  # ("id", value) / ("href", value) in document order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
            self.events.append(("id", str(a["id"])))
        if tag == "a" and a.get("name"):
            self.names.add(str(a["name"]))
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(str(a["href"]))
            self.events.append(("href", str(a["href"])))
        if tag == "img":
            self.images.append(a)


def check_compiled(compiled: Compiled) -> CheckReport:
    """Run every pre-send check on `compiled`; never raises for content problems."""
    filled = compiled.fill(PROBE, PROBE_SENDER)
    report = CheckReport(html_bytes=len(filled.html.encode()), text_bytes=len(filled.text.encode()))
    scan = _Scan()
    scan.feed(filled.html)
    _check_slots(compiled, report)
    _check_anchors(compiled, scan, report)
    _check_images(scan, report)
    _check_links(scan, report)
    _check_size(report)
    _check_text(compiled, filled.text, report)
    if not compiled.preheader.strip():
        report.warnings.append("no preheader: clients will show the first words of the email instead")
    return report


def _check_slots(compiled: Compiled, report: CheckReport) -> None:
    for part, template in (("HTML", compiled.html), ("text", compiled.text)):
        if "unsubscribe_url" not in template.slots:
            report.errors.append(f"{part} part has no unsubscribe link (unsubscribe_url slot)")
        if "preferences_url" not in template.slots:
            report.warnings.append(f"{part} part has no preferences link (preferences_url slot)")
    if "view_online_url" not in compiled.html.slots:
        report.warnings.append("HTML part has no view-online link (view_online_url slot)")


def _check_anchors(compiled: Compiled, scan: _Scan, report: CheckReport) -> None:
    ids = set(scan.ids)
    for dup in sorted({i for i in scan.ids if scan.ids.count(i) > 1}):
        report.errors.append(f"id {dup!r} is used more than once: in-page links are ambiguous")
    for href in dict.fromkeys(h for h in scan.hrefs if h.startswith("#")):
        if href[1:] not in ids:
            report.errors.append(f"in-page link {href!r} has no target with that id")
        if href[1:] not in scan.names:
            report.errors.append(f"in-page link {href!r} has no <a name={href[1:]!r}>: "
                                 "Gmail, Outlook and Yahoo will not follow it")
    if TOP_ANCHOR not in ids:
        report.errors.append(f"no element with id {TOP_ANCHOR!r}: 'Back to top' links go nowhere")
    elif TOP_ANCHOR not in scan.names:
        report.errors.append(f"no <a name={TOP_ANCHOR!r}>: 'Back to top' links go nowhere in Gmail and Outlook")
    contents = {h[1:] for h in scan.hrefs if h.startswith("#")}
    for block in compiled.blocks:
        if block.anchor not in ids:
            report.errors.append(f"block {block.anchor!r} has no element with its id")
        elif block.anchor not in contents:
            report.errors.append(f"block {block.anchor!r} is not linked from the contents")
    for anchor in _blocks_without_back_link(compiled, scan):
        report.errors.append(f"block {anchor!r} does not end with a 'Back to top' link")


def _blocks_without_back_link(compiled: Compiled, scan: _Scan) -> list[str]:
    """A block is the stretch from its id to the next block id; it must link to #top."""
    anchors = {b.anchor for b in compiled.blocks}
    missing: list[str] = []
    current: str | None = None
    found = False
    for kind, value in scan.events + [("id", "\0end")]:
        if kind == "id" and (value in anchors or value == "\0end" or value == "footer"):
            if current is not None and not found:
                missing.append(current)
            current, found = (value if value in anchors else None), False
        elif kind == "href" and value == f"#{TOP_ANCHOR}":
            found = True
    return missing


def _check_images(scan: _Scan, report: CheckReport) -> None:
    for img in scan.images:
        src = img.get("src") or "(no src)"
        if not (img.get("alt") or "").strip():
            report.errors.append(f"image {src[:80]} has no alt text")
        if src.startswith("http://"):
            report.warnings.append(f"image {src[:80]} is loaded over plain http")


def _check_links(scan: _Scan, report: CheckReport) -> None:
    for href in scan.hrefs:
        if href.startswith("#"):
            continue
        problem = link_problem(href)
        if problem:
            report.errors.append(f"link {href[:100]!r}: {problem}")
        elif href.startswith("http://") and not re.match(r"http://(127\.0\.0\.1|localhost)", href):
            report.warnings.append(f"link {href[:100]!r} is plain http")


def link_problem(href: str) -> str | None:
    """Why `href` would not work in a mail client, or None."""
    if not href.strip():
        return "empty link"
    if re.search(r"\s", href):
        return "contains spaces"
    parts = urlsplit(href)
    if parts.scheme == "mailto":
        return None if re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", parts.path) else "mailto without a valid address"
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http, https or mailto"
    host = parts.hostname
    if not host:
        return "no host name"
    if "." not in host and host != "localhost":
        return f"host {host!r} is not a full domain name"
    return None


def _check_size(report: CheckReport) -> None:
    kb = report.html_bytes / 1024
    if report.html_bytes > GMAIL_CLIP_BYTES:
        report.errors.append(f"HTML is {kb:.1f} KB: Gmail clips messages over 102 KB")
    elif report.html_bytes > SIZE_WARNING_BYTES:
        report.warnings.append(f"HTML is {kb:.1f} KB, close to Gmail's 102 KB clipping limit")


def _check_text(compiled: Compiled, text: str, report: CheckReport) -> None:
    if not text.strip():
        report.errors.append("plain-text part is empty")
        return
    for block in compiled.blocks:
        if block.heading not in text:
            report.errors.append(f"plain-text part lacks the heading of block {block.anchor!r}")


def check_issue(settings: Settings, issue: str,
                engine_for_targeting: Callable[[], Engine] | None = None) -> CheckReport:
    """Compile `issue` and check it: what `bulletin check` runs.

    Beyond the compiled email it checks the workspace around it: the lists the
    issue names and the subscribe block offers must exist in lists.toml, and the
    public URL must be one readers can reach. For an issue with targeted blocks,
    `engine_for_targeting` gives the database to count who each block reaches
    (only then is it opened).
    """
    from bulletin.compose import load_issue
    from bulletin.render.build import compile_issue, issue_folder
    from bulletin.render.sender import sender_for_list

    compiled = compile_issue(settings, issue)
    report = check_compiled(compiled)
    if compiled.targeted and engine_for_targeting is not None:
        report.warnings.extend(audience_warnings(engine_for_targeting(), compiled))
    for slug in compiled.lists:
        if not sender_for_list(settings, slug).postal_address:
            report.errors.append(f"list {slug!r} has no postal address: set postal_address in lists.toml "
                                 "or in bulletin.toml (CAN-SPAM requires one in every footer)")
    _check_lists(settings, load_issue(issue_folder(settings, issue)), report)
    _check_public_url(settings.public_base_url, report)
    return report


def _check_lists(settings: Settings, issue: Issue, report: CheckReport) -> None:
    from bulletin.audience.lists import lists_file, load_lists

    path = lists_file(settings.path(settings.subscribers_dir))
    if not path.is_file():
        report.warnings.append(f"no {path}: the lists the issue names cannot be checked")
        return
    known = {spec.slug for spec in load_lists(path)}
    for slug in issue.lists:
        if slug not in known:
            report.errors.append(f"{issue.folder / 'issue.toml'}: list {slug!r} does not exist in {path.name} "
                                 f"(known: {', '.join(sorted(known))})")
    for block in issue.blocks:
        for offered in getattr(block.fields, "bulletins", None) or []:
            if offered.slug not in known:
                report.errors.append(f"{block.source}: subscribe block offers list {offered.slug!r}, "
                                     f"which does not exist in {path.name}")


def _check_public_url(url: str, report: CheckReport) -> None:
    host = urlsplit(url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost"):
        report.warnings.append(f"public_base_url {url} points at this machine: readers' links and images "
                               "will not load; set it to the public https address of `bulletin serve`")
    elif not url.startswith("https://"):
        report.warnings.append(f"public_base_url {url} is not https: mail clients may block its images "
                               "and readers' links are not private")


def audience_warnings(engine: Engine, compiled: Compiled) -> list[str]:
    """A targeted block that matches nobody on the issue's lists is probably a typo in its condition."""
    from bulletin.audience.targeting import block_reach
    from bulletin.db import session_scope

    audiences = {b.anchor: b.audience for b in compiled.blocks if b.audience}
    with session_scope(engine) as session:
        reach = block_reach(session, audiences, compiled.lists)
    return [f"block {anchor!r} is for readers where {audiences[anchor]}, which matches nobody on "
            f"{', '.join(compiled.lists)}" for anchor, n in reach.items() if n == 0]
