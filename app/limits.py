"""Rate limits (flask-limiter): per client IP before authentication, per API client after it.

The IP limit is flask-limiter's application limit, checked in its before-request hook (moved to run right
after the allowlist). The client limit is counted after authentication by the same limiter's rate-limit
strategy (``Limiter.limiter``: the same storage, strategy and key prefix), with the limit string parsed
once: flask-limiter's per-request route machinery (resolving decorated limits, exemptions and, for its
context-manager form, a stack trace) cost as much as all three SQL reads of a label release together.

Counters live in Redis when ``LABELVAULT_REDIS_URL`` is set, so every worker process shares one count, and
in process memory otherwise (one process only: the embedded default). When the store is unreachable the
request is refused with 503: a limiter that lets requests through when it can't count is no limiter.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, RateLimitItemPerSecond, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage
from werkzeug.exceptions import TooManyRequests

from app.errors import problem
from app.settings import Settings

#: flask-limiter's scope for the per-client limit: one count per client across every API route.
CLIENT_SCOPE = "api-client"


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


class ClientRateLimited(TooManyRequests):
    """The API client's own limit is used up; ``retry_after`` seconds until its window frees a request."""

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def limit_client() -> None:
    """Count this request against the authenticated client's limits; raises :class:`ClientRateLimited` (429).

    Every limit of ``LABELVAULT_RATE_LIMIT_CLIENT`` is counted, as flask-limiter counts a limit group; the
    store keys are flask-limiter's own (prefix, ``client:<id>``, scope), shared by every worker.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    items: list[RateLimitItem] = app.extensions["labelvault.client_limits"]
    strategy = limiter(app).limiter
    ids = (app.extensions["labelvault"].settings.rate_limit_prefix, f"client:{g.api_client.id}", CLIENT_SCOPE)
    breached = [item for item in items if not strategy.hit(item, *ids)]
    if breached:
        reset = max(strategy.get_window_stats(item, *ids).reset_time for item in breached)
        raise ClientRateLimited(max(1, math.ceil(reset - time.time())))


def throttle(name: str, seconds: int, amount: int = 1) -> bool:
    """Whether an event named ``name`` may happen now: ``amount`` times per ``seconds``, across all workers.

    Used to audit and log refusals without letting a flood of refused requests flood the audit chain.
    """
    item = RateLimitItemPerSecond(amount, seconds)
    return limiter().limiter.hit(item, current_app.extensions["labelvault"].settings.rate_limit_prefix, name)


def _retry_after() -> int:
    current = limiter().current_limit
    if current is None:
        return 1
    return max(1, math.ceil(current.window.reset_time - time.time()))


def init_app(app: Flask, settings: Settings) -> None:
    """Create the app's limiter; its IP limit runs right after the allowlist check (see app/allowlist.py)."""
    options: dict[str, str | int] = {"wrap_exceptions": 1}
    if settings.redis_url:
        options.update(socket_connect_timeout=2, socket_timeout=2)
    lim = Limiter(
        key_func=_ip_key,
        application_limits=[settings.rate_limit_ip],
        storage_uri=settings.redis_url or "lv-memory://",
        storage_options=options,
        strategy=settings.rate_limit_strategy,
        key_prefix=settings.rate_limit_prefix,
        headers_enabled=False,
        swallow_errors=False,
        in_memory_fallback_enabled=False,
    )
    lim.init_app(app)
    # The limiter appends its check to before_request; the pipeline wants it straight after the allowlist
    # (DESIGN.md: client IP → global allowlist → ... the IP limit counts before any authentication work).
    from app.allowlist import check_request

    funcs = app.before_request_funcs.setdefault(None, [])
    check = next(f for f in funcs if getattr(f, "__func__", None) is Limiter._check_request_limit)
    funcs.remove(check)
    funcs.insert(funcs.index(check_request) + 1 if check_request in funcs else 0, check)
    lim.request_filter(lambda: request.endpoint == "health.liveness")
    app.extensions["labelvault.limiter"] = lim
    app.extensions["labelvault.client_limits"] = parse_many(settings.rate_limit_client)

    @app.errorhandler(RateLimitExceeded)
    @app.errorhandler(ClientRateLimited)
    def _too_many(exc: RateLimitExceeded | ClientRateLimited) -> Response:
        from app.allowlist import audit_refusal

        audit_refusal("rate-limited", throttled=True)
        resp = problem(429, "rate limit exceeded; retry later", kind="rate-limited")
        retry = exc.retry_after if isinstance(exc, ClientRateLimited) else _retry_after()
        resp.headers["Retry-After"] = str(retry)
        return resp

    @app.errorhandler(StorageError)
    def _store_down(_exc: StorageError) -> Response:
        app.logger.error("rate-limit store unreachable; refusing requests (fail closed)")
        resp = problem(503, "rate limiting is unavailable; retry later", kind="rate-limit-unavailable")
        resp.headers["Retry-After"] = "5"
        return resp
