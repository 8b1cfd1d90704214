"""Password rules and hashing: Argon2id (argon2-cffi's defaults, RFC 9106's second recommendation).

A password is at least 12 characters and not one of the few hundred that
every guessing list starts with; the hash carries its own parameters, so a
later change of defaults rehashes at the next sign-in instead of breaking logins.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bulletin.errors import StateError

MIN_LENGTH = 12
_HASHER = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4

# The head of the usual guessing lists, and the obvious ones for a council office.
COMMON = frozenset("""
123456789012 1234567890123 12345678901234 qwertyuiop12 qwertyuiopas 1q2w3e4r5t6y 1qaz2wsx3edc
password1234 password12345 passwordpassword password123! Password1234 Password123! p@ssw0rd1234
iloveyou1234 letmein12345 welcome12345 Welcome12345 Welcome123!! changeme1234 changemenow!
administrator admin1234567 adminadmin12 administrator1 abc123456789 abcdefghijkl aaaaaaaaaaaa
111111111111 000000000000 123123123123 qwerty123456 qwertyqwerty football1234 baseball1234
sunshine1234 princess1234 dragon123456 monkey123456 trustno1trustno1 superman1234 starwars1234
correcthorsebatterystaple council12345 Council12345 newsletter12 bulletin1234 Bulletin1234
summer202425 Summer2024!! winter202425 Winter2024!! spring202425 autumn202425 january12345
""".split())


def check_password(password: str) -> None:
    """Raise StateError unless the password is long enough and not a common one."""
    if len(password) < MIN_LENGTH:
        raise StateError(f"the password must be at least {MIN_LENGTH} characters", where="password")
    if password in COMMON or password.lower() in COMMON or len(set(password)) < 4:
        raise StateError("the password is too common; choose another", where="password")


def hash_password(password: str) -> str:
    check_password(password)
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


@functools.cache
def dummy_hash() -> str:
    """A hash of nothing anyone knows: unknown accounts are checked against it, so they take as long.

    Made on first sign-in, not at import: an Argon2id hash costs ~0.1 s, which every CLI command paid.
    """
    return _HASHER.hash("no account has this password: 6c0a1f")
