"""Rate limits, counted with the ``limits`` library: per client IP before authentication, per API client after.

:class:`RateLimits` holds the store (Redis when ``LABELVAULT_REDIS_URL`` is set, so every worker process
shares one count; else :class:`~app.limit_store.ProcessMemoryStorage`, one process only: the embedded
default), the strategy (``LABELVAULT_RATE_LIMIT_STRATEGY``) and both limit groups, parsed once at start-up.
A request is counted under ``(prefix, "ip:<address>", "global")`` or ``(prefix, "client:<id>",
"api-client")``, the identifiers flask-limiter used for the same limits, so the store keys (e.g.
``LIMITS:LIMITER/labelvault/ip:203.0.113.5/global/600/1/minute`` in Redis) stay the same across versions
and one count holds while old and new workers serve side by side.

- :meth:`RateLimits.limit_ip` runs right after the allowlist, before any authentication work
  (``create_app`` declares the order);
- :func:`limit_client` runs after authentication (app/api/auth.py).

When the store is unreachable the request is refused with 503 (:class:`~app.errors.RateLimitUnavailable`):
a limiter that lets requests through when it can't count is no limiter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from flask import Flask, current_app, g, request
from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import STRATEGIES, RateLimiter

from app.errors import RateLimited, RateLimitUnavailable
from app.limit_store import ProcessMemoryStorage
from app.settings import Settings

#: The scope of the per-client limit: one count per client across every API route.
CLIENT_SCOPE = "api-client"
#: The scope of the IP limit: one count per address across every path.
IP_SCOPE = "global"
#: Endpoints the IP limit leaves alone (still behind the global allowlist): local liveness probes, and the
#: readiness probe and metrics scrape, which must keep answering when the rate-limit store is down.
UNLIMITED_ENDPOINTS = frozenset({"health.liveness", "health.readiness", "observability.metrics"})


def make_storage(settings: Settings) -> Storage:
    """Redis when a Redis URL is set (shared by all processes), process memory otherwise."""
    if not settings.redis_url:
        return ProcessMemoryStorage()
    # Short timeouts: a store that doesn't answer refuses requests (503) quickly rather than holding them.
    storage = storage_from_string(settings.redis_url, wrap_exceptions=True, socket_connect_timeout=2, socket_timeout=2)
    if not isinstance(storage, Storage):  # an async+ scheme: not for a WSGI app
        raise ValueError(f"LABELVAULT_REDIS_URL names an asynchronous store ({settings.redis_url.split(':')[0]})")
    return storage


class RateLimits:
    """The app's rate limits: its store, its strategy, the IP and client limit groups and the key prefix."""

    def __init__(
        self,
        storage: Storage,
        *,
        strategy: str,
        prefix: str,
        ip: Sequence[RateLimitItem],
        client: Sequence[RateLimitItem],
    ) -> None:
        self.storage = storage
        self.strategy: RateLimiter = STRATEGIES[strategy](storage)
        self.prefix = prefix
        self.ip = tuple(ip)
        self.client = tuple(client)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            make_storage(settings),
            strategy=settings.rate_limit_strategy,
            prefix=settings.rate_limit_prefix,
            ip=parse_many(settings.rate_limit_ip),
            client=parse_many(settings.rate_limit_client),
        )

    def count(self, items: Sequence[RateLimitItem], key: str, scope: str) -> None:
        """Count one request against every limit of a group; :class:`RateLimited` if any is used up.

        Every limit of the group is counted, even after one is found used up (as flask-limiter counted a
        group), and the wait is the longest of the breached limits' windows.
        """
        try:
            breached = [item for item in items if not self.strategy.hit(item, self.prefix, key, scope)]
            if breached:
                stats = [self.strategy.get_window_stats(item, self.prefix, key, scope) for item in breached]
                raise RateLimited(max(1, math.ceil(max(s.reset_time for s in stats) - time.time())))
        except StorageError:
            raise RateLimitUnavailable() from None

    def limit_ip(self) -> None:
        """Before each request, right after the allowlist: count it against its address's limits (429)."""
        if request.endpoint not in UNLIMITED_ENDPOINTS:
            # g.client_ip is set by the allowlist check, which runs first: never the raw socket address
            # behind a trusted proxy, never a client-supplied header value.
            self.count(self.ip, f"ip:{g.client_ip}", IP_SCOPE)

    def throttle(self, name: str, seconds: int, amount: int = 1) -> bool:
        """Whether an event named ``name`` may happen now: ``amount`` times per ``seconds``, across all workers."""
        try:
            return self.strategy.hit(RateLimitItemPerSecond(amount, seconds), self.prefix, name)
        except StorageError:
            raise RateLimitUnavailable() from None


def rate_limits(app: Flask | None = None) -> RateLimits:
    """The app's rate limits."""
    limits: RateLimits = (app or current_app).extensions["labelvault.limits"]
    return limits


def limit_client(client_id: int) -> None:
    """Count this request against an authenticated client's limits; raises :class:`RateLimited` (429)."""
    limits = rate_limits()
    limits.count(limits.client, f"client:{client_id}", CLIENT_SCOPE)


def throttle(name: str, seconds: int, amount: int = 1) -> bool:
    """:meth:`RateLimits.throttle` of the current app: e.g. audit or log refusals without letting a flood
    of refused requests flood the audit chain. :class:`RateLimitUnavailable` if the store is down."""
    return rate_limits().throttle(name, seconds, amount)


def init_app(app: Flask, settings: Settings) -> RateLimits:
    """Build the app's rate limits from the settings; ``create_app`` puts :meth:`RateLimits.limit_ip` in the
    pipeline."""
    limits = app.extensions["labelvault.limits"] = RateLimits.from_settings(settings)
    return limits
