"""Signed tokens with a purpose-specific salt, verified against every key (rotation).

Two shapes. URL tokens (confirm, unsubscribe, preferences, referral) carry a
small JSON payload and a timestamp, via itsdangerous. Address tokens (reply,
bounce) must fit in an email local part (64 octets, case-insensitive in
practice), so they are integers in base 36 plus a truncated HMAC in lowercase
base32. A token for one purpose never verifies for another: the purpose is in
the salt of both shapes.

Per-message tokens (see `Signer.message_tokens`) are the send's hot path: a
message carries five address tokens, and five HMACs with base32 cost about a
third of filling a 60 KB message. So one HMAC-SHA512 over (subscriber, list,
issue) yields them all: each purpose owns its own 10-byte slice of the digest,
a pseudo-random value independent of the others, so a token shows nothing
about its siblings and a token for one purpose never verifies for another
(invariant 4). They are told from the older shape by their 20 hex digits
(the older one has 16 base32 letters), and both shapes keep verifying.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bulletin.errors import TokenError

PURPOSES = ("confirm", "unsubscribe", "preferences", "referral", "reply", "bounce", "message", "view", "export",
            "erase")
_MAC_BYTES = 10
# The slice of the per-message digest each derived token uses, and the numbers its parser returns
# (indexes into (subscriber, list, issue)). Append only: a slice, once issued, is that purpose's forever.
_DERIVED: dict[str, tuple[int, tuple[int, ...]]] = {
    "unsubscribe": (0, (0, 1, 2)),
    "unsubscribe-mail": (1, (0, 1)),  # List-Unsubscribe mailto: parsed as purpose "unsubscribe", two numbers
    "preferences": (2, (0,)),
    "reply": (3, (0, 2)),
    "bounce": (4, (0, 2)),
    "message": (5, (0, 2)),
}
_DERIVED_HEX = 2 * _MAC_BYTES
_DERIVED_SALT = b"bulletin.message-tokens:"


@dataclass(frozen=True)
class MessageTokens:
    """Every address token of one message, from one HMAC (see the module docstring)."""

    unsubscribe: str
    unsubscribe_mail: str
    preferences: str
    reply: str
    bounce: str
    message: str


class Signer:
    """Signs with the newest key, verifies with any of them (keys newest first)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise TokenError("no signing key configured")
        self._keys = list(keys)
        # Built once: a send signs several tokens per recipient, and building these is most of the cost.
        self._serializers: dict[str, URLSafeTimedSerializer] = {}
        self._hmacs = {key: hmac.new(key.encode(), digestmod=hashlib.sha256) for key in self._keys}
        self._derivers = {key: hmac.new(key.encode(), _DERIVED_SALT, digestmod=hashlib.sha512) for key in self._keys}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        found = self._serializers.get(purpose)
        if found is None:
            if purpose not in PURPOSES:
                raise ValueError(f"unknown token purpose {purpose!r}")
            # itsdangerous signs with the last key of the list and tries all of them.
            found = URLSafeTimedSerializer(list(reversed(self._keys)), salt=f"bulletin.{purpose}")
            self._serializers[purpose] = found
        return found

    def dumps(self, purpose: str, payload: dict[str, Any]) -> str:
        return self._serializer(purpose).dumps(payload)

    def loads(self, purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
        """Verify and decode; every failure is a `TokenError` that says nothing about who exists."""
        try:
            value = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
        if not isinstance(value, dict):
            raise TokenError("this link is not valid")
        return value

    # Address tokens --------------------------------------------------------------------
    def _mac(self, key: str, purpose: str, body: str) -> str:
        mac = self._hmacs[key].copy()
        mac.update(f"{purpose}:{body}".encode())
        return _base32(mac.digest()[:_MAC_BYTES])

    def address_token(self, purpose: str, *numbers: int) -> str:
        """`1a-2b-<mac>`: short enough for `reply+<token>@domain` and `bounces+<token>@domain`."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        body = "-".join(_b36(n) for n in numbers)
        return f"{body}-{self._mac(self._keys[0], purpose, body)}"

    # Per-message tokens: one HMAC, every purpose -------------------------------------------
    def _derived_hex(self, key: str, body: str) -> str:
        mac = self._derivers[key].copy()
        mac.update(body.encode())
        return mac.hexdigest()

    def message_tokens(self, subscriber_id: int, list_id: int, issue_id: int) -> MessageTokens:
        """The tokens of one message: `<s>-<l>-<i>-<20 hex>`, each with its purpose's slice."""
        body = f"{_b36(subscriber_id)}-{_b36(list_id)}-{_b36(issue_id)}"
        digest = self._derived_hex(self._keys[0], body)
        h = _DERIVED_HEX
        return MessageTokens(*(f"{body}-{digest[i * h:(i + 1) * h]}" for i in range(len(_DERIVED))))

    def _parse_derived(self, purpose: str, body: str, mac: str) -> tuple[int, ...]:
        try:
            numbers = tuple(int(part, 36) for part in body.split("-"))
        except ValueError:
            raise TokenError("malformed address token") from None
        if len(numbers) != 3:
            raise TokenError("address token does not verify")
        # "unsubscribe" accepts both of its slices; the caller tells them apart by the shape returned.
        slots = [_DERIVED[purpose]] + ([_DERIVED["unsubscribe-mail"]] if purpose == "unsubscribe" else [])
        h = _DERIVED_HEX
        for key in self._keys:
            digest = self._derived_hex(key, body)
            for index, picks in slots:
                if _same(mac, digest[index * h:(index + 1) * h]):
                    return tuple(numbers[i] for i in picks)
        raise TokenError("address token does not verify")

    def parse_address_token(self, purpose: str, token: str) -> tuple[int, ...]:
        token = token.strip().lower()
        body, _, mac = token.rpartition("-")
        if not body or not mac:
            raise TokenError("malformed address token")
        if len(mac) == _DERIVED_HEX and purpose in _DERIVED:
            return self._parse_derived(purpose, body, mac)
        for key in self._keys:
            if _same(mac, self._mac(key, purpose, body)):
                try:
                    return tuple(int(part, 36) for part in body.split("-"))
                except ValueError:
                    break
        raise TokenError("address token does not verify")


_B32_PAIRS = tuple(a + b for a in "abcdefghijklmnopqrstuvwxyz234567" for b in "abcdefghijklmnopqrstuvwxyz234567")


def _base32(mac: bytes) -> str:
    """Lowercase RFC 4648 base32 of the 10-byte MAC (16 letters, no padding), as
    `base64.b32encode(mac).decode().lower()` spells it, in eight table look-ups of ten bits:
    `b32encode` is a Python loop, about 2 us of the 4 the view link of every message cost."""
    n = int.from_bytes(mac, "big")
    return "".join([_B32_PAIRS[(n >> shift) & 1023] for shift in (70, 60, 50, 40, 30, 20, 10, 0)])


def _same(given: str, expected: str) -> bool:
    """Constant-time equality as bytes: `compare_digest` raises on a non-ASCII str, and a link is anyone's input."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _b36(n: int) -> str:
    if n < 0:
        raise ValueError("address tokens carry non-negative integers")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def local_part_token(address: str, local: str) -> str | None:
    """The token in `local+token@domain`, or None when the address is not of that shape."""
    addr = address.strip().strip("<>").lower()
    user, _, _domain = addr.rpartition("@")
    prefix = local.lower() + "+"
    if not user.startswith(prefix):
        return None
    return user[len(prefix):] or None
