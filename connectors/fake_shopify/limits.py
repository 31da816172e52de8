"""Shopify's GraphQL rate limit: a leaky bucket of query-cost points per app and shop.

Shopify's numbers (shopify.dev, "GraphQL Admin API rate limits"): the restore rate is 100 points/s on the
standard plans, 200 on Advanced, 1,000 on Plus, 2,000 for Commerce Components; the bucket holds twenty
seconds of restore (2,000 points on standard); a single query may not request more than 1,000 points.
A query needs its *requested* cost in the bucket before it runs; afterwards the difference to its
*actual* cost is refunded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# plan -> restore rate in points per second (the bucket holds BUCKET_SECONDS of it)
PLANS: dict[str, float] = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}
BUCKET_SECONDS = 20


@dataclass(frozen=True)
class ThrottleStatus:
    """``extensions.cost.throttleStatus`` as Shopify reports it."""

    maximum_available: float
    currently_available: float
    restore_rate: float

    def as_json(self) -> dict[str, float]:
        """The JSON object Shopify puts under ``throttleStatus``."""
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": self.currently_available,
            "restoreRate": self.restore_rate,
        }


class CostBucket:
    """One app's bucket on one shop: ``maximum`` points, restored at ``rate`` per second. Starts full.

    Thread-safe. Restores on the monotonic wall clock (a rate limit is about how fast a client really
    calls), never past ``maximum``; ``currently_available`` is reported whole, as Shopify does.
    """

    def __init__(self, rate: float, maximum: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or maximum < 1:
            raise ValueError("rate must be positive and the bucket hold at least one point")
        self.rate = rate
        self.maximum = maximum
        self._clock = clock
        self._points = float(maximum)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _restore(self) -> None:
        now = self._clock()
        self._points = min(self.maximum, self._points + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, cost: int) -> bool:
        """Spend ``cost`` points if the bucket holds them; False means the query is throttled."""
        with self._lock:
            self._restore()
            if self._points >= cost:
                self._points -= cost
                return True
            return False

    def refund(self, points: int) -> None:
        """Give back what a query requested but did not use."""
        with self._lock:
            self._restore()
            self._points = min(self.maximum, self._points + max(0, points))

    def drain(self) -> None:
        """Empty the bucket (another app process of the same app spent it all)."""
        with self._lock:
            self._restore()
            self._points = 0.0

    def status(self) -> ThrottleStatus:
        """The bucket now, for ``throttleStatus``."""
        with self._lock:
            self._restore()
            return ThrottleStatus(float(self.maximum), float(int(self._points)), float(self.rate))


class FakeClock:
    """The platform's "now", moved by hand: pass it as ``FakeShopify(clock=...)``.

    It dates generated orders, ``updatedAt`` bumps, the 60-day order window, authorization codes and
    expiring tokens (an hour; refresh tokens 90 days). Rate limits are unaffected (they run on wall time).
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC)
        self._now = (start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)).replace(
            microsecond=0
        )
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> datetime:
        """Move time forward and return the new now."""
        delta = timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        if delta < timedelta(0):
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._now += delta
            return self._now
