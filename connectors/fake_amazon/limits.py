"""Time for the fake: Amazon's token buckets (wall time) and a settable clock (the marketplace's "now")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class TokenBucket:
    """Amazon's usage plan for one operation and selling partner: ``burst`` tokens, refilled at ``rate`` per second.

    Starts full. Thread-safe. Refills on the monotonic wall clock, not the marketplace clock, because a rate
    limit is about how fast a client really calls.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one token if there is one; False means the caller is throttled (HTTP 429)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        """Tokens available now (for diagnostics)."""
        with self._lock:
            elapsed = self._clock() - self._stamp
            return min(float(self.burst), self._tokens + elapsed * self.rate)


class FakeClock:
    """A marketplace clock tests move by hand: pass it as ``FakeAmazon(clock=...)``.

    It drives everything dated: generated order dates, the two-minute rule, token lifetimes (3600 s) and
    pagination-token lifetimes (24 h, unless the fake is told otherwise). Rate limits are unaffected (they
    run on wall time).
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
