"""Header values every outgoing mail shares: no control characters, encoded names, SMTP folding."""

from __future__ import annotations

import datetime as dt
import re
import time
from email import policy
from email.utils import format_datetime, formataddr

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clean_header(value: str) -> str:
    """CR, LF and other controls become one space: no value can start a new header (invariant 5)."""
    return _CONTROL.sub(" ", value).strip()


def format_address(name: str, address: str) -> str:
    """`Name <addr>`, quoting specials and RFC 2047-encoding non-ASCII names."""
    return formataddr((clean_header(name), clean_header(address)), charset="utf-8")


def address_header(field: str, name: str, address: str) -> bytes:
    """`Field: Name <addr>` built once by formataddr and written as is, never re-folded.

    Folding an already encoded value through the header policy splits a name like
    `Zoë O'Neil, MBE` into an encoded word and a bare `O'Neil, MBE`, which readers
    take for two mailboxes (CPython issue 121284). formataddr quotes an ASCII name
    with specials and encodes a non-ASCII one as one encoded word, comma included.
    """
    value = format_address(name, address) if clean_header(name) else clean_header(address)
    return f"{field}: {value}\r\n".encode("ascii")


def date_header(now: float | None = None) -> bytes:
    """`Date:` with a numeric `+0000` zone (RFC 5322 3.3; the `GMT` form is obsolete)."""
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return b"Date: " + format_datetime(moment).encode("ascii") + b"\r\n"


def fold(name: str, value: str) -> bytes:
    """One header line (folded, encoded) exactly as the SMTP policy writes it."""
    header = policy.SMTP.header_factory(name, clean_header(value))
    return header.fold(policy=policy.SMTP).encode("ascii")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip(">").lower()
