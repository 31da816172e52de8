"""A small SP-API HTTP client: LWA tokens, Restricted Data Tokens, rate limits, bounded retries.

Tokens and credentials travel only in request headers and bodies, which nothing here logs; URLs carry only
order-search parameters (dates, marketplace ids, page tokens), so httpx's own request log stays PII-free.
Error messages name the operation, the HTTP status and Amazon's error *code*, never a body or a token.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.http import shared_pool
from connectors.interfaces import (
    AuthRefused,
    BadResponse,
    ConnectorError,
    ConnectorStats,
    MarketplaceUnavailable,
    ThrottledOut,
)
from connectors.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO and httpcore every step (with response headers) at DEBUG. Our URLs
# and headers carry no PII, but an operator turning on DEBUG should see our log, not the transport's.
for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

USER_AGENT = "labelvault/0.1 (Language=Python)"
_HEADERS = {"user-agent": USER_AGENT, "accept": "application/json"}


def shared_http(retry: RetryPolicy | None = None) -> httpx.Client:
    """This process's one HTTP connection pool for every account's SP-API and LWA calls (:mod:`connectors.http`).
    Never closed by a client."""
    retry = retry or RetryPolicy()
    return shared_pool(
        "amazon", connect_timeout=retry.connect_timeout, read_timeout=retry.read_timeout, headers=_HEADERS
    )


@dataclass(frozen=True, slots=True)
class LwaCredentials:
    """An account's Login with Amazon app credentials and refresh token (sealed at rest, never printed)."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> LwaCredentials:
        """From the dict stored with :func:`vault.marketplace_accounts.seal_credentials`."""
        try:
            return cls(secrets["client_id"], secrets["client_secret"], secrets["refresh_token"])
        except KeyError as exc:
            raise AuthRefused(f"stored credentials lack {exc.args[0]}") from None

    def as_secrets(self) -> dict[str, str]:
        """The dict to seal with :func:`vault.marketplace_accounts.seal_credentials`."""
        return {"client_id": self.client_id, "client_secret": self.client_secret, "refresh_token": self.refresh_token}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per call, exponential backoff with jitter, and per-request timeouts."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: Token refreshes allowed per call when Amazon calls a token expired (then it's a real refusal).
    auth_refreshes: int = 2

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout: every phase bounded."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)


@dataclass(slots=True)
class _Token:
    value: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RestrictedResource:
    """What an RDT covers: one method and (generic) path, and the restricted data elements."""

    method: str
    path: str
    data_elements: tuple[str, ...]


def _error_code(response: httpx.Response) -> tuple[str, str]:
    """Amazon's first error code, and its message with its details (SP-API ``errors``, or LWA ``error``).

    Amazon says why in either place: an expired token reads "The access token you provided has expired."
    as the message, or as the details of "Access to requested resource is denied.". Empty when absent.
    """
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "", ""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            said = " ".join(str(first.get(key) or "") for key in ("message", "details"))
            return str(first.get("code", "")), said
        if "error" in body:
            return str(body.get("error", "")), ""
    return "", ""


def _safe_code(code: str) -> str:
    """An error code fit for a log line: Amazon's codes are short identifiers; anything else is dropped."""
    return code if code.replace("_", "").isalnum() and len(code) <= 60 else "?"


