"""Free-text bounces by MTA family: how qmail, Exim, Sendmail, Exchange, Domino and friends word a failure.

Servers that predate RFC 3464 (or ignore it) still say the same few things: a
fixed opening sentence, a lead-in such as "The following addresses had
permanent fatal errors", then the failed addresses one per line, and words that
tell a retry from a rejection. This module knows those shapes by family and
language, so a bounce is read from its wording rather than from one server's
exact layout. Nothing here decides whether a message *is* a bounce on its own:
`bounce_text.looks_like_bounce` still wants a machine sign as well.
"""

from __future__ import annotations

import email
import re
from email.message import Message

from bulletin.inbound.reading.parse import part_text
from bulletin.inbound.reading.reports import (
    ORIGINAL_TYPES,
    BounceRecipient,
    bare_address,
    status_code,
    typed_parts,
)

# Opening sentences that only a mail server writes, by family.
_FAMILY_OPENINGS = [
    r"this is the qmail-send program", r"i'm afraid i wasn't able to deliver your message",  # qmail
    r"this message was created automatically by mail delivery software",  # Exim
    r"the following addresses had (?:permanent fatal|transient non-fatal) errors",  # Sendmail, AOL
    r"the original message was received at", r"-+ ?transcript of session follows ?-+",  # Sendmail
    r"this is the (?:mail system|postfix program) at host",  # Postfix
    r"delivery has failed to these recipients or (?:groups|distribution lists)",  # Exchange / Office 365
    r"your message (?:couldn't|could not|wasn't|was not) (?:be )?delivered",
    r"did not reach the following recipient", r"your message did not reach some or all of the intended recipients",
    r"die zustellung an folgende empfänger(?: oder gruppen)? ist fehlgeschlagen",  # Exchange, German
    r"ihre nachricht (?:konnte nicht|hat einige oder alle empfänger nicht erreicht)",
    r"la remise aux destinataires ou groupes suivants a échoué",  # French
    r"votre message n'a pas pu être remis", r"impossible de remettre",
    r"error en la entrega a estos destinatarios o grupos", r"no se pudo entregar el mensaje",  # Spanish
    r"bezorging is mislukt voor deze ontvangers of groepen", r"kan niet worden bezorgd",  # Dutch
    r"recapito non riuscito ai destinatari o gruppi seguenti", r"impossibile recapitare",  # Italian
    r"dostarczenie do tych adresatów lub grup nie powiodło się",  # Polish
    r"leverans till följande mottagare eller grupper misslyckades",  # Swedish
    r"falha na entrega para estes destinatários ou grupos",  # Portuguese
    r"-+ ?failure reasons ?-+", r"your message was not delivered to",  # Lotus Notes / Domino
    r"the message that you sent was undeliverable to the following",  # GroupWise / Novell
    r"the message that you sent was not delivered",
    r"sorry, we were unable to deliver your message to the following address",  # Yahoo
    r"your mail to the following recipients could not be delivered",  # AOL
    r"delivery to the following recipients? (?:failed|has been delayed)",  # Hotmail, Gmail
    r"this is an automatically generated delivery status notification",
    r"there was an error delivering your mail to",  # DragonFly
    r"could not be delivered to:", r"message could not be delivered to mobile",  # KDDI, MMS gateways
    r"the following addresses had delivery errors",  # Mail2000
    r"your message cannot be delivered to the following recipients",  # PMDF / Messaging Server
    r"error: invalid user address", r"requested action not taken: no such user",  # vtext, James
    r"a message is delayed for more than", r"your mail could not be delivered",  # OpenSMTPD
    r"an error occurred while trying to deliver the mail to the following recipients",  # WorkMail
    r"each of the following recipients was rejected by a remote mail server",
]
# The patterns below that read words are compiled without re.I and matched against text lowercased once:
# re.I makes the engine try both cases at every position of a long notice, several times slower.
FAMILY_RE = re.compile("|".join(_FAMILY_OPENINGS))  # for lowercased text

# Lines that introduce the list of failed addresses (the addresses follow on the next lines).
_LEAD_RE = re.compile(
    r"following (?:address(?:\(es\)|es)?|recipients?(?:\(s\))?)(?: had [\w -]+ errors| failed| failed permanently"
    r"| has been delayed| or groups| or distribution lists)?\s*[.:-]*\s*$|to the following\s*:\s*$"
    r"|fehlgeschlagen:?\s*$|a échoué\s*:?\s*$|grupos:?\s*$|groepen:?\s*$|gruppi seguenti:?\s*$"
    r"|nie powiodło się:?\s*$|misslyckades:?\s*$|failure reasons|recipients?:?\s*$|list of recipients:?\s*$")
