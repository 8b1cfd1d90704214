"""The rendered issue with per-recipient slots.

Rendering (Jinja2, MJML, premailer) runs once per issue. Each per-recipient
value is left as a marker that survives all three tools, and the result is
split at the markers into literal chunks. `fill` then costs one string join per
part, which is what lets a send fill tens of thousands of recipients a second.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field, replace

SLOTS: tuple[str, ...] = ("name", "unsubscribe_url", "preferences_url", "view_online_url", "reply_address")
# Filled once per list (an issue can go to several lists), before any recipient: see `Compiled.for_sender`.
LIST_SLOTS: tuple[str, ...] = ("organisation", "list_name", "postal_address")

_MARK = "BULLETINSLOT"


def marker(slot: str) -> str:
    """A token of letters and underscores only, so MJML, premailer and URL encoders leave it alone."""
    if slot not in SLOTS and slot not in LIST_SLOTS:
        raise KeyError(f"unknown slot {slot!r}")
    return f"{_MARK}x{slot}x{_MARK}"


_MARKER_RE = re.compile(f"{_MARK}x({'|'.join(SLOTS + LIST_SLOTS)})x{_MARK}")


@dataclass(frozen=True)
class Sender:
    """Who sends one list (lists.toml, with bulletin.toml's defaults): what the footers must name."""

    organisation: str
    list_name: str
    postal_address: str

    def value(self, slot: str) -> str:
        return getattr(self, slot)


@dataclass(frozen=True)
class Recipient:
    """What a fill needs to know about one recipient; all values already safe for headers."""

    name: str
    unsubscribe_url: str
    preferences_url: str
    view_online_url: str
    reply_address: str

    def value(self, slot: str) -> str:
        return getattr(self, slot)


@dataclass(frozen=True)
class Template:
    """Literal chunks around slots: `chunks[0] slot[0] chunks[1] ... chunks[-1]`."""

    chunks: tuple[str, ...]
    slots: tuple[str, ...]
    escape: bool

    @classmethod
    def split(cls, text: str, *, escape: bool) -> Template:
        parts = _MARKER_RE.split(text)
        return cls(chunks=tuple(parts[0::2]), slots=tuple(parts[1::2]), escape=escape)

    def partial(self, values: dict[str, str]) -> Template:
        """The same template with the slots named in `values` filled in (escaped as the part needs)."""
        chunks, slots = [self.chunks[0]], []
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            if slot in values:
                value = html.escape(values[slot], quote=True) if self.escape else values[slot]
                chunks[-1] += value + chunk
            else:
                slots.append(slot)
                chunks.append(chunk)
        return Template(chunks=tuple(chunks), slots=tuple(slots), escape=self.escape)

    def fill(self, values: dict[str, str]) -> str:
        out = [self.chunks[0]]
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            out.append(values[slot])
            out.append(chunk)
        return "".join(out)

    def values_for(self, recipient: Recipient) -> dict[str, str]:
        if self.escape:
            return {s: html.escape(recipient.value(s), quote=True) for s in SLOTS}
        return {s: recipient.value(s) for s in SLOTS}


@dataclass(frozen=True)
class BlockRef:
    """What later stages need to know of a block: its anchor, type and heading."""

    anchor: str
    type: str
    heading: str


@dataclass(frozen=True)
class Filled:
    html: str
    text: str


@dataclass(frozen=True)
class Compiled:
    """One issue, rendered once; `fill` per recipient."""

    slug: str
    title: str
    subject: str
    preheader: str
    issue_date: str
    lists: tuple[str, ...]
    html: Template
    text: Template
    web_html: str
    blocks: tuple[BlockRef, ...] = field(default=())

    def for_sender(self, sender: Sender) -> Compiled:
        """This issue as one list sends it: the footer's sender slots filled, the recipient slots left."""
        values = {s: sender.value(s) for s in LIST_SLOTS}
        return replace(self, html=self.html.partial(values), text=self.text.partial(values))

    def fill(self, recipient: Recipient, sender: Sender | None = None) -> Filled:
        """One recipient's copy; `sender` is needed unless `for_sender` has already filled those slots."""
        done = self.for_sender(sender) if sender is not None else self
        return Filled(
            html=done.html.fill(done.html.values_for(recipient)),
            text=done.text.fill(done.text.values_for(recipient)),
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "slug": self.slug,
                "title": self.title,
                "subject": self.subject,
                "preheader": self.preheader,
                "issue_date": self.issue_date,
                "lists": list(self.lists),
                "html": {"chunks": list(self.html.chunks), "slots": list(self.html.slots)},
                "text": {"chunks": list(self.text.chunks), "slots": list(self.text.slots)},
                "web_html": self.web_html,
                "blocks": [[b.anchor, b.type, b.heading] for b in self.blocks],
            }
        )

    @classmethod
    def from_json(cls, data: str) -> Compiled:
        d = json.loads(data)
        return cls(
            slug=d["slug"],
            title=d["title"],
            subject=d["subject"],
            preheader=d["preheader"],
            issue_date=d["issue_date"],
            lists=tuple(d["lists"]),
            html=Template(tuple(d["html"]["chunks"]), tuple(d["html"]["slots"]), escape=True),
            text=Template(tuple(d["text"]["chunks"]), tuple(d["text"]["slots"]), escape=False),
            web_html=d["web_html"],
            blocks=tuple(BlockRef(*b) for b in d["blocks"]),
        )
