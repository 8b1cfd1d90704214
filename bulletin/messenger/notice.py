"""Single messages (confirmations, answers to feedback, test proofs): one way to build and send them.

Bulk sends fill a prebuilt skeleton in delivery/; a notice is rare, so it goes
through `EmailMessage` with the SMTP policy. `deliver` is the one send step for
a single prebuilt message; `send_notice` builds, signs, sends and insists on a
2xx answer, so every caller fails the same way with the address in `where`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from bulletin.config import Settings
from bulletin.errors import AddressError, DeliveryError
from bulletin.messenger.dkim import dkim_sign
from bulletin.messenger.headers import address_header, clean_header, domain_of
from bulletin.messenger.result import SendResult
from bulletin.messenger.transport import Transport, make_transport


@dataclass(frozen=True)
class Notice:
    """One person-to-person mail: who to, what it says, and how it threads."""

    to: str
    subject: str
    text: str
    html: str | None = None
    from_addr: str | None = None
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: str | None = None


def simple_message(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    from_addr: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    reply_to: str | None = None,
) -> tuple[bytes, str]:
    """A single mail as CRLF bytes (DKIM-signed when a key is configured), and its Message-ID.

    From and Reply-To are written as whole lines by `address_header`, as bulk mail
    writes them, and put in front of what the SMTP policy wrote: the policy re-folds a
    long quoted name (`Team, A Long Organisation Name`) at its spaces and drops the
    quotes, and the comma then splits it into two mailboxes, a From that DMARC
    receivers reject (as it did for an encoded name with a comma, CPython issue 121284).
    """
    msg = EmailMessage(policy=policy.SMTP)
    message_id = make_msgid(domain=settings.sending_domain)
    author = mailbox(from_addr or f"bulletin@{settings.sending_domain}", "From")
    lines = address_header("From", *author)
    msg["To"] = clean_header(to)
    msg["Subject"] = clean_header(subject)
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id
    if reply_to:
        lines += address_header("Reply-To", *mailbox(reply_to, "Reply-To"))
    if in_reply_to:
        msg["In-Reply-To"] = clean_header(in_reply_to)
    if references:
        msg["References"] = clean_header(references)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return dkim_sign(settings, lines + msg.as_bytes(), domain_of(author[1])), message_id


def bounce_address(settings: Settings) -> str:
    """The envelope sender single messages use unless the caller names one."""
    return f"{settings.bounce_local}@{settings.sending_domain}"


def deliver(settings: Settings, envelope_from: str, recipients: list[str], data: bytes, message_id: str, *,
            transport: Transport | None = None) -> SendResult:
    """Send one prebuilt message; a transport opened here is closed here, a given one is left open."""
    own = transport is None
    transport = transport or make_transport(settings)
    try:
        return transport.send(envelope_from, recipients, data, message_id)
    finally:
        if own:
            transport.close()


def send_notice(settings: Settings, notice: Notice, *, envelope_from: str | None = None,
                what: str = "mail", transport: Transport | None = None) -> str:
    """Build, sign and send `notice`; DeliveryError (naming the address) unless the server said 2xx.

    Returns the Message-ID so the caller can record it.
    """
    data, message_id = simple_message(
        settings, to=notice.to, subject=notice.subject, text=notice.text, html=notice.html,
        from_addr=notice.from_addr, in_reply_to=notice.in_reply_to, references=notice.references,
        reply_to=notice.reply_to,
    )
    where = f"address {notice.to!r}"
    try:
        result = deliver(settings, envelope_from or bounce_address(settings), [notice.to], data, message_id,
                         transport=transport)
    except OSError as exc:
        raise DeliveryError(f"{what} not sent: {exc}", where=where) from None
    if not result.ok:
        raise DeliveryError(f"{what} refused: {result.code} {result.detail}", where=where)
    return message_id


def mailbox(value: str, field: str) -> tuple[str, str]:
    """(display name, address) of `Name <addr>` as `format_address` writes it (a non-ASCII name
    RFC 2047-encoded), for `address_header`; AddressError naming `field` when it is not one address
    (a permanent fault of the notice: sending it again cannot help)."""
    text = clean_header(value)
    name, addr = parseaddr(text)
    if not addr or "@" not in addr or not addr.isascii():
        raise AddressError(f"not one usable address: {text!r}", where=field)
    try:
        return (str(make_header(decode_header(name))) if name else ""), addr
    except (ValueError, HeaderParseError):
        return name, addr
