"""Address normalisation: the one place an email address becomes a database key.

Every stage (import, web signup, inbound matching) must agree on what "the
same address" means, or duplicates and missed unsubscribes follow. We take
email-validator's normal form (no DNS: tests and imports run offline) and
lower-case it, because council CSVs mix `J.Smith@` and `j.smith@` for one
person and no real mailbox relies on case.
"""

from __future__ import annotations

import hashlib
import unicodedata

from email_validator import EmailNotValidError, validate_email

from bulletin.errors import AddressError


def normalise_address(raw: str) -> str:
    """Validated, lower-cased normal form of `raw`; AddressError naming the address otherwise."""
    if not isinstance(raw, str):
        raise AddressError("not a string", where=repr(raw))
    candidate = raw.strip()
    if not candidate:
        raise AddressError("the address is empty", where="address ''")
    try:
        result = validate_email(candidate, check_deliverability=False, allow_display_name=False)
    except EmailNotValidError as exc:
        raise AddressError(str(exc), where=f"address {candidate!r}") from None
    return result.normalized.lower()


def address_hash(email: str) -> str:
    """sha256 hex of the normalised address: kept after erasure so suppression still matches."""
    try:
        key = normalise_address(email)
    except AddressError:
        # An address we cannot validate still needs a stable key (e.g. suppressing junk).
        key = unicodedata.normalize("NFC", email.strip()).lower()
    return hash_normalised(key)


def hash_normalised(normalised: str) -> str:
    """The hash of an address already through `normalise_address` (skips re-validating: import speed)."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def has_control_chars(value: str) -> bool:
    """True when `value` holds CR, LF, TAB or any other control/format character.

    Names end up in headers (`To: Name <addr>`) and in rendered mail; a CR or LF
    there is a header-injection vector, so import and forms reject it at the edge.
    """
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)
