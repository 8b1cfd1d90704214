"""The message each recipient gets, built from a prebuilt MIME skeleton by filling bytes.

`EmailMessage` + `as_bytes()` costs about 4 ms a message; a send of 20,000 cannot
afford that. So the skeleton (headers that never change, MIME structure, the
quoted-printable body chunks around the slots) is encoded once per issue and
list, and `build_message` only encodes the few per-recipient values and joins
bytes. Tests parse the result with the standard library to prove it is the same
message. One-off mails (confirmations, answers to feedback, proofs) go through
`bulletin.messenger` instead.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from email.utils import formataddr
from typing import TYPE_CHECKING

from bulletin.audience.links import Links, MessageLinks
from bulletin.audience.lists import sender_name
from bulletin.config import Settings
from bulletin.errors import DeliveryError
from bulletin.messenger.dkim import dkim_sign, load_dkim_key
from bulletin.messenger.headers import address_header, clean_header, date_header, domain_of, fold
from bulletin.render.compiled import LIST_SLOTS, SLOTS, Compiled, Recipient, Sender, Template

if TYPE_CHECKING:
    from bulletin.audience.conditions import Reader

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
    organisation: str = ""  # as the footer shows it: the list's, else the workspace's, else from_name
    postal_address: str = ""

    @property
    def sender(self) -> Sender:
        return Sender(organisation=self.organisation or self.from_name, list_name=self.name,
                      postal_address=self.postal_address)

    @property
    def display_name(self) -> str:
        return sender_name(self.from_name, self.organisation)


@dataclass(frozen=True)
class RecipientRow:
    subscriber_id: int
    email: str
    name: str = ""
    message_id: str | None = None  # the one the ledger row kept; derived from (subscriber, list, issue) when empty
    reader: Reader | None = None  # for an issue with targeted blocks: who they are (None: every block)


@dataclass(frozen=True)
class OutgoingMessage:
    """What a transport needs for one recipient."""

    subscriber_id: int
    recipient: str
    envelope_from: str
    message_id: str
    data: bytes
    # No line of `data` starts with a dot: true of every message the skeleton builds (headers, folded
    # lines, `qp` bodies), so the SMTP transport skips its search for one (see `dot_stuff`).
    dot_free: bool = False


def qp(text: str, *, last: int = 76) -> bytes:
    """Quoted-printable with CRLF line ends; every line within RFC 2045's 76 characters, the last
    within `last` (75 for text a soft break follows, whose "=" ends the same line).

    A dot that starts a line is written `=2E` (the same character to every reader):
    then no line of a message starts with a dot, and the transport's dot-stuffing
    finds nothing to double. That pass was a regex over all 62 KB of every message
    whenever one line began with a dot, which a soft break before ". " often makes
    (py-spy --gil: 6 % of a sending process). `binascii.b2a_qp` itself writes
    lines of 77 or 78 characters when it encodes whitespace or an "=" just before
    a break; those are broken again here too.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    if b"\n." in encoded or encoded.startswith(b".") or (len(encoded) > last and _too_long(encoded, last)):
        *lines, end = encoded.split(b"\n")
        encoded = b"\n".join([*(_fit(line) for line in lines), _fit(end, last)])
    return encoded.replace(b"\n", b"\r\n")


_LINE = 76  # RFC 2045 6.7 (5): encoded lines no longer than this, the soft break's "=" included
_TOO_LONG = re.compile(rb"[^\n]{%d}" % (_LINE + 1))


def _too_long(encoded: bytes, last: int) -> bool:
    return _TOO_LONG.search(encoded) is not None or len(encoded) - encoded.rfind(b"\n") - 1 > last


def _fit(line: bytes, width: int = _LINE) -> bytes:
    """One encoded line with a leading dot as `=2E`, soft-broken until no piece is over `width`."""
    out = []
    while True:
        if line.startswith(b"."):
            line = b"=2E" + line[1:]
        if len(line) <= width:
            break
        cut = width - 1  # room for the soft break's "=", and never inside an "=XX" escape
        if line[cut - 1:cut] == b"=":
            cut -= 1
        elif line[cut - 2:cut - 1] == b"=":
            cut -= 2
        out.append(line[:cut] + b"=")
        line = line[cut:]
    out.append(line)
    return b"\n".join(out)


_SOFT = b"=\r\n"
_BEFORE_SOFT = _LINE - 1  # the last line of text a soft break follows: its "=" makes 76


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
        chunks = (qp(first, last=_BEFORE_SOFT) + _SOFT,) + tuple(
            _SOFT + (qp(c, last=_BEFORE_SOFT) + _SOFT if i < len(rest) - 1 else qp(c)) for i, c in enumerate(rest))
        if not rest:
            chunks = (qp(first),)
        return cls(chunks=chunks, slots=template.slots, template=template)

    def fill(self, out: list[bytes], values: dict[str, str], encoded: dict[str, bytes]) -> None:
        """Append the message's bytes; `encoded` (value -> its quoted-printable) is shared by both parts
        of one message, whose slots mostly hold the same text (the links), so each is encoded once."""
        out.append(self.chunks[0])
        for slot, chunk in zip(self.slots, self.chunks[1:], strict=True):
            value = values[slot]
            done = encoded.get(value)
            if done is None:
                done = encoded[value] = qp_value(value)
            out.append(done)
            out.append(chunk)


