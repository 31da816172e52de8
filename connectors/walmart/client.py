"""A small Walmart Marketplace HTTP client: client-credentials tokens, per-API limits, bounded retries.

Every call carries Walmart's headers: ``WM_SEC.ACCESS_TOKEN`` (a 900-second token from ``POST /v3/token``,
renewed a minute before it expires), a fresh ``WM_QOS.CORRELATION_ID`` and ``WM_SVC.NAME``. Tokens and the
client secret travel only in headers, which nothing here logs; URLs carry only order-search parameters
(dates, limits, Walmart's cursor), so httpx's own request log stays PII-free. Error messages name the
operation, the HTTP status and Walmart's error *code*, never a body or a token.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.interfaces import AuthRefused, BadResponse, ConnectorStats, MarketplaceUnavailable, ThrottledOut
from connectors.ratelimit import RateLimiter, UsagePlan

log = logging.getLogger(__name__)

for _name in ("httpx", "httpcore"):  # the transport's own logs: see connectors/amazon/client.py
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

#: ``WM_SVC.NAME``: Walmart asks for its service name on every call.
SERVICE_NAME = "Walmart Marketplace"
TOKEN_OPERATION = "tokenAPI"  # noqa: S105 - an operationId, not a secret
#: Walmart's documented per-API limits (US Marketplace, "Rate limiting"): 5000 requests a minute for the
#: order reads, per seller, each API its own bucket refilled continuously. The token API's is undocumented:
#: this keeps a broken loop from hammering it.
USAGE_PLANS: dict[str, UsagePlan] = {
    "getAllOrders": UsagePlan(rate=5000 / 60, burst=5000),
    "getAnOrder": UsagePlan(rate=5000 / 60, burst=5000),
    # Ship order lines: the fake serves it with the Orders API's limit (Walmart's documents name no other).
    "shippingUpdates": UsagePlan(rate=5000 / 60, burst=5000),
    TOKEN_OPERATION: UsagePlan(rate=1.0, burst=5),
}


@dataclass(frozen=True, slots=True)
class WalmartCredentials:
    """An account's Walmart API key: client id and client secret (sealed at rest, never printed)."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> WalmartCredentials:
        """From the dict stored with :func:`vault.marketplace_accounts.seal_credentials`."""
        try:
            return cls(secrets["client_id"], secrets["client_secret"])
        except KeyError as exc:
            raise AuthRefused(f"stored credentials lack {exc.args[0]}") from None

    def as_secrets(self) -> dict[str, str]:
        """The dict to seal."""
        return {"client_id": self.client_id, "client_secret": self.client_secret}

    def basic(self) -> str:
        """The token API's ``Authorization`` header value."""
        return "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode("ascii")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per call, exponential backoff with jitter, and per-request timeouts."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: Token renewals allowed per call when Walmart answers 401 (then the key is really refused).
    auth_refreshes: int = 2

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout: every phase bounded."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)


@dataclass(slots=True)
class _Token:
    value: str = field(repr=False)
    expires_at: datetime


class RequestRefused(BadResponse):
    """A 4xx answer the client doesn't retry; ``status`` and Walmart's error ``code`` say which (no body)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error_code(response: httpx.Response) -> str:
    """Walmart's first error code (``REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API``), if it is a plain one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "?"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):  # Walmart's XML-shaped JSON: {"errors": {"error": [...]}}
        errors = errors.get("error")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = str(first.get("code", ""))
    return code if code.replace("_", "").replace(".", "").isalnum() and len(code) <= 80 else "?"


