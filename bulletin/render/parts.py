"""Conditional parts of a render: targeted blocks are marked once and cut per reader.

The templates wrap each targeted block (its contents line, its section, its
note for the web copy) in part markers, and write each block's number and the
underline of the text heading as markers too. Like slot markers they are
letters and digits only, so Jinja2, MJML and premailer pass them through.
`resolve` turns the marked render into the render of one set of visible
blocks: hidden parts are cut, numbers count only visible blocks. In MJML the
section markers sit in body-level `mj-raw`, which MRML places between the
Outlook tables of neighbouring sections, so a cut never unbalances them.
"""

from __future__ import annotations

import re

PART_KINDS = ("open", "close", "note", "noteend", "num", "dashes")
_MARK = "BULLETINPART"
_PART_RE = re.compile(f"{_MARK}x({'|'.join(PART_KINDS)})x(\\d+)x{_MARK}")


def part_marker(kind: str, index: int) -> str:
    """The marker of part `kind` of block `index` (0-based), for the templates."""
    if kind not in PART_KINDS:
        raise KeyError(f"unknown part {kind!r}")
    return f"{_MARK}x{kind}x{int(index)}x{_MARK}"


def resolve(marked: str, visible: tuple[bool, ...], *, notes: bool = False, text: bool = False) -> str:
    """`marked` with the parts of hidden blocks cut and visible blocks numbered 1, 2, ... in order.

    `notes` keeps each targeted block's note (the web copy says who a block was
    for); `text` also folds the blank lines a cut leaves in the plain-text part.
    """
    numbers: dict[int, int] = {}
    for i, shown in enumerate(visible):
        if shown:
            numbers[i] = len(numbers) + 1
    pieces = _PART_RE.split(marked)
    out = [pieces[0]]
    hiding: int | None = None  # block whose hidden part we are inside
    in_note = False
    for n in range(1, len(pieces), 3):
        kind, index, after = pieces[n], int(pieces[n + 1]), pieces[n + 2]
        if hiding is not None:
            if kind == "close" and index == hiding:
                hiding = None
                out.append(after)
            continue
        if kind == "open" and not (index < len(visible) and visible[index]):
            hiding = index
            continue
        if kind == "note":
            in_note = not notes
        elif kind == "noteend":
            in_note = False
            out.append(after)
            continue
        elif kind == "num":
            out.append(str(numbers.get(index, index + 1)))
        elif kind == "dashes":
            out.append("-" * len(str(numbers.get(index, index + 1))))
        if not in_note:
            out.append(after)
    result = "".join(out)
    if text:
        result = re.sub(r"\n{3,}", "\n\n", result)
    return result
