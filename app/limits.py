"""Rate limits (flask-limiter): per client IP before authentication, per API client after it.

flask-limiter's ``Limiter`` holds the configuration: the storage (Redis when ``LABELVAULT_REDIS_URL`` is
set, so every worker process shares one count; process memory otherwise, one process only: the embedded
default), the strategy and the key prefix. Both limits are counted by that limiter's own rate-limit
strategy (``Limiter.limiter``), under the store keys flask-limiter gives them (prefix, ``ip:<address>`` with
its application-limit scope, or ``client:<id>`` with :data:`CLIENT_SCOPE`), with the limit strings parsed
once at start-up:

- :func:`limit_ip` runs right after the allowlist, before any authentication work;
- :func:`limit_client` runs after authentication (app/auth.py).

flask-limiter's own per-request hooks are not installed: resolving decorated limits, exemptions and
response headers on every request cost a fifth of the CPU of a whole label release, for limits that are the
same on every request. When the store is unreachable the request is refused with 503: a limiter that lets
requests through when it can't count is no limiter.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage
from werkzeug.exceptions import TooManyRequests

from app.errors import problem
from app.settings import Settings

#: flask-limiter's scope for the per-client limit: one count per client across every API route.
CLIENT_SCOPE = "api-client"
#: flask-limiter's scope for an application-wide limit: the IP limit is one count per address, all routes.
IP_SCOPE = "global"
#: Endpoints the IP limit leaves alone (still behind the global allowlist): local liveness probes, and the
#: readiness probe and metrics scrape, which must keep answering when the rate-limit store is down.
UNLIMITED_ENDPOINTS = frozenset({"health.liveness", "health.readiness", "observability.metrics"})


class ProcessMemoryStorage(MemoryStorage):
    """limits' in-memory storage, with its expiry sweep run inline at most once a second.

    The stock storage starts a timer thread for the sweep whenever the previous one has finished, i.e.
    one thread per 10 ms of steady traffic; every count stays exact here because each read checks its
    own key's expiry, and the sweep only bounds memory. ``lv-memory://`` in settings selects it (the
    embedded default: one process, no Redis).
    """

    STORAGE_SCHEME = ["lv-memory"]  # noqa: RUF012 (the name limits registers; declared so by its base)
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    def _MemoryStorage__schedule_expiry(self) -> None:  # the name-mangled hook incr() and acquire_entry() call
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def limiter(app: Flask | None = None) -> Limiter:
    """The app's limiter."""
    lim: Limiter = (app or current_app).extensions["labelvault.limiter"]
    return lim


def _ip_key() -> str:
    # Set by the allowlist check, which runs first on every request; never the raw socket address behind a
    # trusted proxy, never a client-supplied header value.
    return f"ip:{g.client_ip}"


class RateLimited(TooManyRequests):
    """A limit is used up; ``retry_after`` seconds until its window frees a request."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def _count(items: list[RateLimitItem], key: str, scope: str) -> None:
    """Count one request against every limit of a group; raise :class:`RateLimited` if any is used up.

    Every limit of the group is counted, as flask-limiter counts a limit group; the wait is the longest
    of the breached limits' windows.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    strategy = limiter(app).limiter
    ids = (app.extensions["labelvault"].settings.rate_limit_prefix, key, scope)
    breached = [item for item in items if not strategy.hit(item, *ids)]
    if breached:
        reset = max(strategy.get_window_stats(item, *ids).reset_time for item in breached)
        raise RateLimited(max(1, math.ceil(reset - time.time())))


def limit_ip() -> None:
    """Before each request, right after the allowlist: count it against its address's limits (429)."""
    if request.endpoint not in UNLIMITED_ENDPOINTS:
        _count(current_app.extensions["labelvault.ip_limits"], _ip_key(), IP_SCOPE)


def limit_client() -> None:
    """Count this request against the authenticated client's limits; raises :class:`RateLimited` (429)."""
    _count(current_app.extensions["labelvault.client_limits"], f"client:{g.api_client.id}", CLIENT_SCOPE)


def throttle(name: str, seconds: int, amount: int = 1) -> bool:
    """Whether an event named ``name`` may happen now: ``amount`` times per ``seconds``, across all workers.

    Used to audit and log refusals without letting a flood of refused requests flood the audit chain.
    """
    item = RateLimitItemPerSecond(amount, seconds)
    return limiter().limiter.hit(item, current_app.extensions["labelvault"].settings.rate_limit_prefix, name)


def init_app(app: Flask, settings: Settings) -> None:
    """Create the app's limiter; its IP limit runs right after the allowlist check (see app/allowlist.py)."""
    options: dict[str, str | int] = {"wrap_exceptions": 1}
    if settings.redis_url:
        options.update(socket_connect_timeout=2, socket_timeout=2)
    lim = Limiter(
        key_func=_ip_key,
        storage_uri=settings.redis_url or "lv-memory://",
        storage_options=options,
        strategy=settings.rate_limit_strategy,
        key_prefix=settings.rate_limit_prefix,
        headers_enabled=False,
        swallow_errors=False,
        in_memory_fallback_enabled=False,
    )
    lim.init_app(app)  # builds the storage and strategy from the settings above
    _remove_request_hooks(app, lim)
    # DESIGN.md: client IP → global allowlist → IP limit, before any authentication work.
    from app.allowlist import check_request

    funcs = app.before_request_funcs.setdefault(None, [])
    funcs.insert(funcs.index(check_request) + 1 if check_request in funcs else 0, limit_ip)
    app.extensions["labelvault.limiter"] = lim
    app.extensions["labelvault.ip_limits"] = parse_many(settings.rate_limit_ip)
    app.extensions["labelvault.client_limits"] = parse_many(settings.rate_limit_client)

    @app.errorhandler(RateLimited)
    def _too_many(exc: RateLimited) -> Response:
        from app.allowlist import audit_refusal

        audit_refusal("rate-limited", throttled=True)
        resp = problem(429, "rate limit exceeded; retry later", kind="rate-limited")
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.errorhandler(StorageError)
    def _store_down(_exc: StorageError) -> Response:
        app.logger.error("rate-limit store unreachable; refusing requests (fail closed)")
        resp = problem(503, "rate limiting is unavailable; retry later", kind="rate-limit-unavailable")
        resp.headers["Retry-After"] = "5"
        return resp


def _remove_request_hooks(app: Flask, lim: Limiter) -> None:
    """Take out the check, header and context hooks ``Limiter.init_app`` installs (the module docstring says why)."""
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        funcs: list[Any] = hooks.get(None, [])
        funcs[:] = [f for f in funcs if getattr(f, "__self__", None) is not lim and getattr(f, "args", ()) != (lim,)]