class WalmartClient:
    """Calls Walmart Marketplace APIs for one seller, staying inside its per-API limits."""

    def __init__(
        self,
        *,
        credentials: WalmartCredentials,
        base_url: str,
        token_url: str,
        limiter: RateLimiter,
        scope: str,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self.limiter = limiter
        self.scope = scope
        self.retry = retry or RetryPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._http = httpx.Client(
            timeout=self.retry.timeout(),
            headers={"accept": "application/json", "WM_SVC.NAME": SERVICE_NAME},
            transport=transport,
            follow_redirects=False,
        )
        self._lock = threading.RLock()
        self._access: _Token | None = None
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.retries = 0
        self.token_refreshes = 0

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far."""
        return ConnectorStats(
            calls=sum(self.calls.values()),
            throttled=sum(self.throttled.values()),
            retries=self.retries,
            token_refreshes=self.token_refreshes,
            per_operation=dict(self.calls),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _backoff(self, operation: str, attempt: int, why: str) -> None:
        """Sleep before retry ``attempt`` (1-based): exponential, with full jitter, scaled by the speed-up."""
        self.retries += 1
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling) / self.limiter.speedup
        log.info("%s: %s, retry %d in %.2fs", operation, why, attempt, delay)
        self._sleep(delay)

    # -- tokens ---------------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token: the cached one, or a new one once it is within a minute of expiring."""
        with self._lock:
            if self._access is not None and self._clock() < self._access.expires_at:
                return self._access.value
            body = self._token_call()
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise BadResponse("tokenAPI: response has no access_token")
            expires_in = body.get("expires_in")
            seconds = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 900.0
            self._access = _Token(token, self._clock() + timedelta(seconds=seconds - min(60.0, seconds / 10)))
            self.token_refreshes += 1
            return token

    def _token_call(self) -> dict[str, Any]:
        attempt = 0
        while True:
            self.limiter.acquire(self.scope, TOKEN_OPERATION)
            self.calls[TOKEN_OPERATION] += 1
            try:
                response = self._http.post(
                    self.token_url,
                    data={"grant_type": "client_credentials"},
                    headers={"Authorization": self._credentials.basic(), "WM_QOS.CORRELATION_ID": str(uuid.uuid4())},
                )
            except httpx.TransportError as exc:
                attempt = self._transport_failed(TOKEN_OPERATION, attempt, exc)
                continue
            status = response.status_code
            if status == 200:
                return self._json(TOKEN_OPERATION, response)
            if status == 429 or status >= 500:
                attempt = self._retryable(TOKEN_OPERATION, attempt, status)
                continue
            raise AuthRefused(f"Walmart refused the API key (HTTP {status} {_error_code(response)})")

    # -- calls ----------------------------------------------------------------------------------------

    def get(self, operation: str, path: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET ``path`` (which may carry Walmart's cursor as its query) and return the JSON body.

        Retries 429, 5xx and transport failures; renews the token on 401. Raises :class:`ThrottledOut` or
        :class:`MarketplaceUnavailable` once the retries are spent, :class:`AuthRefused` when the key keeps
        being refused, :class:`RequestRefused` on any other 4xx.
        """
        attempt = refreshes = 0
        while True:
            token = self.access_token()
            self.limiter.acquire(self.scope, operation)
            self.calls[operation] += 1
            try:
                response = self._http.get(
                    self.base_url + path,
                    params=params or None,
                    headers={"WM_SEC.ACCESS_TOKEN": token, "WM_QOS.CORRELATION_ID": str(uuid.uuid4())},
                )
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            status = response.status_code
            if status == 200:
                return self._json(operation, response)
            if status == 429:
                self.throttled[operation] += 1
                self.limiter.throttled(self.scope, operation)
                attempt = self._retryable(operation, attempt, status)
                continue
            if status >= 500:
                attempt = self._retryable(operation, attempt, status)
                continue
            if status == 401:
                refreshes += 1
                if refreshes > self.retry.auth_refreshes:
                    raise AuthRefused(f"{operation}: the access token keeps being refused (HTTP 401)")
                log.info("%s: access token refused, renewing", operation)
                with self._lock:
                    self._access = None
                continue
            if status == 403:
                raise AuthRefused(f"{operation}: access denied (HTTP 403 {_error_code(response)})")
            code = _error_code(response)
            raise RequestRefused(f"{operation}: HTTP {status} {code}", status=status, code=code)

    def post(self, operation: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` (JSON) to ``path`` and return the JSON answer.

        Walmart's writes (``shippingUpdates``) aren't idempotent, so only answers that say nothing was done
        are retried: 429 (after backoff) and 401 (after renewing the token). A 5xx or a transport error may
        have been acted on, so it is raised at once as :class:`MarketplaceUnavailable` for the caller to look
        before asking again; 403 is :class:`AuthRefused`, any other 4xx :class:`RequestRefused`.
        """
        attempt = refreshes = 0
        while True:
            token = self.access_token()
            self.limiter.acquire(self.scope, operation)
            self.calls[operation] += 1
            try:
                response = self._http.post(
                    self.base_url + path,
                    json=dict(body),
                    headers={"WM_SEC.ACCESS_TOKEN": token, "WM_QOS.CORRELATION_ID": str(uuid.uuid4())},
                )
            except httpx.TransportError as exc:
                raise MarketplaceUnavailable(f"{operation}: {type(exc).__name__}; it may have been done") from None
            status = response.status_code
            if status == 200:
                return self._json(operation, response)
            if status == 429:
                self.throttled[operation] += 1
                self.limiter.throttled(self.scope, operation)
                attempt = self._retryable(operation, attempt, status)
                continue
            if status >= 500:
                raise MarketplaceUnavailable(f"{operation}: HTTP {status}; it may have been done")
            if status == 401:
                refreshes += 1
                if refreshes > self.retry.auth_refreshes:
                    raise AuthRefused(f"{operation}: the access token keeps being refused (HTTP 401)")
                with self._lock:
                    self._access = None
                continue
            if status == 403:
                raise AuthRefused(f"{operation}: access denied (HTTP 403 {_error_code(response)})")
            code = _error_code(response)
            raise RequestRefused(f"{operation}: HTTP {status} {code}", status=status, code=code)

    def _retryable(self, operation: str, attempt: int, status: int) -> int:
        attempt += 1
        if attempt >= self.retry.attempts:
            if status == 429:
                raise ThrottledOut(f"{operation}: still throttled after {attempt} attempts")
            raise MarketplaceUnavailable(f"{operation}: HTTP {status} after {attempt} attempts")
        self._backoff(operation, attempt, f"HTTP {status}")
        return attempt

    def _transport_failed(self, operation: str, attempt: int, exc: httpx.TransportError) -> int:
        attempt += 1
        if attempt >= self.retry.attempts:
            raise MarketplaceUnavailable(f"{operation}: {type(exc).__name__} after {attempt} attempts") from None
        self._backoff(operation, attempt, type(exc).__name__)
        return attempt

    @staticmethod
    def _json(operation: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponse(f"{operation}: response is not JSON") from None
        if not isinstance(body, dict):
            raise BadResponse(f"{operation}: response is not a JSON object")
        return body
