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
from functools import cached_property
from typing import TYPE_CHECKING

from bulletin.render.parts import resolve

if TYPE_CHECKING:
    from bulletin.audience.conditions import Condition, Reader

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

    def marked(self) -> str:
        """Back to one string with the unfilled slots as markers (what `split` read)."""
        out = [self.chunks[0]]
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            out.append(marker(slot))
            out.append(chunk)
        return "".join(out)

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
    """What later stages need to know of a block: its anchor, type, heading and audience ("" = everyone)."""

    anchor: str
    type: str
    heading: str
    audience: str = ""


@dataclass(frozen=True)
class Variant:
    """The templates one combination of visible blocks (bit i: block i) fills."""

    mask: int
    html: Template
    text: Template

    @property
    def templates(self) -> tuple[Template, Template]:
        return self.html, self.text


@dataclass(frozen=True)
class Targeting:
    """The rendered HTML and text with each targeted block's parts still marked (see `parts`)."""

    html: str
    text: str


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
    targeting: Targeting | None = None
    segments: tuple[str, ...] = ()

    def for_sender(self, sender: Sender) -> Compiled:
        """This issue as one list sends it: the footer's sender slots filled, the recipient slots left."""
        values = {s: sender.value(s) for s in LIST_SLOTS}
        targeting = None if self.targeting is None else Targeting(
            html=Template.split(self.targeting.html, escape=True).partial(values).marked(),
            text=Template.split(self.targeting.text, escape=False).partial(values).marked())
        return replace(self, html=self.html.partial(values), text=self.text.partial(values), targeting=targeting)

    def fill(self, recipient: Recipient, sender: Sender | None = None, *, reader: Reader | None = None) -> Filled:
        """One recipient's copy; `sender` is needed unless `for_sender` has already filled those slots.

        With a `reader`, only the blocks meant for them (None: every block).
        """
        done = self.for_sender(sender) if sender is not None else self
        html_t, text_t = (done.html, done.text) if reader is None or done.targeting is None else \
            done.variant(done.choose(reader)).templates
        return Filled(html=html_t.fill(html_t.values_for(recipient)), text=text_t.fill(text_t.values_for(recipient)))

    @property
    def targeted(self) -> bool:
        return self.targeting is not None

    @cached_property
    def _conditions(self) -> tuple[tuple[int, Condition], ...]:
        from bulletin.audience.conditions import parse_condition

        return tuple((1 << i, parse_condition(b.audience)) for i, b in enumerate(self.blocks) if b.audience)

    @cached_property
    def _variants(self) -> dict[tuple[int, bool], Variant]:
        return {}

    def choose(self, reader: Reader) -> int:
        """Bit i set: block i is shown to this reader. Untargeted blocks are always shown."""
        mask = (1 << len(self.blocks)) - 1
        for bit, condition in self._conditions:
            if not condition.matches(reader):
                mask ^= bit
        return mask

    def variant(self, mask: int, *, notes: bool = False) -> Variant:
        """The HTML and text templates of the blocks in `mask`, renumbered; built once per mask."""
        key = (mask, notes)
        found = self._variants.get(key)
        if found is None:
            if self.targeting is None:
                found = Variant(mask, self.html, self.text)
            else:
                visible = tuple(bool(mask >> i & 1) for i in range(len(self.blocks)))
                found = Variant(mask,
                                Template.split(resolve(self.targeting.html, visible, notes=notes), escape=True),
                                Template.split(resolve(self.targeting.text, visible, notes=notes, text=True),
                                               escape=False))
            self._variants[key] = found
        return found

    def visible_blocks(self, mask: int) -> tuple[BlockRef, ...]:
        return tuple(b for i, b in enumerate(self.blocks) if mask >> i & 1)

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
                "blocks": [[b.anchor, b.type, b.heading, b.audience] for b in self.blocks],
                "targeting": None if self.targeting is None else
                {"html": self.targeting.html, "text": self.targeting.text},
                "segments": list(self.segments),
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
            targeting=Targeting(**d["targeting"]) if d.get("targeting") else None,
            segments=tuple(d.get("segments", ())),
        )
