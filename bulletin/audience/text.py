"""The one character rule for every text field a person types (web forms, CSV import, the CLI).

Control and format characters (Unicode categories Cc and Cf), line and
paragraph separators (Zl, Zp) and lone surrogates are refused, because they
reach headers, logs and rendered mail. The exception is ZWNJ/ZWJ (U+200C,
U+200D) in a name or organisation: Persian, Hindi and many other scripts
need them inside words, and emoji sequences use them. The rule looks only at
the text, never at the address or the database, so it answers every address
the same way.
"""

from __future__ import annotations

import unicodedata

from bulletin.errors import ContentError

NAME_FIELDS = frozenset({"name", "organisation"})
JOINERS = frozenset("\u200c\u200d")
_REFUSED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
PROBLEM = "must not contain control or invisible formatting characters (tab, line break, ...)"


def bad_character(value: str, field: str) -> str | None:
    """The first character `value` may not hold in `field`, or None when it is fine."""
    if value.isprintable():  # fast path: printable text has no Cc, Cf, Zl, Zp or Cs character
        return None
    joiners_ok = field in NAME_FIELDS
    for ch in value:
        if unicodedata.category(ch) in _REFUSED and not (joiners_ok and ch in JOINERS):
            return ch
    return None


def check_text(value: str, field: str, *, where: str | None = None) -> str:
    """`value` unchanged, or ContentError naming the field (and `where`, e.g. the file line or address)."""
    if bad_character(value, field) is not None:
        place = f"{where}: field '{field}'" if where else f"field '{field}'"
        raise ContentError(PROBLEM, where=place)
    return value
