"""Client-side token buckets that mirror a marketplace's usage plans, so calls wait instead of being throttled.

Amazon limits each operation per selling partner with a token bucket (a documented rate and burst). Calling
only when our own copy of that bucket holds a token keeps 429s rare and the call count at its minimum.
Buckets are per process (shared by every connector instance of that process through one ``RateLimiter``);
across processes the account lease (``connectors.sync``) keeps one account's sync in one process at a time,
which is enough where the limit is one seller's. Where it is the application's (eBay's daily quotas, shared by
every seller), a :class:`RedisBuckets` store keeps each bucket in Redis, updated atomically by one Lua script
on Redis's own clock, so every worker process of the fleet draws on the same bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.interfaces import ConnectorError


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


class Bucket(Protocol):
    """What a :class:`RateLimiter` asks of a bucket, kept in this process or in Redis."""

    rate: float
    burst: int

    def acquire(self) -> float: ...

    def drain(self) -> None: ...

    def set_rate(self, rate: float) -> None: ...


class BucketStoreUnavailable(ConnectorError):
    """The shared bucket store (Redis) can't be reached: the call is not made, rather than made unpaced."""


#: Refill, take and drain one bucket atomically, on Redis's clock (every process sees the same time).
#: KEYS[1] the bucket; ARGV rate, burst, "take" | "drain". Returns the seconds to wait (0: a token was taken),
#: as a string (a Lua number returned to Redis would be cut to an integer).
_BUCKET_SCRIPT = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil or stamp == nil then tokens, stamp = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if ARGV[3] == 'take' then
  if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
else
  tokens = math.min(tokens, 0)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class RedisBuckets:
    """Token buckets kept in Redis under ``prefix``: one bucket per name for every process that uses the same
    Redis and prefix. A bucket forgotten for longer than it takes to refill is as good as full, so keys
    expire then. Redis unreachable is :class:`BucketStoreUnavailable`, never an unpaced call."""

    def __init__(self, client: Any, *, prefix: str = "labelvault:ratelimit:") -> None:
        self._client = client
        self.prefix = prefix
        self._script = client.register_script(_BUCKET_SCRIPT)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "labelvault:ratelimit:") -> RedisBuckets:
        """A store on the Redis at ``url`` (short socket timeouts: a paced call must not hang on Redis)."""
        import redis

        return cls(redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5), prefix=prefix)

    def bucket(self, name: str, rate: float, burst: int, *, sleep: Callable[[float], None] = time.sleep) -> Bucket:
        """The bucket called ``name``, refilled at ``rate`` per second up to ``burst`` tokens."""
        return RedisTokenBucket(self, self.prefix + name, rate, burst, sleep=sleep)

    def run(self, key: str, rate: float, burst: int, op: str) -> float:
        """One atomic step of the bucket at ``key``: the seconds to wait before trying again (0: taken)."""
        import redis

        try:
            return float(self._script(keys=[key], args=[repr(rate), burst, op]))
        except redis.RedisError as exc:
            raise BucketStoreUnavailable(f"the shared rate-limit store is unreachable ({type(exc).__name__})") from None

    def close(self) -> None:
        """Close the store's connections (idempotent)."""
        self._client.close()


class RedisTokenBucket:
    """A :class:`TokenBucket` whose state is in Redis, shared by every process that names it."""

    def __init__(
        self, store: RedisBuckets, key: str, rate: float, burst: int, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._store = store
        self._key = key
        self._sleep = sleep

    def acquire(self) -> float:
        """Take one token, sleeping until there is one. Returns the seconds waited."""
        waited = 0.0
        while True:
            delay = self._store.run(self._key, self.rate, self.burst, "take")
            if delay <= 0:
                return waited
            delay += TokenBucket.SLACK / self.rate
            self._sleep(delay)
            waited += delay

    def drain(self) -> None:
        """Empty the bucket for every process: the platform said 429."""
        self._store.run(self._key, self.rate, self.burst, "drain")

    def set_rate(self, rate: float) -> None:
        """Follow a rate the platform announced (this process's view; the next step uses it)."""
        if rate > 0:
            self.rate = rate


class RateLimiter:
    """Token buckets per (scope, operation); ``speedup`` multiplies every rate (tests and benches only).

    With ``shared`` the buckets live in that store (one per scope and operation for every process using it),
    named under ``name``; without, in this process.
    """

    def __init__(
        self,
        plans: dict[str, UsagePlan],
        *,
        speedup: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: RedisBuckets | None = None,
        name: str = "",
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.plans = dict(plans)
        self.speedup = speedup
        self.shared = shared
        self._name = name
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def bucket(self, scope: str, operation: str) -> Bucket:
        """The bucket of ``operation`` for ``scope`` (a selling partner / account), made on first use."""
        key = (scope, operation)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                plan = self.plans.get(operation, UsagePlan(rate=1.0, burst=1))
                rate = plan.rate * self.speedup
                if self.shared is not None:
                    name = f"{self._name}:{scope}:{operation}"
                    bucket = self.shared.bucket(name, rate, plan.burst, sleep=self._sleep)
                else:
                    bucket = TokenBucket(rate, plan.burst, clock=self._clock, sleep=self._sleep)
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