class RequestRefused(BadResponse):
    """A 4xx answer the client doesn't retry; ``status`` and Amazon's error ``code`` say which (no body)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SpApiClient:
    """Calls SP-API operations for one selling partner, staying inside its usage plans."""

    def __init__(
        self,
        *,
        credentials: LwaCredentials,
        base_url: str,
        lwa_url: str,
        limiter: RateLimiter,
        scope: str,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """``http`` is a connection pool shared with other clients (:func:`shared_http`), left open by
        :meth:`close`; without it the client opens its own (on ``transport`` if given) and closes it."""
        if http is not None and transport is not None:
            raise ValueError("pass a shared http client or a transport, not both")
        self._credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.lwa_url = lwa_url
        self.limiter = limiter
        self.scope = scope
        self.retry = retry or RetryPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=self.retry.timeout(), headers=_HEADERS, transport=transport, follow_redirects=False
        )
        self._lock = threading.RLock()
        self._access: _Token | None = None
        self._rdts: dict[RestrictedResource, _Token] = {}
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.retries = 0
        self.token_refreshes = 0

    # -- bookkeeping ----------------------------------------------------------------------------------

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
        """Close the connection pool, unless it is a shared one (other accounts' clients use it)."""
        if self._owns_http:
            self._http.close()

    def _backoff(self, operation: str, attempt: int, why: str) -> None:
        """Sleep before retry ``attempt`` (1-based): exponential, with full jitter, scaled by the speed-up."""
        self.retries += 1
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling) / self.limiter.speedup
        log.info("%s: %s, retry %d in %.2fs", operation, why, attempt, delay)
        self._sleep(delay)

    def _lifetime(self, expires_in: Any) -> datetime:
        """When to stop using a token Amazon says lasts ``expires_in`` seconds: a minute (or 10 %) early."""
        seconds = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 3600.0
        return self._clock() + timedelta(seconds=seconds - min(60.0, seconds / 10))

    # -- tokens ---------------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid LWA access token, exchanged from the refresh token when the cached one is (nearly) stale."""
        with self._lock:
            if self._access is not None and self._clock() < self._access.expires_at:
                return self._access.value
            body = self._lwa_exchange()
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise BadResponse("lwaToken: response has no access_token")
            self._access = _Token(token, self._lifetime(body.get("expires_in")))
            self.token_refreshes += 1
            return token

    def _lwa_exchange(self) -> dict[str, Any]:
        operation = "lwaToken"
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._credentials.refresh_token,
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret,
        }
        attempt = 0
        while True:
            self.limiter.acquire(self.scope, operation)
            self.calls[operation] += 1
            try:
                response = self._http.post(self.lwa_url, data=form, timeout=self.retry.timeout())
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            if response.status_code == 200:
                return self._json(operation, response)
            code, _ = _error_code(response)
            if response.status_code == 429 or response.status_code >= 500:
                attempt = self._retryable(operation, attempt, response.status_code)
                continue
            raise AuthRefused(
                f"Login with Amazon refused the refresh token (HTTP {response.status_code} {_safe_code(code)})"
            )

    def restricted_token(self, resource: RestrictedResource) -> str:
        """A Restricted Data Token for ``resource``, reused for its whole lifetime."""
        with self._lock:
            cached = self._rdts.get(resource)
            if cached is not None and self._clock() < cached.expires_at:
                return cached.value
            body = self.call(
                "createRestrictedDataToken",
                "POST",
                "/tokens/2021-03-01/restrictedDataToken",
                json_body={
                    "restrictedResources": [
                        {"method": resource.method, "path": resource.path, "dataElements": list(resource.data_elements)}
                    ]
                },
            )
            token = body.get("restrictedDataToken")
            if not isinstance(token, str) or not token:
                raise BadResponse("createRestrictedDataToken: response has no restrictedDataToken")
            self._rdts[resource] = _Token(token, self._lifetime(body.get("expiresIn")))
            return token

    def _forget(self, resource: RestrictedResource | None) -> None:
        with self._lock:
            if resource is None:
                self._access = None
            else:
                self._rdts.pop(resource, None)

    # -- calls ----------------------------------------------------------------------------------------

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | Sequence[str]] | None = None,
        json_body: Any = None,
        restricted: RestrictedResource | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Call an operation and return its JSON body (``{}`` for a 204); retries 429, 5xx and timeouts, renews
        stale tokens.

        Raises :class:`ThrottledOut` or :class:`MarketplaceUnavailable` once the retries are spent,
        :class:`AuthRefused` on a refusal that isn't token expiry, :class:`RequestRefused` on any other 4xx.
        A call that isn't ``idempotent`` (``confirmShipment``) is retried only after answers that say nothing
        was done (429, expired tokens): a 5xx or a transport error may have been acted on, so it is raised at
        once as :class:`MarketplaceUnavailable` for the caller to look before asking again.
        """
        query = {k: (",".join(v) if not isinstance(v, str) else v) for k, v in (params or {}).items()}
        attempt = refreshes = 0
        while True:
            token = self.restricted_token(restricted) if restricted else self.access_token()
            self.limiter.acquire(self.scope, operation)
            self.calls[operation] += 1
            try:
                response = self._http.request(
                    method,
                    self.base_url + path,
                    params=query or None,
                    json=json_body,
                    headers={"x-amz-access-token": token},
                    timeout=self.retry.timeout(),
                )
            except httpx.TransportError as exc:
                if not idempotent:
                    raise MarketplaceUnavailable(f"{operation}: {type(exc).__name__}; it may have been done") from None
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            status = response.status_code
            announced = response.headers.get("x-amzn-ratelimit-limit")
            if announced:
                with contextlib.suppress(ValueError):  # a malformed header is no reason to fail the call
                    self.limiter.announce(self.scope, operation, float(announced))
            if status == 204:
                return {}
            if 200 <= status < 300:
                return self._json(operation, response)
            code, message = _error_code(response)
            if status == 429:
                self.throttled[operation] += 1
                self.limiter.throttled(self.scope, operation)
                attempt = self._retryable(operation, attempt, status)
                continue
            if status >= 500:
                if not idempotent:
                    raise MarketplaceUnavailable(f"{operation}: HTTP {status}; it may have been done")
                attempt = self._retryable(operation, attempt, status)
                continue
            if status == 401 or (status == 403 and "expired" in message.lower()):
                refreshes += 1
                if refreshes > self.retry.auth_refreshes:
                    raise AuthRefused(f"{operation}: tokens keep being refused as expired (HTTP {status})")
                log.info("%s: %s token expired, renewing", operation, "restricted data" if restricted else "access")
                self._forget(restricted)
                continue
            if status == 403:
                raise AuthRefused(f"{operation}: access denied (HTTP 403 {_safe_code(code)})")
            raise RequestRefused(f"{operation}: HTTP {status} {_safe_code(code)}", status=status, code=_safe_code(code))

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


__all__ = [
    "ConnectorError",
    "LwaCredentials",
    "RequestRefused",
    "RestrictedResource",
    "RetryPolicy",
    "SpApiClient",
    "shared_http",
]
