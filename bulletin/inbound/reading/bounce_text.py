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
from bulletin.inbound.reading.parse import addresses, header, sender
from bulletin.inbound.reading.reports import (
    ORIGINAL_TYPES,
    BounceRecipient,
    original_headers,
    status_code,
)

_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon", "mail.delivery.system")
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
    """A mailer-daemon sender, or a non-delivery subject on a message that is machine-made.

    A subject alone is not enough: a person may well write "Re: delivery problem".
    """
    name, addr = sender(msg)
    local = addr.split("@")[0] if addr else name.strip().lower()
    if any(local.startswith(d) for d in _DAEMONS) or msg.get("X-Failed-Recipients") is not None:
        return True
    if not _SUBJECT_RE.search(header(msg, "Subject")):
        return False
    machine = (auto_reply_reason(msg) is not None or msg.get_content_type() == "multipart/report"
               or any(p.get_content_type() in ORIGINAL_TYPES for p in msg.walk()))
    return machine


def text_recipients(msg: Message, text: str) -> list[BounceRecipient]:
    own = {sender(msg)[1], *addresses(msg, "To", "Reply-To")}
    original = original_headers(msg)
    found: list[str] = [a.lower() for a in _ADDR_RE.findall(header(msg, "X-Failed-Recipients"))]
    if original is not None and not found:
        found = [a.lower() for a in _ADDR_RE.findall(header(original, "To"))]
        own |= set(addresses(original, "From", "Reply-To"))
    if not found:
        found = _addresses_near_errors(text)
    found = [a for a in dict.fromkeys(found) if a not in own and not a.split("@")[0].startswith(_DAEMONS)]
    if not found:
        return []
    code = status_code(text)
    if code:
        permanent = code.startswith("5")
    else:
        # Without a code, only unambiguous wording makes it permanent; else the soft score decides.
        reply = _REPLY_CODE_RE.search(text)
        permanent = reply.group(1) == "5" if reply else bool(_PERMANENT_WORDS.search(text))
    return [BounceRecipient(a, permanent, code, "") for a in found[:5]]
