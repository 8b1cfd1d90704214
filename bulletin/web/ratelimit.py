"""In-process sliding-window rate limits, per client IP and per address hash.

Limitation: each worker process counts on its own, so with `--workers N` the
effective limit is up to N times the configured one, and a restart forgets
every count. A deployment that needs exact limits across workers or machines
puts them in front of the app (the reverse proxy) or in the database; the
confirmation mail itself is limited in the database (`confirmation_sent_at`),
so no address gets more than one per window whatever the worker count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `limit` hits per key within `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def hit(self, key: str) -> bool:
        """Count one hit; False when the key is over its limit (the hit is not counted then)."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            return True

    def _sweep(self, now: float) -> None:
        # Forget idle keys once a window so memory follows the active clients, not all clients ever seen.
        if now - self._last_sweep < self.window:
            return
        self._last_sweep = now
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]:
            del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)
