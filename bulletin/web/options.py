"""Web-only knobs (rate limits, body size, resend window), kept out of the shared Settings.

They are read from `BULLETIN_WEB_*` variables by the uvicorn factory so that
every worker process of `bulletin serve --workers N` gets the same values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import timedelta

from bulletin.errors import ConfigError


@dataclass(frozen=True)
class WebOptions:
    """Limits of the web app; defaults suit a council bulletin, tests pass tighter ones."""

    ip_limit: int = 20  # state-changing form posts per IP ...
    ip_window: float = 600.0  # ... per this many seconds
    address_limit: int = 5  # signups naming one address ...
    address_window: float = 3600.0  # ... per this many seconds
    confirm_window: float = 900.0  # at most one confirmation mail per address in this many seconds
    max_body: int = 32 * 1024  # bytes of a form post
    notice_interval: float = 1.0  # seconds between runs of the in-app notice sender; 0 = off (run `bulletin notices send`)
    lists_ttl: float = 5.0  # seconds the signup page keeps its list of public lists before reading it again

    @property
    def confirm_delta(self) -> timedelta:
        return timedelta(seconds=self.confirm_window)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> WebOptions:
        """`BULLETIN_WEB_IP_LIMIT=...` and so on; a bad value names the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"BULLETIN_WEB_{f.name.upper()}"
            raw = env.get(name)
            if raw is None:
                continue
            try:
                if f.type == "bool":
                    values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                elif f.type == "int":
                    values[f.name] = int(raw)
                else:
                    values[f.name] = float(raw)
            except ValueError:
                raise ConfigError(f"setting '{name}': {raw!r} is not a number") from None
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these options in a worker process."""
        return {f"BULLETIN_WEB_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}