_ADDR_RE = re.compile(r"[A-Za-z0-9._%+=/'!#$&*?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_RCPT_RE = re.compile(r"rcpt to:\s*<?([^\s<>]+@[^\s<>]+)>?")
# qmail / Postfix "<addr>: host said ...", Sendmail "550 <addr>... User unknown".
_SAID_RE = re.compile(r"^\s*(?:<([^\s<>]+@[^\s<>]+)>\s*:|[45]\d\d <([^\s<>]+@[^\s<>]+)>\.\.\.)")
_INLINE_RE = re.compile(r"(?:could not be delivered to|error delivering your mail to|recipient address)"
                        r"\s*:?\s*<?([^\s<>]+@[^\s<>]+?)>?[.,]?(?:\s|$)")
_END_RE = re.compile(r"^\s*-{2,}.*(?:copy of|below this line|returned message|unsent message|original message)"
                     r"|^-+ ?original message|^\s*original message:?\s*$")

# A word boundary is checked after the word (`delayed(?<=\bdelayed)`): an alternative that starts with \b
# stops the engine from skipping ahead to the letters the alternatives start with, 4x slower on a long notice.
_TRANSIENT_RE = re.compile(
    r"delayed(?<=\bdelayed)\b|will (?:continue to )?(?:be )?retr(?:y|ied)|still (?:trying|being retried)|has not yet been delivered"
    r"|warning message only|do not need to re-?send|only a temporary failure|temporary (?:failure|error|problem)"
    r"|temporarily|transient non-fatal|deferred(?<=\bdeferred)\b|try again later|please try later|essayer plus tard"
    r"|vorübergehend|temporairement|temporalmente|tijdelijk")
_PERMANENT_RE = re.compile(
    r"permanent(?:ly)?\b|fatal error|giving up|given up|gave up|will not (?:try|retry|be retried)|won't be retried"
    r"|mailbox (?:is )?full|over quota|quota exceeded|failure reasons|no mx record|(?:doesn't|does not) have an? \S+ account"
    r"|(?:disabled|discontinued|deactivated|suspended)\b|mailbox not found"
    r"|user unknown|unknown user|no such (?:user|mailbox|recipient|address)|does not exist|doesn't exist"
    r"|invalid (?:user|recipient|address|mailbox)|address rejected|not a valid"
    r"|(?:user|recipient|address|mailbox) not found"
    r"|not (?:listed|found) in|name is not recognized|mailbox unavailable|account (?:is )?disabled"
    r"|rejected by|was rejected|rejected(?<=\brejected)\b|refused|unrouteable|host not found|domain not found"
    r"|existiert nicht|unbekannt|n'existe pas|inconnu|no existe|bestaat niet|nie istnieje|finns inte")


def report_text(msg: Message) -> str:
    """The text a server wrote, from every part except a returned original; broken MIME read as text.

    A multipart whose boundary does not match its parts parses as one string:
    its text is read whole, since the notice is in there somewhere.
    """
    chunks: list[str] = []
    _collect(msg, chunks)
    return "\n".join(chunks).replace("\r\n", "\n").replace("\r", "\n")


def _collect(part: Message, chunks: list[str]) -> None:
    ctype = part.get_content_type()
    if ctype in ORIGINAL_TYPES:
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                if ctype in ("message/delivery-status", "message/global-delivery-status"):
                    chunks.append("".join(f"{k}: {v}\n" for k, v in sub.items()))
                else:
                    _collect(sub, chunks)
        return
    if ctype.startswith(("text/", "multipart/", "message/")) or ctype == "application/octet-stream":
        text = part_text(part)
        chunks.append(_html_free(text) if ctype == "text/html" else text)


def _html_free(markup: str) -> str:
    from bulletin.inbound.reading.parse import html_to_text

    return html_to_text(markup)


def text_dsn_recipients(text: str) -> list[BounceRecipient]:
    """RFC 3464 per-recipient fields written into plain text (broken MIME, or a server that inlines them)."""
    out: list[BounceRecipient] = []
    if "final-recipient" not in text.lower():  # most notices: no block to split and look at
        return out
    lines = [ln for ln in text.split("\n") if not ln.lstrip().startswith(">")]
    for block in re.split(r"\n\s*\n", "\n".join(lines)):
        if not re.search(r"^final-recipient\s*:", block, re.I | re.M):
            continue
        start = re.search(r"^[A-Za-z-]+\s*:", block, re.M)
        fields = email.message_from_string(block[start.start():] if start else block)
        rcpt = bare_address((fields.get("Final-Recipient") or "").split(";")[-1])
        action = (fields.get("Action") or "").strip().lower()
        diagnostic = " ".join(str(fields.get("Diagnostic-Code") or "").split())
        status = status_code(str(fields.get("Status") or "")) or status_code(diagnostic)
        if not rcpt or action in ("delivered", "relayed", "expanded") or status.startswith("2"):
            continue
        if rcpt in {b.address for b in out}:
            continue
        permanent = status.startswith("5") if status else action == "failed"
        out.append(BounceRecipient(rcpt, permanent, status, diagnostic[:500]))
    return out


def family_recipients(text: str) -> list[str]:
    """Failed addresses where the families put them: after a lead-in, in `<addr>:` lines, in `RCPT TO:`.

    Read in lowercase throughout (addresses come out lowercased anyway).
    """
    text = text.lower()
    found: list[str] = []
    lines = text.split("\n")
    listing = 0
    for line in lines:
        if _END_RE.match(line):  # every alternative starts at ^
            break
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        has_at = "@" in line  # both patterns hold an address: most lines need neither
        said = _SAID_RE.match(line) if has_at else None
        inline = _INLINE_RE.search(line) if has_at else None
        if said:
            found.append(said.group(1) or said.group(2))
        elif inline:
            found.append(inline.group(1))
        elif listing and stripped:
            first = _ADDR_RE.search(stripped.split()[0]) if stripped.split() else None
            if first and (stripped.split()[0].strip("<>[]:;,") == first.group(0)
                          or stripped.startswith(("mailto:", "<"))):
                found.append(first.group(0))
            elif "<mailto:" in stripped:
                after = _ADDR_RE.search(stripped.split("mailto:", 1)[1])
                if after:  # "<mailto:" with no address after it is just text
                    found.append(after.group(0))
        if _LEAD_RE.search(line):
            listing = 12
        elif listing and stripped:
            listing -= 1
    if not found:
        found = [m.group(1) for m in _RCPT_RE.finditer(text)]
    if not found:
        found = _returned_to(lines)
    clean = [bare_address(a) for a in found]
    return list(dict.fromkeys(a for a in clean if a))


def _returned_to(lines: list[str]) -> list[str]:
    """The To: of an original a server pasted as text below "Unsent message follows" or "Original message".

    `lines` are lowercased.
    """
    for i, line in enumerate(lines):
        if _END_RE.match(line):
            for below in lines[i + 1: i + 40]:
                if re.match(r"\s*to:", below):
                    return _ADDR_RE.findall(below)
            return []
    return []


def failure_code(text: str) -> str:
    """The first 4.x.x or 5.x.x status code in free text (a 2.x.x there is more likely a version number)."""
    found = _FAILURE_CODE_RE.search(text)
    return found.group(0) if found else ""


_FAILURE_CODE_RE = re.compile(r"[45](?<=\b[45])\.\d{1,3}\.\d{1,3}\b")


def wording_permanence(text: str) -> bool | None:
    """True for wording that says the server gave up, False for a retry notice, None when it says neither."""
    text = text.lower()
    transient = _TRANSIENT_RE.search(text)
    permanent = _PERMANENT_RE.search(text)
    if transient and not permanent:
        return False
    if permanent and not transient:
        return True
    if transient and permanent:
        return permanent.start() < transient.start() if "giv" in permanent.group(0) else None
    return None


def reply_code_permanence(text: str) -> bool | None:
    """The class of the first SMTP reply code on an error line: 5xx permanent, 4xx temporary."""
    for candidate in _CODE_LINE_RE.finditer(text):  # only lines holding a 4xx/5xx can say; most lines do not
        line = candidate.group(0)
        lead = _LEADING_CODE_RE.match(line)
        if lead:
            return lead.group(1) == "5"
        found = _ANY_CODE_RE.search(line)
        if found and _CODE_CONTEXT_RE.search(line):
            return found.group(1) == "5"
    return None


_CODE_LINE_RE = re.compile(r"^[^\n]*[45][0-9]{2}[^\n]*", re.M)
_LEADING_CODE_RE = re.compile(r"^\s*(?:<<<\s*)?([45])[0-9]{2}(?:[ -]|$)")
_ANY_CODE_RE = re.compile(r"(?:^|[\s(:#])([45])[0-9]{2}(?:[\s-]|$)")
_CODE_CONTEXT_RE = re.compile(r"said|reply|error|reject|refus|unknown|deferred|remote|\b[45]\d\d[ -][45]\.", re.I)


def message_id_addresses(msg: Message, text: str) -> set[str]:
    """Message-IDs look like addresses; heuristics must not take them for recipients."""
    ids = set(_TEXT_MID_RE.findall(text.lower()))
    for part, _ in typed_parts(msg):
        for name in ("Message-ID", "In-Reply-To", "References"):
            value = part.get(name)
            if value is not None:
                ids.update(_ANGLE_ID_RE.findall(str(value)))
    return {i.lower() for i in ids}


_TEXT_MID_RE = re.compile(r"message-id:\s*<([^<>\s]+@[^<>\s]+)>")  # for lowercased text
_ANGLE_ID_RE = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
