"""Inbound mail the demo feeds back, made from messages that really left the outbox.

Each builder takes the sent message (as the recipient's server would have
it) and writes what a person or a mail server would send back: a reply to a
block, an out-of-office, a hard bounce (RFC 3464) and a spam complaint (ARF,
RFC 5965). They are built with the standard library so they look like mail
from elsewhere, not like bulletin's own output.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid, parseaddr

REMOTE_DOMAIN = "mail.example.gov.uk"


def _parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.default)


def _text_body(sent: Message) -> str:
    part = sent.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return part.get_content() if part is not None else ""


def _base(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=REMOTE_DOMAIN)
    return msg


def reply_to_block(sent_raw: bytes, block_anchor: str, answer: str) -> bytes:
    """A subscriber answers the "we want to hear from you" block from their mail client."""
    sent = _parse(sent_raw)
    recipient = parseaddr(str(sent["To"]))[1]
    reply_address = parseaddr(str(sent["Reply-To"]))[1]
    subject = str(sent["Subject"]).removeprefix("[TEST] ")
    msg = _base(str(sent["To"]), reply_address, f"Re: {subject} [{block_anchor}]")
    msg["In-Reply-To"] = str(sent["Message-ID"])
    msg["References"] = str(sent["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in _text_body(sent).splitlines()[:12])
    when = str(sent["Date"] or "today")
    msg.set_content(f"{answer}\n\nBest wishes,\n{recipient.split('@')[0].replace('.', ' ').title()}\n"
                    f"\nOn {when}, {sent['From']} wrote:\n{quoted}\n")
    return msg.as_bytes()


def out_of_office(sent_raw: bytes) -> bytes:
    sent = _parse(sent_raw)
    reply_address = parseaddr(str(sent["Reply-To"]))[1]
    msg = _base(str(sent["To"]), reply_address, f"Automatic reply: {sent['Subject']}")
    msg["Auto-Submitted"] = "auto-replied"
    msg["In-Reply-To"] = str(sent["Message-ID"])
    msg.set_content("I am out of the office until Monday with limited access to email.\n"
                    "For urgent matters please contact the service desk.\n")
    return msg.as_bytes()


def hard_bounce(sent_raw: bytes) -> tuple[bytes, str]:
    """An RFC 3464 report to the VERP envelope sender; returns (bytes, envelope recipient)."""
    sent = _parse(sent_raw)
    verp = parseaddr(str(sent["Return-Path"]))[1]
    recipient = parseaddr(str(sent["To"]))[1]
    human = (f"This is the mail system at host {REMOTE_DOMAIN}.\n\n"
             f"<{recipient}>: host {REMOTE_DOMAIN} said: 550 5.1.1 <{recipient}>: "
             "Recipient address rejected: User unknown\n")
    machine = (f"Reporting-MTA: dns; {REMOTE_DOMAIN}\n\n"
               f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: 5.1.1\n"
               f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\n")
    raw = _report(f"Mail Delivery System <MAILER-DAEMON@{REMOTE_DOMAIN}>", verp,
                  "Undelivered Mail Returned to Sender", "delivery-status", human, machine, sent_raw,
                  extra="Auto-Submitted: auto-replied\n")
    return raw, verp


def complaint(sent_raw: bytes) -> tuple[bytes, str]:
    """An ARF (RFC 5965) spam report from a mailbox provider's feedback loop."""
    sent = _parse(sent_raw)
    verp = parseaddr(str(sent["Return-Path"]))[1]
    recipient = parseaddr(str(sent["To"]))[1]
    human = "This is an email abuse report for an email message received from you.\n"
    machine = (f"Feedback-Type: abuse\nUser-Agent: demo-fbl/1.0\nVersion: 1\n"
               f"Original-Mail-From: <{verp}>\nOriginal-Rcpt-To: <{recipient}>\n"
               f"Arrival-Date: {format_datetime(datetime.now(UTC))}\nReported-Domain: {REMOTE_DOMAIN}\n")
    raw = _report(f"Feedback Loop <fbl@{REMOTE_DOMAIN}>", verp, "Complaint about message",
                  "feedback-report", human, machine, sent_raw)
    return raw, verp


def _report(sender: str, to: str, subject: str, report_type: str, human: str, machine: str,
            original: bytes, extra: str = "") -> bytes:
    """multipart/report as a remote MTA writes it: human text, machine part, original headers."""
    boundary = f"=_report_{make_msgid().strip('<>').split('@')[0]}"
    head, _, _ = original.replace(b"\r\n", b"\n").partition(b"\n\n")
    text = (
        f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
        f"Date: {format_datetime(datetime.now(UTC))}\nMessage-ID: {make_msgid(domain=REMOTE_DOMAIN)}\n"
        f"{extra}MIME-Version: 1.0\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n{human}\n"
        f"--{boundary}\nContent-Type: message/{report_type}\n\n{machine}\n"
        f"--{boundary}\nContent-Type: text/rfc822-headers\n\n"
    )
    tail = f"\n--{boundary}--\n"
    return (text.encode() + head + b"\n" + tail.encode()).replace(b"\n", b"\r\n")
