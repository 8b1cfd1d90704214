"""Header values every outgoing mail shares: no control characters, encoded names, SMTP folding."""

from __future__ import annotations

import re
from email import policy
from email.utils import formataddr

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


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


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip(">").lower()
