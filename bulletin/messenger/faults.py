"""Whose fault is a failed SMTP reply: the recipient's, or the relay's (and so ours).

A 5xx to RCPT TO that names the mailbox (5.1.x, 5.2.1, "user unknown") is
evidence about one address. Anything refused before the recipient is named
(greeting, EHLO, STARTTLS, AUTH, MAIL FROM), or any reply that names policy,
relaying, authentication, the sender, the size or the content, says the relay
will not take our mail: sending on would mark a whole list bounced for one
missing setting. Those are transport faults; they pause the send and never
touch a subscription.
"""

from __future__ import annotations

import re

# Stages of one SMTP session, in order; "connect" is a TCP or TLS failure before any reply.
CONNECT, GREETING, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, DOT = (
    "connect", "greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "dot")
OUTBOX = "outbox"  # the Maildir transport could not write
SESSION_STAGES = (CONNECT, GREETING, EHLO, STARTTLS, AUTH, MAIL, OUTBOX)

# Kinds of failure
RECIPIENT = "recipient"  # bounce evidence for that one address
TRANSPORT = "transport"  # the relay's refusal: counts towards pausing the send
TEMPORARY = "temporary"  # 4xx about this message or recipient: retry later
UNKNOWN = "unknown"  # the message may have been accepted: never resent without the operator

LABELS = {CONNECT: "relay unreachable", GREETING: "relay refused the connection", EHLO: "relay refused EHLO",
          STARTTLS: "relay refused STARTTLS", AUTH: "relay refused AUTH", MAIL: "relay refused MAIL FROM",
          RCPT: "relay refused RCPT TO", DATA: "relay refused DATA", DOT: "relay refused the message",
          OUTBOX: "outbox not writable"}

_POLICY = re.compile(
    r"\b5\.7\.\d+|\b5\.3\.4\b|\b4\.7\.\d+|relay|authenticat|not verified|unverified|policy|"
    r"sender|spam|blocked|blacklist|blocklist|too (?:big|large)|size|content|reputation|rate limit",
    re.I)
_MAILBOX = re.compile(
    r"\b5\.1\.\d+|\b5\.2\.1\b|user unknown|unknown user|no such (?:user|mailbox|recipient)|"
    r"mailbox (?:unavailable|not found|does not exist)|recipient (?:unknown|not found|rejected)|"
    r"does not exist|invalid recipient|address rejected",
    re.I)


def classify(stage: str, code: int, text: str) -> str:
    """The kind of a failed reply (`code` >= 400, or 0 for a broken connection) at `stage`."""
    if stage in SESSION_STAGES:
        return TRANSPORT
    if stage == DOT and code == 0:
        return UNKNOWN
    if code == 0 or 400 <= code < 500:
        return TEMPORARY
    if stage == RCPT:
        if _MAILBOX.search(text) and not re.search(r"\b5\.7\.\d+", text):
            return RECIPIENT
        return TRANSPORT if _POLICY.search(text) else RECIPIENT
    # DATA or the final dot: one recipient a message, so only an explicit mailbox status names them.
    return RECIPIENT if _MAILBOX.search(text) and not _POLICY.search(text) else TRANSPORT


def reason(stage: str, code: int, text: str) -> str:
    """One line for `bulletin status`: "relay refused MAIL FROM: 530 5.7.0 Authentication required"."""
    reply = " ".join(text.split())
    return f"{LABELS.get(stage, stage)}: {code} {reply}".strip() if code else f"{LABELS.get(stage, stage)}: {reply}"
