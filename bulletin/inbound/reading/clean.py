"""The visible part of a reply: what the person wrote, without the quoted issue or their signature.

First our own marker pass (`quotes.py`): attributions in eight languages, also
wrapped over two lines, Outlook header blocks, "Original Message" separators,
and bottom-posted or interleaved answers. Then mail-parser-reply, which knows
many more header shapes, and two cheap passes it lacks: trailing `>` quote
blocks and a `-- ` signature delimiter at the end of the first reply.
"""

from __future__ import annotations

import re

from mailparser_reply import EmailReply, EmailReplyParser

from bulletin.inbound.reading.quotes import split_reply

LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "da", "sv", "pl", "cs", "ja"]
_PARSER = EmailReplyParser(languages=LANGUAGES)
_MAX_CHARS = 200_000
_WROTE_RE = re.compile(r"^(?:On|Am|Le|El|Il|Op|Den|Dnia)\s.{0,200}?(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev|napisał)\s*:?\s*$",
                       re.M | re.S | re.I)
_SIGN_OFF_RE = re.compile(
    r"^(?:best(?: wishes| regards)?|kind regards|warm regards|regards|many thanks|thanks(?: again)?|cheers|"
    r"yours(?: sincerely| faithfully)?|all the best|mit freundlichen grüßen|viele grüße|beste grüße|"
    r"cordialement|bien à vous|saludos|un saludo|cordiali saluti|met vriendelijke groet(?:en)?|"
    r"med venlig hilsen|venlig hilsen|hilsen|med vänliga hälsningar|vänliga hälsningar|mvh|pozdrawiam|"
    r"z poważaniem)[,.!]?$", re.I)
_RULE_RE = re.compile(r"^\s*[-_=*]{5,}\s*$")
_BULLET_RE = re.compile(r"^\s*[-*•]\s+\w", re.M)
_SIG_RE = re.compile(r"^(?:-- ?|__+|Sent from my [\w ]+|Sent from \w+ for \w+|Get Outlook for \w+)$", re.M)


def visible_text(text: str) -> str:
    """The new text of a reply, stripped; the whole text when nothing is recognisably quoted."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:_MAX_CHARS]
    answer = split_reply(text)
    if answer is not None:
        text = answer
    try:
        replies = _PARSER.read(text=text).replies
        latest = next((_body(r) for r in replies if r.body.strip()), None)
    except Exception:  # noqa: BLE001 - a parser bug must not lose the reply; fall back to our own pass
        latest = None
    cleaned = _own_pass(latest if latest is not None else text)
    return cleaned or text.strip()


def _body(reply: EmailReply) -> str:
    """The parser's body, unless what it took for a signature is a bullet list: readers write lists."""
    if len(_BULLET_RE.findall(reply.signatures)) >= 2:
        return reply.content
    return reply.body


def _own_pass(text: str) -> str:
    lines = text.split("\n")
    wrote = _WROTE_RE.search(text)
    if wrote:
        lines = text[: wrote.start()].split("\n")
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">") or _RULE_RE.match(lines[-1])):
        lines.pop()
    joined = "\n".join(lines)
    sig = _SIG_RE.search(joined)
    if sig and sig.start() > 0:
        joined = joined[: sig.start()]
    return _drop_sign_off(joined.strip())


def _drop_sign_off(text: str) -> str:
    """`Best wishes,` plus a name or two at the very end is signature, not feedback."""
    lines = text.split("\n")
    for i in range(max(1, len(lines) - 4), len(lines)):
        if _SIGN_OFF_RE.match(lines[i].strip()) and all(len(x) < 60 for x in lines[i + 1:]):
            head = "\n".join(lines[:i]).strip()
            return head or text
    return text
