"""Rate limits counted in the database, so every worker process (and machine) shares them.

Counts live in `rate_count` as (key, bucket, hits), one fixed bucket of
`window` seconds per row. A hit is one upsert that returns the bucket's new
count; the limit is checked against a sliding estimate (this bucket plus the
previous one weighted by how much of it is still inside the window), which
stops the doubling at bucket edges that plain fixed windows allow. Every hit
is counted, refused ones too, so a client that keeps hammering stays refused.
Old buckets are deleted once per window by whichever process notices first.

Reusable by any form of the app (signup, data requests, the staff console):
`limiter.hit(session, key)` inside the caller's unit of work; keys are
namespaced by the limiter's `name`. Addresses should be passed hashed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from bulletin.models import RateCount


class RateLimiter:
    """At most `limit` hits per key within `window` seconds, across every process using the database."""

    def __init__(self, name: str, limit: int, window: float, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.limit = limit
        self.window = window
        self._clock = clock
        self._swept = -1

    def hit(self, session: Session, key: str) -> bool:
        """Count one hit for `key`; False when it is over the limit. Commits with the caller's session."""
        now = self._clock()
        bucket = int(now // self.window)
        full_key = f"{self.name}:{key}"[:128]
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = insert(RateCount).values(key=full_key, bucket=bucket, hits=1)
        stmt = stmt.on_conflict_do_update(index_elements=["key", "bucket"],
                                          set_={"hits": RateCount.__table__.c.hits + 1})  # type: ignore[attr-defined]
        current = int(session.execute(stmt.returning(RateCount.__table__.c.hits)).scalar_one())  # type: ignore[attr-defined]
        previous = session.exec(select(RateCount.hits).where(RateCount.key == full_key,
                                                             RateCount.bucket == bucket - 1)).first() or 0
        if self._swept != bucket:
            self._swept = bucket
            session.exec(delete(RateCount).where(RateCount.bucket < bucket - 1,  # type: ignore[call-overload]
                                                 RateCount.key.startswith(f"{self.name}:")))  # type: ignore[attr-defined]
        inside = 1.0 - (now - bucket * self.window) / self.window  # share of the previous bucket still in the window
        return current + previous * inside <= self.limit
