"""Client-side token buckets that mirror a marketplace's usage plans, so calls wait instead of being throttled.

Amazon limits each operation per selling partner with a token bucket (a documented rate and burst). Calling
only when our own copy of that bucket holds a token keeps 429s rare and the call count at its minimum.
Buckets are per process (shared by every connector instance of that process through one ``RateLimiter``);
across processes the account lease (``connectors.sync``) keeps one account's sync in one process at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UsagePlan:
    """A documented rate (requests per second) and burst for one operation."""

    rate: float
    burst: int


class TokenBucket:
    """``burst`` tokens refilled at ``rate`` per second; starts full, as Amazon's do. Thread-safe."""

    #: Extra wait, in tokens' worth of refill time, before a call that had to wait for a token.
    SLACK = 0.02

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self) -> float:
        """Take one token, sleeping until there is one. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                # Aim a little behind the marketplace's copy of the bucket (which started when our first
                # request arrived, not when we sent it): a 429 costs a whole call and a backoff.
                delay = (1.0 - self._tokens + self.SLACK) / self.rate
            self._sleep(delay)
            waited += delay

    def drain(self) -> None:
        """Empty the bucket: the marketplace said 429, so its copy is empty whatever ours thought."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)

    def set_rate(self, rate: float) -> None:
        """Follow a rate the marketplace announced (``x-amzn-RateLimit-Limit``)."""
        if rate > 0:
            with self._lock:
                self._refill()
                self.rate = rate


class RateLimiter:
    """Token buckets per (scope, operation); ``speedup`` multiplies every rate (tests and benches only)."""

    def __init__(
        self,
        plans: dict[str, UsagePlan],
        *,
        speedup: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.plans = dict(plans)
        self.speedup = speedup
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, scope: str, operation: str) -> TokenBucket:
        """The bucket of ``operation`` for ``scope`` (a selling partner / account), made on first use."""
        key = (scope, operation)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                plan = self.plans.get(operation, UsagePlan(rate=1.0, burst=1))
                bucket = TokenBucket(plan.rate * self.speedup, plan.burst, clock=self._clock, sleep=self._sleep)
                self._buckets[key] = bucket
            return bucket

    def acquire(self, scope: str, operation: str) -> float:
        """Wait for a token of ``operation`` in ``scope``; returns the seconds waited."""
        return self.bucket(scope, operation).acquire()

    def throttled(self, scope: str, operation: str) -> None:
        """Record a 429: the next call waits for a whole fresh token."""
        self.bucket(scope, operation).drain()

    def announce(self, scope: str, operation: str, rate: float) -> None:
        """Adopt the rate the marketplace says it enforces for this operation (taken as is: it's the truth)."""
        self.bucket(scope, operation).set_rate(rate)
