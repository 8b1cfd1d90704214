"""Tolerant reading of raw mail: nothing a sender writes may crash the pipeline.

Real inbound mail has CR-only line ends, unknown charsets, broken MIME and
headers that the strict `email.policy.default` refuses when read. Everything
here parses with the forgiving compat32 policy and decodes by hand, falling
back to replacement characters rather than raising.
"""

from __future__ import annotations

import email
import html
import re
from dataclasses import dataclass
from email.header import Header, decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

_TAG_RE = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)
_BR_RE = re.compile(r"<br\s*/?>|</p>|</div>|</tr>|</li>", re.I)
_MID_RE = re.compile(r"<[^<>\s]+>")


def normalise_line_ends(raw: bytes) -> bytes:
    """CRLF and CR-only (old Mac) line ends both become LF, which the parser handles best."""
    if b"\r" not in raw:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def parse_bytes(raw: bytes) -> Message:
    """Parse with compat32: it records defects instead of raising on them."""
    return email.message_from_bytes(normalise_line_ends(raw))


def header(msg: Message, name: str) -> str:
    """A header decoded to text (RFC 2047), '' when absent, never an exception."""
    value = msg.get(name)
    if value is None:
        return ""
    return decode_value(value)


def decode_value(value: object) -> str:
    if isinstance(value, Header):
        # compat32 wraps raw 8-bit headers in a Header with the unknown-8bit charset.
        value = "".join(_decode_chunk(b, c) for b, c in decode_header(value))
    text = str(value)
    if not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text):
        # Raw 8-bit header (SMTPUTF8 or a sloppy client): the parser kept the bytes as surrogates.
        raw = text.encode("ascii", "surrogateescape")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    if "=?" not in text:  # no encoded word (they all start so): decode_header would hand the text back
        return " ".join(text.split())
    try:
        decoded = str(make_header(decode_header(text)))
    except Exception:  # noqa: BLE001 - any broken encoded-word: keep the raw text
        decoded = text
    return " ".join(decoded.split())


def _decode_chunk(chunk: bytes | str, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    for candidate in (charset if charset and charset != "unknown-8bit" else "utf-8", "utf-8"):
        try:
            return chunk.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return chunk.decode("latin-1")


def addresses(msg: Message, *names: str) -> list[str]:
    """Bare addresses from address headers, lowercased, in header order."""
    values = []
    present = header_names(msg)
    for name in names:
        if name.lower() in present:
            values.extend(decode_value(v) for v in msg.get_all(name, []))
    out = []
    for _, addr in plain_address_list(values) or getaddresses(values):
        addr = addr.strip().strip("<>").lower()
        if "@" in addr:
            out.append(addr)
    return out


def header_names(msg: Message) -> set[str]:
    """The lowercased names of the headers a message has.

    `Message.get` and `get_all` lowercase and compare every header name on each
    call, so asking for six or ten headers most messages lack costs six or ten
    scans; one pass first tells which are worth asking for.
    """
    return {name.lower() for name in msg.keys()}


def sender(msg: Message) -> tuple[str, str]:
    """(display name, address) of From:, address lowercased."""
    value = header(msg, "From")
    plain = plain_address_list([value])
    name, addr = plain[0] if plain is not None and len(plain) == 1 else parseaddr(value)
    return name, addr.strip().lower()


# The everyday shapes of an address header: `a@b`, `<a@b>`, `Name <a@b>`, `"Name, Inc." <a@b>`, comma-separated.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ADDR = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_ATEXT}+(?:\.{_ATEXT}+)*"
_WORD = r'[^\s()<>@,;:\\".\[\]]+'
_ITEM = rf'[ \t]*(?:(?:({_WORD}(?:[ \t]+{_WORD})*)|"([^"\\\r\n]*)")?[ \t]*<({_ADDR})>|({_ADDR}))[ \t]*'
_ITEM_RE = re.compile(_ITEM)
_LIST_RE = re.compile(rf"{_ITEM}(?:,{_ITEM})*")


def plain_address_list(values: list[str]) -> list[tuple[str, str]] | None:
    """`getaddresses(values)` for values in the everyday shapes, None for anything else.

    The stdlib parser walks a value one character at a time, and classifying one
    message reads its address headers several times. Only values with no
    comment, group, route, quoted local part or escape take this path; the
    result is the stdlib's own (tests compare the two on generated values).
    """
    if not values or not all(_LIST_RE.fullmatch(v) for v in values):
        return None
    out = []
    for value in values:
        for m in _ITEM_RE.finditer(value):
            words, quoted, routed, bare = m.groups()
            name = " ".join(words.split()) if words else quoted or ""
            out.append((name, routed or bare))
    return out


def message_ids(value: str) -> list[str]:
    """Every `<id>` in an In-Reply-To or References header."""
    return _MID_RE.findall(value)


def part_text(part: Message) -> str:
    """Decode one leaf part to text whatever its declared charset."""
    payload = part.get_payload(decode=True)
    if payload is None:
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except (LookupError, TypeError):
        return payload.decode("utf-8", errors="replace")


def html_to_text(markup: str) -> str:
    """Good enough for quote stripping: block ends become newlines, tags vanish."""
    text = _BR_RE.sub("\n", markup)
    text = _TAG_RE.sub("", text)
    return html.unescape(text)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int

    def as_dict(self) -> dict[str, object]:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size}


def body_text(msg: Message) -> str:
    """The message's readable text: the first text/plain part, else the first HTML part as text."""
    plain: str | None = None
    markup: str | None = None
    for part in msg.walk():
        if part.is_multipart() or _is_attachment(part):
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = part_text(part)
        elif ctype == "text/html" and markup is None:
            markup = part_text(part)
    if plain is not None and plain.strip():
        return plain.replace("\r\n", "\n").replace("\r", "\n")
    return html_to_text(markup or "").replace("\r\n", "\n")


def attachments(msg: Message) -> list[Attachment]:
    out = []
    for part in msg.walk():
        if part.is_multipart() or not _is_attachment(part):
            continue
        payload = part.get_payload(decode=True) or b""
        name = decode_value(part.get_filename() or "") or "(unnamed)"
        out.append(Attachment(filename=name, content_type=part.get_content_type(), size=len(payload)))
    return out


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    return bool(part.get_filename()) and not part.get_content_type().startswith("text/")
