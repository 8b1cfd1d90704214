"""The message each recipient gets, built from a prebuilt MIME skeleton by filling bytes.

`EmailMessage` + `as_bytes()` costs about 4 ms a message; a send of 20,000 cannot
afford that. So the skeleton (headers that never change, MIME structure, the
quoted-printable body chunks around the slots) is encoded once per issue and
list, and `build_message` only encodes the few per-recipient values and joins
bytes. Tests parse the result with the standard library to prove it is the same
message. One-off mails (confirmations, answers to feedback) are rare and use
`simple_message`, which goes through `EmailMessage` with the SMTP policy.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from bulletin.audience.links import Links, MessageLinks
from bulletin.config import Settings
from bulletin.errors import ConfigError, DeliveryError
from bulletin.render.compiled import SLOTS, Compiled, Recipient, Template

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)


def clean_header(value: str) -> str:
    """CR, LF and other controls become one space: no value can start a new header (invariant 5)."""
    return _CONTROL.sub(" ", value).strip()


def format_address(name: str, address: str) -> str:
    """`Name <addr>`, quoting specials and RFC 2047-encoding non-ASCII names."""
    return formataddr((clean_header(name), clean_header(address)), charset="utf-8")


def fold(name: str, value: str) -> bytes:
    """One header line (folded, encoded) exactly as the SMTP policy writes it."""
    header = policy.SMTP.header_factory(name, clean_header(value))
    return header.fold(policy=policy.SMTP).encode("ascii")


# One-off messages -------------------------------------------------------------------------------


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
    """A single mail (confirmation, answer to feedback) as CRLF bytes, and its Message-ID."""
    msg = EmailMessage(policy=policy.SMTP)
    message_id = make_msgid(domain=settings.sending_domain)
    msg["From"] = clean_header(from_addr or f"bulletin@{settings.sending_domain}")
    msg["To"] = clean_header(to)
    msg["Subject"] = clean_header(subject)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id
    if reply_to:
        msg["Reply-To"] = clean_header(reply_to)
    if in_reply_to:
        msg["In-Reply-To"] = clean_header(in_reply_to)
    if references:
        msg["References"] = clean_header(references)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    data = msg.as_bytes()
    return dkim_sign(settings, data, _domain_of(msg["From"].addresses[0].addr_spec)), message_id


# DKIM ---------------------------------------------------------------------------------------------


def load_dkim_key(settings: Settings) -> bytes | None:
    if settings.dkim_key_path is None:
        return None
    path = settings.path(settings.dkim_key_path)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"setting 'dkim_key_path': cannot read {path}: {exc.strerror}") from None


def dkim_sign(settings: Settings, data: bytes, domain: str, key: bytes | None = None) -> bytes:
    """Prepend a DKIM-Signature when a key is configured; the message is returned unchanged otherwise."""
    key = key if key is not None else load_dkim_key(settings)
    if key is None:
        return data
    import dkim

    try:
        sig = dkim.sign(data, settings.dkim_selector.encode(), domain.encode(), key,
                        include_headers=[h for h in DKIM_HEADERS if _has_header(data, h)])
    except dkim.DKIMException as exc:
        raise ConfigError(f"setting 'dkim_key_path': cannot sign for {domain}: {exc}") from None
    return sig + data


def _has_header(data: bytes, name: bytes) -> bool:
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    return head.startswith(name + b":") or (b"\r\n" + name + b":") in head


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip(">").lower()


# Per-recipient messages from a skeleton ---------------------------------------------------------


@dataclass(frozen=True)
class ListIdentity:
    """The sender identity of one list (lists.toml): who the mail is from and its List-Id."""

    id: int
    slug: str
    name: str
    from_name: str
    from_address: str
    reply_to: str | None = None


@dataclass(frozen=True)
class RecipientRow:
    subscriber_id: int
    email: str
    name: str = ""
    message_id: str | None = None  # the ledger's copy; derived again from (issue, subscriber) when None


@dataclass(frozen=True)
class OutgoingMessage:
    """What a transport needs for one recipient."""

    subscriber_id: int
    recipient: str
    envelope_from: str
    message_id: str
    data: bytes


def qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends; every line stays within 76 characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


_SOFT = b"=\r\n"


@dataclass(frozen=True)
class _Body:
    """A template's chunks, quoted-printable encoded once; slots are encoded per recipient."""

    chunks: tuple[bytes, ...]
    slots: tuple[str, ...]
    template: Template

    @classmethod
    def of(cls, template: Template) -> _Body:
        # A soft line break on each side of a slot keeps every encoded line short and independent.
        first, *rest = template.chunks
        chunks = (qp(first) + _SOFT,) + tuple(_SOFT + qp(c) + (_SOFT if i < len(rest) - 1 else b"")
                                              for i, c in enumerate(rest))
        if not rest:
            chunks = (qp(first),)
        return cls(chunks=chunks, slots=template.slots, template=template)

    def fill(self, out: list[bytes], values: dict[str, str]) -> None:
        encoded = {s: qp(v) for s, v in values.items() if s in self.slots}
        out.append(self.chunks[0])
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            out.append(encoded[slot])
            out.append(chunk)


