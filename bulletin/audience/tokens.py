"""Signed tokens with a purpose-specific salt, verified against every key (rotation).

Two shapes. URL tokens (confirm, unsubscribe, preferences, referral) carry a
small JSON payload and a timestamp, via itsdangerous. Address tokens (reply,
bounce) must fit in an email local part (64 octets, case-insensitive in
practice), so they are integers in base 36 plus a truncated HMAC in lowercase
base32. A token for one purpose never verifies for another: the purpose is in
the salt of both shapes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bulletin.errors import TokenError

PURPOSES = ("confirm", "unsubscribe", "preferences", "referral", "reply", "bounce", "message", "view", "export",
            "erase")
_MAC_BYTES = 10


class Signer:
    """Signs with the newest key, verifies with any of them (keys newest first)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise TokenError("no signing key configured")
        self._keys = list(keys)
        # Built once: a send signs several tokens per recipient, and building these is most of the cost.
        self._serializers: dict[str, URLSafeTimedSerializer] = {}
        self._hmacs = {key: hmac.new(key.encode(), digestmod=hashlib.sha256) for key in self._keys}

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
        digest = mac.digest()
        return base64.b32encode(digest[:_MAC_BYTES]).decode().lower().rstrip("=")

    def address_token(self, purpose: str, *numbers: int) -> str:
        """`1a-2b-<mac>`: short enough for `reply+<token>@domain` and `bounces+<token>@domain`."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown token purpose {purpose!r}")
        body = "-".join(_b36(n) for n in numbers)
        return f"{body}-{self._mac(self._keys[0], purpose, body)}"

    def parse_address_token(self, purpose: str, token: str) -> tuple[int, ...]:
        token = token.strip().lower()
        body, _, mac = token.rpartition("-")
        if not body or not mac:
            raise TokenError("malformed address token")
        for key in self._keys:
            if hmac.compare_digest(mac, self._mac(key, purpose, body)):
                try:
                    return tuple(int(part, 36) for part in body.split("-"))
                except ValueError:
                    break
        raise TokenError("address token does not verify")


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
