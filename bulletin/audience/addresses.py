"""Address normalisation: the one place an email address becomes a database key.

Every stage (import, web signup, inbound matching) must agree on what "the
same address" means, or duplicates and missed unsubscribes follow. We take
email-validator's normal form (no DNS: tests and imports run offline) and
lower-case it, because council CSVs mix `J.Smith@` and `j.smith@` for one
person and no real mailbox relies on case.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache

from bulletin.errors import AddressError

# email-validator (~70 ms to import) is imported where an address is checked: commands that only
# read the database, like `bulletin status`, load this module without checking any address.

# RFC 5322 dot-atom, ASCII only: the same pattern email-validator accepts unchanged.
_PLAIN = re.compile(
    r"([a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+)*)@([A-Za-z0-9.-]+)"
)


def normalise_address(raw: str) -> str:
    """Validated, lower-cased normal form of `raw`; AddressError naming the address otherwise."""
    if not isinstance(raw, str):
        raise AddressError("not a string", where=repr(raw))
    candidate = raw.strip(" ")  # spaces only: CR, LF or tab around an address is an error, not noise
    if not candidate:
        raise AddressError("the address is empty", where="address ''")
    fast = _plain_address(candidate)
    return fast if fast is not None else full_normalise(candidate)


def _plain_address(candidate: str) -> str | None:
    """Fast path for the common plain ASCII address; None means "ask email-validator".

    Importing 100,000 rows spends most of its time in IDNA checks of a few
    dozen distinct domains, so the domain verdict is cached and a dot-atom
    local part (which email-validator returns unchanged) is checked by regex.
    Anything unusual takes the full path; the result is identical either way
    (tests compare both over the email-validator corpus).
    """
    m = _PLAIN.fullmatch(candidate)
    if m is None or len(m.group(1)) > 64 or len(candidate) > 254:
        return None
    domain = _domain(m.group(2))
    return None if domain is None else f"{m.group(1)}@{domain}".lower()


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def full_normalise(candidate: str) -> str:
    """email-validator's verdict without the fast path (tests compare the two)."""
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(candidate, check_deliverability=False, allow_display_name=False)
    except EmailNotValidError as exc:
        raise AddressError(str(exc), where=f"address {candidate!r}") from None
    return result.normalized.lower()


def address_hash(email: str) -> str:
    """sha256 hex of the normalised address: the lookup key of a live subscriber row (beside its address)."""
    return hash_normalised(lookup_form(email))


def lookup_form(email: str) -> str:
    """The normalised address, or for one we cannot validate a stable lower-cased form (suppressing junk)."""
    try:
        return normalise_address(email)
    except AddressError:
        return unicodedata.normalize("NFC", email.strip()).lower()


KEYED_PREFIX = "k1:"


def keyed_hash(normalised: str, key: bytes) -> str:
    """What outlives a person: HMAC-SHA256 under the workspace's address key, 'k1:' + base64url (46 chars).

    A plain sha256 of an address can be confirmed by anyone holding a database
    dump and a guess; this one only with the key from the secrets folder too.
    The prefix tells it from the sha256 hex of live rows and of older databases.
    """
    mac = hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).digest()
    return KEYED_PREFIX + base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def hash_normalised(normalised: str) -> str:
    """The hash of an address already through `normalise_address` (skips re-validating: import speed)."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def has_control_chars(value: str) -> bool:
    """True when `value` holds CR, LF, TAB or any other control/format character.

    Names end up in headers (`To: Name <addr>`) and in rendered mail; a CR or LF
    there is a header-injection vector, so import and forms reject it at the edge.
    """
    if value.isprintable():  # fast: printable strings hold no Cc/Cf/Zl/Zp characters
        return False
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def mask_address(email: str) -> str:
    """`a•••e@e•••.org`: enough for the owner to recognise their address, little for anyone else."""
    local, _, domain = email.rpartition("@")

    def hide(part: str) -> str:
        return part[:1] + "•••" + (part[-1] if len(part) > 3 else "")

    labels = domain.split(".")
    return f"{hide(local)}@{'.'.join([hide(label) for label in labels[:-1]] + labels[-1:])}"