class MessageSkeleton:
    """Everything about an issue's message that is the same for every recipient of one list."""

    def __init__(self, settings: Settings, compiled: Compiled, mailing_list: ListIdentity,
                 issue_id: int, *, test: bool = False, links: Links | None = None) -> None:
        self.settings = settings
        self.compiled = compiled
        self.list = mailing_list
        self.issue_id = issue_id
        self.links = links or Links.for_settings(settings)
        self.dkim_key = load_dkim_key(settings)
        self.dkim_domain = _domain_of(mailing_list.from_address)
        subject = f"[TEST] {compiled.subject}" if test else compiled.subject
        self.view_online_url = self.links.view_online_url(compiled.slug)
        self.reply_name = _display(mailing_list.from_name)
        self.boundary = "=_b" + hashlib.sha1(compiled.to_json().encode()).hexdigest()[:24]
        list_id = f"{clean_header(mailing_list.name)} <{mailing_list.slug}.{self.settings.sending_domain}>"
        self.head = b"".join([
            fold("From", format_address(mailing_list.from_name, mailing_list.from_address)),
            fold("Subject", subject),
        ])
        self.head_tail = b"".join([
            fold("List-Id", list_id),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"Precedence: bulk\r\n",
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n\r\n'.encode(),
        ])
        part = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        b = self.boundary.encode()
        self.text_open = b"--" + b + b"\r\n" + part % b"plain"
        self.html_open = b"\r\n--" + b + b"\r\n" + part % b"html"
        self.close = b"\r\n--" + b + b"--\r\n"
        self.text = _Body.of(compiled.text)
        self.html = _Body.of(compiled.html)

    def recipient(self, row: RecipientRow, links: MessageLinks | None = None) -> Recipient:
        links = links or self.links.for_message(row.subscriber_id, self.list.id, self.issue_id)
        return Recipient(
            name=clean_header(row.name),
            unsubscribe_url=links.unsubscribe_url,
            preferences_url=links.preferences_url,
            view_online_url=self.view_online_url,
            reply_address=links.reply_address,
        )

    def build(self, row: RecipientRow) -> OutgoingMessage:
        """The full message for one recipient; raises DeliveryError naming the address if it cannot be built."""
        try:
            return self._build(row)
        except (KeyError, ValueError, UnicodeError) as exc:
            raise DeliveryError(f"cannot build the message: {exc}", where=row.email) from None

    def _build(self, row: RecipientRow) -> OutgoingMessage:
        email = check_recipient(row)
        links = self.links.for_message(row.subscriber_id, self.list.id, self.issue_id)  # the one HMAC
        r = self.recipient(row, links)
        message_id = row.message_id or links.message_id
        mailto = links.unsubscribe_mailto
        out = [
            self.head,
            _to_header(row.name, email),
            _date_header(),
            b"Message-ID: " + message_id.encode() + b"\r\n",
            b"Reply-To: " + self.reply_name + b"<" + r.reply_address.encode() + b">\r\n",
            b"List-Unsubscribe: <" + r.unsubscribe_url.encode() + b">,\r\n <" + mailto.encode() + b">\r\n",
            self.head_tail,
            self.text_open,
        ]
        self.text.fill(out, self.compiled.text.values_for(r))
        out.append(self.html_open)
        self.html.fill(out, self.compiled.html.values_for(r))
        out.append(self.close)
        data = b"".join(out)
        if self.dkim_key is not None:
            data = dkim_sign(self.settings, data, self.dkim_domain, self.dkim_key)
        return OutgoingMessage(
            subscriber_id=row.subscriber_id,
            recipient=email,
            envelope_from=links.bounce_address,
            message_id=message_id,
            data=data,
        )


class _DateHeader:
    """The Date header, formatted once a second rather than once a message (a cache, not state:
    one tuple swapped atomically, so sender threads never see a half-updated pair)."""

    current: tuple[int, bytes] = (0, b"")

    @classmethod
    def get(cls) -> bytes:
        now = int(time.time())
        second, header = cls.current
        if second != now:
            header = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
            cls.current = (now, header)
        return header


_date_header = _DateHeader.get


def build_message(skeleton: MessageSkeleton, row: RecipientRow) -> OutgoingMessage:
    """One recipient's message: see `MessageSkeleton.build`."""
    return skeleton.build(row)


def _display(name: str) -> bytes:
    """The encoded display-name part of an address (with trailing space), or nothing."""
    name = clean_header(name)
    if not name:
        return b""
    return formataddr((name, "x@x"), charset="utf-8")[: -len("<x@x>")].encode("ascii")


_PLAIN = re.compile(r"^[A-Za-z0-9 .'_-]*$")


def _to_header(name: str, email: str) -> bytes:
    name = clean_header(name)
    if _PLAIN.match(name) and len(name) < 60 and email.isascii():
        value = formataddr((name, email)) if name else email
        return b"To: " + value.encode() + b"\r\n"
    if not email.isascii():
        raise DeliveryError("non-ASCII addresses need SMTPUTF8, which bulletin does not send", where=email)
    return fold("To", format_address(name, email))


def check_recipient(row: RecipientRow) -> str:
    """Everything about a recipient that could make `build` fail, checked up front for the whole list.

    The rest of a fill is string joins over known slots (see `check_slots`), so a
    list that passes this check cannot fail half-way through a send.
    """
    email = clean_header(row.email)
    if not email or "@" not in email or " " in email or email != row.email.strip():
        raise DeliveryError("not a usable address", where=f"subscriber #{row.subscriber_id} {row.email!r}")
    if not email.isascii():
        raise DeliveryError("non-ASCII addresses need SMTPUTF8, which bulletin does not send",
                            where=f"subscriber #{row.subscriber_id} {email!r}")
    try:
        row.name.encode("utf-8")
    except UnicodeEncodeError:
        raise DeliveryError("name is not valid text", where=f"subscriber #{row.subscriber_id} {email!r}") from None
    return email


def check_slots(compiled: Compiled) -> None:
    """A template naming an unknown slot would fail for every recipient: refuse before sending."""
    for tpl in (compiled.html, compiled.text):
        unknown = set(tpl.slots) - set(SLOTS)
        if unknown:
            raise DeliveryError(f"issue {compiled.slug}: unknown slots {sorted(unknown)}")
