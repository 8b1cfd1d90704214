"""Delivery stage: per-recipient messages, the ledger, the send engine, the public archive.

Front door: `service` (send, test proofs, dry run, pause, resume, cancel, status,
worker), `status` (an issue's sends on a session, without loading the send engine that
`service` loads), `readout` (the figures of status and report in driver SQL, which
`bulletin status` and `report` can run without SQLAlchemy), `archive` (the public archive's queries), `feed` (Atom feeds of public lists), `retention` (`db compact`), `outbox` (a person's copies in the Maildir outbox), `preflight` (what `send` checks before queueing), `counts` (the ledger's running counts, for status and report), `SendOptions` and `Tally`.
Internal: `ledger` (every SQL statement on sends and deliveries but status's reads), `engine`,
`processes`, `message` (skeleton filling), `issues`. Transports, DKIM and single
notices live below the stages in `bulletin.messenger`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulletin.delivery.engine import SendOptions, Tally

__all__ = ["SendOptions", "Tally", "archive", "counts", "feed", "outbox", "preflight", "readout", "retention",
           "service", "status"]


def __getattr__(name: str) -> Any:
    """`SendOptions` and `Tally` come from `engine` on first use: the report stage reads `counts` and
    `bulletin status` reads `status` through this package, and loading it must not load the send engine
    (the ledger, messages, transports)."""
    if name in ("SendOptions", "Tally"):
        from bulletin.delivery import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
