"""Last-resort bounce reading for servers that write neither RFC 3464 nor a shape flufl knows.

A message only gets here when it looks like a bounce (mailer-daemon sender or a
non-delivery subject). Recipients come from the returned original's To:, else
from addresses on lines that carry an error; permanence from the status code,
else the SMTP reply code, else the wording.
"""

from __future__ import annotations

import re
from email.message import Message

from bulletin.inbound.reading.autoreply import auto_reply_reason
from bulletin.inbound.reading.bounce_forms import (
    FAMILY_RE,
    family_recipients,
    reply_code_permanence,
    report_text,
    wording_permanence,
)
from bulletin.inbound.reading.parse import addresses, header, sender
from bulletin.inbound.reading.reports import (
    ORIGINAL_TYPES,
    BounceRecipient,
    original_headers,
    status_code,
    typed_parts,
)

_DAEMONS = ("mailer-daemon", "postmaster", "post_master", "mail-daemon", "mailerdaemon", "mdaemon",
            "mail.delivery.system")
_SUBJECT_RE = re.compile(
    r"undeliver|delivery (?:status )?notification|delivery fail|returned mail|mail delivery (?:fail|system)"
    r"|failure notice|could not be delivered|non[- ]?deliver|delivery has failed|not delivered|delivery error"
    r"|unzustellbar|nicht zugestellt|delivery problem|mail system error|rejected|bounce|failed mail",
    re.I,
)
_ADDR_RE = re.compile(r"[A-Za-z0-9._%+=/'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_LEAD_RE = re.compile(r"(?:to|for) (?:these|the following) (?:recipients?|address(?:es)?)|following (?:recipients?|"
                      r"address(?:es)?)|could not be delivered to|recipients? of the message", re.I)
_REPLY_CODE_RE = re.compile(r"\b([45])[0-9]{2}\b")
_ERROR_WORDS = re.compile(
    r"unknown|not exist|no such|invalid|unavailable|rejected|refused|fail|error|full|quota|disabled|"
    r"unrouteable|not found|denied|blocked|inactive|expired|undeliver|couldn't|could not|unable", re.I)
_PERMANENT_WORDS = re.compile(r"user unknown|unknown user|no such (?:user|mailbox|recipient)|does not exist|"
                              r"invalid (?:recipient|address|mailbox)|address rejected|not a valid|"
                              r"recipient not found|mailbox unavailable|account (?:is )?disabled", re.I)


def _addresses_near_errors(text: str) -> list[str]:
    """Addresses on lines that carry an error, or just below a "failed to these recipients" lead-in."""
    found: list[str] = []
    after_lead = 0
    for line in text.splitlines():
        if _LEAD_RE.search(line):
            after_lead = 4
        elif line.strip() and after_lead:
            after_lead -= 1
        if after_lead or _ERROR_WORDS.search(line) or _REPLY_CODE_RE.search(line) or line.strip().startswith("<"):
            found += [a.lower().strip(".") for a in _ADDR_RE.findall(line)]
    return found


def looks_like_bounce(msg: Message) -> bool:
    """A mailer-daemon sender, or a non-delivery subject or an MTA's wording on a message that is machine-made.

    A subject alone is not enough: a person may well write "Re: delivery problem".
    Nor is the wording: a person may paste a bounce into a reply (quoted lines
    are not read), so it also needs a machine sign.
    """
    name, addr = sender(msg)
    local = addr.split("@")[0] if addr else name.strip().lower()
    if any(local.startswith(d) for d in _DAEMONS) or msg.get("X-Failed-Recipients") is not None:
        return True
    if not _SUBJECT_RE.search(header(msg, "Subject")) and not _family_wording(msg):
        return False
    machine = (auto_reply_reason(msg) is not None or msg.get_content_type() == "multipart/report"
               or any(ctype in ORIGINAL_TYPES for _, ctype in typed_parts(msg)))
    return machine


def _family_wording(msg: Message) -> bool:
    """An MTA family's opening sentence near the top of the notice, outside quoted lines."""
    head = "\n".join(ln for ln in report_text(msg)[:6000].lower().split("\n") if not ln.lstrip().startswith(">"))
    return FAMILY_RE.search(head) is not None


def text_recipients(msg: Message, text: str) -> list[BounceRecipient]:
    own = {sender(msg)[1], *addresses(msg, "To", "Reply-To")}
    original = original_headers(msg)
    found: list[str] = [a.lower() for a in _ADDR_RE.findall(header(msg, "X-Failed-Recipients"))]
    precise = set(found)
    if not found:
        found = family_recipients(text)
        precise = set(found)
    if original is not None and not found:
        found = [a.lower() for a in _ADDR_RE.findall(header(original, "To"))]
        own |= set(addresses(original, "From", "Reply-To"))
    if not found:
        found = _addresses_near_errors(text)
    found = [a for a in dict.fromkeys(found)
             if a in precise or (a not in own and not a.split("@")[0].startswith(_DAEMONS))]
    if not found:
        return []
    code = status_code(text)
    permanent = text_permanence(code, text)
    return [BounceRecipient(a, permanent, code, "") for a in found[:5]]


def text_permanence(code: str, text: str, default: bool = False) -> bool:
    """The status code's class, else the SMTP reply code's, else the wording; else `default`.

    Without any of them the bounce counts as soft: the score decides, not one message.
    """
    if code:
        return code.startswith("5")
    verdict = text_verdict(text)
    return default if verdict is None else verdict


def text_verdict(text: str) -> bool | None:
    """The SMTP reply code's class, else the wording's; None when the text says neither.

    It depends on the text alone: callers work it out once per notice, not once per recipient.
    """
    verdict = reply_code_permanence(text)
    return wording_permanence(text) if verdict is None else verdict