# A value that quoted-printable leaves as it is: printable ASCII but "=", no dot first, no space last,
# one line of at most 75 (a soft break's "=" follows every slot). The links and most names are, so
# they skip the encoder.
_UNCHANGED_BY_QP = re.compile(r"[!-\-/-<>-~](?:[ !-<>-~]{0,73}[!-<>-~])?")


def qp_value(value: str) -> bytes:
    """`qp(value)`, without calling the encoder for a value it would not change (a property test
    holds the two equal)."""
    return value.encode("ascii") if _UNCHANGED_BY_QP.fullmatch(value) else qp(value, last=_BEFORE_SOFT)


class MessageSkeleton:
    """Everything about an issue's message that is the same for every recipient of one list."""

    def __init__(self, settings: Settings, compiled: Compiled, mailing_list: ListIdentity,
                 issue_id: int, *, test: bool = False, links: Links | None = None) -> None:
        self.settings = settings
        self.compiled = compiled = compiled.for_sender(mailing_list.sender)
        self.list = mailing_list
        self.issue_id = issue_id
        self.links = links or Links.for_settings(settings)
        self.dkim_key = load_dkim_key(settings)
        self.dkim_domain = domain_of(mailing_list.from_address)
        subject = f"[TEST] {compiled.subject}" if test else compiled.subject
        self.reply_name = _display(mailing_list.display_name)
        self.boundary = "=_b" + hashlib.sha1(compiled.to_json().encode()).hexdigest()[:24]
        list_id = f"{clean_header(mailing_list.name)} <{mailing_list.slug}.{self.settings.sending_domain}>"
        feedback_id = f"{compiled.slug}:{mailing_list.slug}:bulletin:{self.settings.sending_domain}"
        self.head = b"".join([
            address_header("From", mailing_list.display_name, mailing_list.from_address),
            fold("Subject", subject),
        ])
        self.head_tail = b"".join([
            fold("List-Id", list_id),
            fold("Feedback-ID", feedback_id),
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
        self._date_cache: tuple[int, bytes] = (-1, b"")
        self._bodies: dict[int, tuple[_Body, _Body]] = {}

    def _date(self) -> bytes:
        """The Date line, formatted once a second rather than once a message."""
        now = int(time.time())
        if self._date_cache[0] != now:
            self._date_cache = (now, date_header(now))
        return self._date_cache[1]

    def bodies(self, reader: Reader | None) -> tuple[_Body, _Body]:
        """(text, html) bodies of the blocks this reader sees, encoded once per combination of blocks."""
        if reader is None or not self.compiled.targeted:
            return self.text, self.html
        mask = self.compiled.choose(reader)
        found = self._bodies.get(mask)
        if found is None:
            variant = self.compiled.variant(mask)
            found = self._bodies[mask] = (_Body.of(variant.text), _Body.of(variant.html))
        return found

    def recipient(self, row: RecipientRow, links: MessageLinks | None = None) -> Recipient:
        links = links or self.links.for_message(row.subscriber_id, self.list.id, self.issue_id)
        return Recipient(
            name=clean_header(row.name),
            unsubscribe_url=links.unsubscribe_url,
            preferences_url=links.preferences_url,
            view_online_url=self.links.view_url(row.subscriber_id, self.issue_id),  # signed: members-only lists too
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
            self._date(),
            b"Message-ID: " + message_id.encode() + b"\r\n",
            b"Reply-To: " + self.reply_name + b"<" + r.reply_address.encode() + b">\r\n",
            b"List-Unsubscribe: <" + r.unsubscribe_url.encode() + b">,\r\n <" + mailto.encode() + b">\r\n",
            self.head_tail,
            self.text_open,
        ]
        text, html = self.bodies(row.reader)
        encoded: dict[str, bytes] = {}
        text.fill(out, self.compiled.text.values_for(r), encoded)
        out.append(self.html_open)
        html.fill(out, self.compiled.html.values_for(r), encoded)
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
            dot_free=True,
        )


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
        # formataddr quotes a name only for its specials, of which a plain name can hold only the dot
        value = email if not name else formataddr((name, email)) if "." in name else f"{name} <{email}>"
        return b"To: " + value.encode() + b"\r\n"
    if not email.isascii():
        raise DeliveryError("non-ASCII addresses need SMTPUTF8, which bulletin does not send", where=email)
    return address_header("To", name, email)


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
        unknown = set(tpl.slots) - set(SLOTS) - set(LIST_SLOTS)
        if unknown:
            raise DeliveryError(f"issue {compiled.slug}: unknown slots {sorted(unknown)}")
