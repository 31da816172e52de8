"""Pacing by Shopify's query cost: our copy of the shop's leaky bucket, corrected by every answer.

Shopify's GraphQL Admin API limits an app on a shop by query cost (shopify.dev, "GraphQL Admin API rate
limits"): a bucket of points (2,000 on standard plans) that restores at a fixed rate (100 points/s on
standard plans, more on Advanced and Plus); a query runs only if the bucket holds its *requested* cost, and
the difference to its *actual* cost is refunded. Every answer reports the bucket as
``extensions.cost.throttleStatus`` (``currentlyAvailable``, ``maximumAvailable``, ``restoreRate``).

So a query waits here until our copy of the bucket covers its requested cost, then spends it; the answer
replaces our copy with Shopify's own numbers (which include the refund and any other client of the same
app on the shop). A ``THROTTLED`` answer means the copy was wrong: it is corrected from that answer and the
retry waits again. Buckets are per process and per shop, shared by every connector of that process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Standard plans: 100 points/s restored, twenty seconds of it held (shopify.dev).
STANDARD_RESTORE_RATE = 100.0
STANDARD_MAXIMUM = 2000.0
#: Shopify refuses a single query that requests more than this, on every plan.
SINGLE_QUERY_MAX_COST = 1000


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """``extensions.cost.throttleStatus`` of one answer."""

    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def from_extensions(cls, extensions: Any) -> ThrottleStatus | None:
        """Read it from an answer's ``extensions``; ``None`` when absent or malformed."""
        if not isinstance(extensions, Mapping):
            return None
        cost = extensions.get("cost")
        status = cost.get("throttleStatus") if isinstance(cost, Mapping) else None
        if not isinstance(status, Mapping):
            return None
        values = [status.get(k) for k in ("maximumAvailable", "currentlyAvailable", "restoreRate")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return None
        maximum, current, rate = (float(v) for v in values)  # type: ignore[arg-type]
        if rate <= 0 or maximum <= 0 or current < 0:
            return None
        return cls(maximum, min(current, maximum), rate)


class CostBucket:
    """Our copy of one shop's bucket. Thread-safe; starts as a standard plan's, full."""

    #: Seconds added to every wait: Shopify's copy restores from when our query *arrived*.
    SLACK = 0.005

    def __init__(
        self,
        *,
        rate: float = STANDARD_RESTORE_RATE,
        maximum: float = STANDARD_MAXIMUM,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.maximum = maximum
        self._available = maximum
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def _restore(self) -> None:
        now = self._clock()
        self._available = min(self.maximum, self._available + (now - self._stamp) * self.rate)
        self._stamp = now

    def available(self) -> float:
        """Points the bucket holds now, as far as we know."""
        with self._lock:
            self._restore()
            return self._available

    def spend(self, cost: float) -> float:
        """Wait until the bucket covers ``cost`` (at most its maximum), then take it; returns seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._restore()
                need = min(float(cost), self.maximum)
                if self._available >= need:
                    self._available -= need
                    return waited
                delay = (need - self._available) / self.rate + self.SLACK
            self._sleep(delay)
            waited += delay

    def observe(self, status: ThrottleStatus) -> None:
        """Adopt Shopify's numbers from an answer: its bucket after the query (refund included), its plan's
        rate and size. Restoring continues from now, which under-counts by the answer's travel time only."""
        with self._lock:
            self._restore()
            self.rate, self.maximum = status.restore_rate, status.maximum_available
            self._available = min(self.maximum, status.currently_available)


class CostPacer:
    """The process's buckets by scope (a shop domain); ``speedup`` scales the assumed rate before an answer."""

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, CostBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, scope: str) -> CostBucket:
        """The bucket of ``scope``, made (as a full standard plan's) on first use."""
        with self._lock:
            bucket = self._buckets.get(scope)
            if bucket is None:
                bucket = self._buckets[scope] = CostBucket(
                    rate=STANDARD_RESTORE_RATE * self.speedup, clock=self._clock, sleep=self._sleep
                )
            return bucket
