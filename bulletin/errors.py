"""One small hierarchy of user-facing errors.

The CLI turns any `BulletinError` into a single line and an exit code, so a
user mistake never shows a traceback. Each error carries where it happened
(file, line, field or address) because "something is wrong" helps nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^\s/]+@")
_QUERY = re.compile(r"(?P<head>[?&;](?:password|passwd|pass|pwd|secret|token|api_?key)=)[^&#\s'\"]+", re.I)


def mask_secrets(text: str) -> str:
    """Passwords in URLs masked: the user-info part (`user:secret@`) and query parameters (`?password=`).

    Used by `config show` and by every error's text, because a database URL that
    fails to connect is exactly what ends up pasted into a ticket.
    """
    text = _USERINFO.sub(lambda m: f"{m.group('head')}***@", text)
    return _QUERY.sub(lambda m: f"{m.group('head')}***", text)


class BulletinError(Exception):
    """Base of every error a user can cause and fix."""

    exit_code: int = 1

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return mask_secrets(f"{self.where}: {self.message}" if self.where else self.message)


def location(file: str | None, line: int | None = None, field: str | None = None) -> str | None:
    """Format `file:line: field` with whatever parts are known."""
    parts = []
    if file:
        parts.append(f"{file}:{line}" if line else file)
    if field:
        parts.append(f"field '{field}'")
    return ": ".join(parts) or None


class ContentError(BulletinError):
    """Bad issue content: TOML, front matter, block type or field."""

    exit_code = 2


class ContentErrors(ContentError):
    """Several content mistakes at once: an editor fixes them in one pass, not one build per mistake."""

    def __init__(self, errors: list[ContentError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{len(errors)} mistakes in the issue:\n{lines}")

    @staticmethod
    def of(errors: list[ContentError]) -> ContentError:
        """The one error itself when there is one (its usual one line), else all of them."""
        return errors[0] if len(errors) == 1 else ContentErrors(errors)


class ConfigError(BulletinError):
    """A setting that cannot be used as given."""

    exit_code = 2


class AddressError(BulletinError):
    """An email address that cannot be used."""

    exit_code = 2


class NotFound(BulletinError):
    """An issue, list, subscriber or record that does not exist."""

    exit_code = 3


class StateError(BulletinError):
    """An operation that is not allowed in the current state."""

    exit_code = 4


class TokenError(BulletinError):
    """A signed token that is forged, expired, used or for another purpose."""

    exit_code = 5


class CheckFailed(BulletinError):
    """Pre-send checks found errors."""

    exit_code = 6


class DeliveryError(BulletinError):
    """Sending could not start or continue."""

    exit_code = 7


@dataclass(frozen=True)
class RowError:
    """One bad row of an import, reported with its line number while good rows go in."""

    line: int
    reason: str
    address: str | None = None
