"""`bulletin new`: an issue folder with one example block of each type, ready to edit.

The scaffold loads and passes the pre-send checks as written, so an editor
starts from something that works and changes it, rather than from a blank page.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

from bulletin.errors import ConfigError, ContentError, StateError

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")

BLOCKS: dict[str, str] = {
    "01-lead-story.md": """---
type: article
heading: Our lead story
quote:
  text: A sentence someone said that sums the story up.
  attribution: Name, role
link:
  label: Read the full story
  url: https://www.example.org/story
---
Write the story here in **Markdown**. Links look like
[this](https://www.example.org/).
""",
    "02-in-numbers.md": """---
type: stats
heading: In numbers
figures:
  - value: "1,234"
    label: people reached
  - value: 56
    label: councils taking part
    note: Up from 40 last year.
series:
  title: Partnerships by region
  points:
    - label: North
      value: 40
    - label: Midlands
      value: 25
    - label: South
      value: 31
source: Where the figures come from
---
One sentence introducing the figures.
""",
    "03-templates-and-tools.md": """---
type: documents
heading: Templates and tools
documents:
  - title: Business case template
    url: https://www.example.org/business-case.docx
    kind: Word document
    description: What it is for, in one line.
---
""",
    "04-reading.md": """---
type: briefing
heading: Reading
papers:
  - publisher: Publisher name
    title: Title of the paper
    summary: Two or three sentences on what the paper says and why it matters.
    url: https://www.example.org/paper
---
""",
    "05-an-offer.md": """---
type: callout
heading: An offer to councils
contact: team@example.org
button:
  label: Get in touch
  url: mailto:team@example.org
---
What we offer, who it is for and how to take it up.
""",
    "06-event.md": """---
type: event
heading: Coming up
title: Name of the event
starts: 2030-01-15T10:00:00
ends: 2030-01-15T16:00:00
place: Venue, town
organisers:
  - Organiser one
link:
  label: Book a place
  url: https://www.example.org/event
---
What happens at the event.
""",
    "07-tell-us.md": """---
type: feedback
heading: We want to hear from you
questions:
  - A question for readers?
button_label: Reply to this bulletin
---
Replies go straight to the team.
""",
}


def new_issue(content_dir: Path, slug: str, *, title: str | None = None, lists: list[str] | None = None,
              subscribers_file: Path | None = None, today: dt.date | None = None) -> Path:
    """Create content_dir/<slug>/ with issue.toml and one block per type; never overwrites.

    The issue goes to `lists`, or else to the first list of `subscribers_file`,
    and its subscribe block offers the workspace's lists: a scaffold names only
    lists that exist, so it passes `bulletin check` as written.
    """
    if not SLUG.match(slug):
        raise ContentError("an issue slug is lower-case letters, digits and dashes", where=slug)
    folder = content_dir / slug
    if folder.exists():
        raise StateError("already exists; pick another slug or edit it", where=str(folder))
    known = _known_lists(subscribers_file)
    lists = lists or list(known)[:1]
    if not lists:
        where = str(subscribers_file) if subscribers_file else "lists.toml"
        raise ConfigError("no list to send the issue to: run `bulletin init` for a workspace with one, "
                          "or pass --list SLUG", where=where)
    meta = (
        f"title = {_toml_str(title or slug.replace('-', ' ').capitalize())}\n"
        f"date = {(today or dt.date.today()).isoformat()}\n"
        'preheader = "One line shown next to the subject in the inbox."\n'
        f"lists = [{', '.join(_toml_str(x) for x in lists)}]\n"
        "# subject = \"Defaults to the title\"\n"
    )
    folder.mkdir(parents=True)
    (folder / "issue.toml").write_text(meta, encoding="utf-8")
    for name, text in {**BLOCKS, "08-subscribe.md": _subscribe_block(known or {x: x for x in lists})}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _known_lists(subscribers_file: Path | None) -> dict[str, str]:
    """slug -> name of the lists in lists.toml, in file order ({} when there is no usable file)."""
    if not (subscribers_file and subscribers_file.is_file()):
        return {}
    try:
        entries = tomllib.loads(subscribers_file.read_text(encoding="utf-8")).get("list", [])
    except tomllib.TOMLDecodeError:
        return {}
    return {str(e["slug"]): str(e.get("name") or e["slug"]) for e in entries if isinstance(e, dict) and "slug" in e}


def _subscribe_block(lists: dict[str, str]) -> str:
    items = "".join(f"  - slug: {slug}\n    title: {_toml_str(name)}\n    description: What it covers.\n"
                    for slug, name in lists.items())
    return f"---\ntype: subscribe\nheading: Our e-bulletins\nbulletins:\n{items}---\n"


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
