"""Where the old mail starts in a reply, in the shapes mail clients write in the languages our readers use.

Three markers open the quoted original: an attribution line ("On ... wrote:",
"Am ... schrieb ...:", "Le ... a écrit :", "... пользователь ... написал:",
possibly wrapped over two lines), an Outlook header block ("From:/Sent:/To:/
Subject:" and its translations) and an "-----Original Message-----" separator.
Text above the first marker is the answer (top-posting). When the answer
comes after the quote instead (bottom-posting) or between quoted lines
(interleaving), only the `>` lines and the markers are dropped.
"""

from __future__ import annotations

import re

_VERB_LAST = (r"wrote|a écrit|a ecrit|escribió|escribio|ha scritto|napisał\(a\)|napisała?|pisze|написал\(а\)|написала?"
              r"|schreef|skrev|schrieb|kirjoitti|escreveu|yazdı")
# "On <date>, <name> wrote:" (verb last) ...
_ATTR_VERB_LAST = re.compile(rf"(?:{_VERB_LAST})\s*:\s*$", re.I)
# ... "Am <date> schrieb <name>:" / "Op <date> schreef <name>:" / "Den <date> skrev <name>:" (verb first) ...
_ATTR_VERB_FIRST = re.compile(r"\b(?:schrieb|schreef|skrev|napisał|pisze)\b.{1,160}:\s*$", re.I)
# ... and Gmail's Russian/Ukrainian short form "Ср, 1 июн. 2016 г. в 10:00, <name> <addr>:".
_ATTR_ADDRESS_LAST = re.compile(r"<[^<>\s]+@[^<>\s]+>\)?\s*:\s*$")
_DATE_HINT = re.compile(r"\d{1,2}[:.]\d{2}|\b\d{4}\b|\d{1,2}[./]\d{1,2}[./]\d{2,4}")
_OPENER = re.compile(r"^\s*(?:on|am|le|el|il(?: giorno)?|op|den|w dniu|dnia|em|в|\d)", re.I)

_FROM_LABEL = re.compile(r"^\s*\*?(?:from|von|de|van|od|från|fra|от|da|mittente)\s*\*?\s*:\s*\S", re.I)
_BLOCK_LABEL = re.compile(
    r"^\s*\*?(?:sent|date|to|cc|subject|gesendet|datum|an|betreff|envoyé|à|objet|enviado|fecha|para|asunto"
    r"|verzonden|aan|onderwerp|wysłano|data|do|temat|skickat|till|ämne|sendt|til|emne|отправлено|дата|кому|тема"
    r"|inviato|oggetto|a)\s*\*?\s*:", re.I)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht|message d'origine"
    r"|message original|mensaje original|oorspronkelijk bericht|origineel bericht|wiadomość oryginalna"
    r"|ursprungligt meddelande|oprindelig meddelelse|opprinnelig melding|исходное сообщение|messaggio originale"
    r"|mensagem original|forwarded message|weitergeleitete nachricht|message transféré)\s*-{2,}\s*$", re.I)


def is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def attribution_at(lines: list[str], i: int) -> int:
    """How many lines (1 or 2) the attribution starting at line i takes; 0 when there is none."""
    line = lines[i].strip()
    if not line or is_quoted(line) or len(line) > 300:
        return 0
    if _is_attribution(line):
        return 1
    if i + 1 < len(lines) and lines[i + 1].strip() and not is_quoted(lines[i + 1]) and _OPENER.match(line):
        if _is_attribution(line + " " + lines[i + 1].strip()):
            return 2
    return 0


def _is_attribution(line: str) -> bool:
    # A date or an address must be there: "Here is what I wrote:" is not an attribution.
    if not (_DATE_HINT.search(line) or "@" in line):
        return False
    if _ATTR_VERB_LAST.search(line) or _ATTR_ADDRESS_LAST.search(line):
        return True
    return bool(_ATTR_VERB_FIRST.search(line) and _OPENER.match(line))


def header_block_at(lines: list[str], i: int) -> bool:
    """An Outlook-style "From:" line followed by at least two more header labels within five lines."""
    if not _FROM_LABEL.match(lines[i]):
        return False
    labels = sum(1 for line in lines[i + 1: i + 6] if _BLOCK_LABEL.match(line))
    return labels >= 2


def old_mail_start(lines: list[str]) -> tuple[int, int] | None:
    """(index, length) of the first marker of the quoted original, None when there is none."""
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) or header_block_at(lines, i):
            return i, 1
        span = attribution_at(lines, i)
        if span:
            return i, span
    return None


def split_reply(text: str) -> str | None:
    """The answer part of a reply, None when no marker or quote shape is recognised."""
    lines = text.split("\n")
    start = old_mail_start(lines)
    if start is not None and any(line.strip() and not is_quoted(line) for line in lines[: start[0]]):
        return "\n".join(lines[: start[0]])
    if not _answer_after_quote(lines):
        return None
    drop: set[int] = set()
    i = 0
    while i < len(lines):
        span = attribution_at(lines, i)
        drop.update(range(i, i + span))
        i += max(span, 1)
    kept = [line for j, line in enumerate(lines) if j not in drop and not is_quoted(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() or None


def _answer_after_quote(lines: list[str]) -> bool:
    """Bottom-posted or interleaved: some unquoted text comes after a quoted line."""
    seen_quote = False
    for i, line in enumerate(lines):
        if is_quoted(line):
            seen_quote = True
        elif seen_quote and line.strip() and not attribution_at(lines, i):
            return True
    return False
