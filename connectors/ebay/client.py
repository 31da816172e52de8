"""A small eBay REST client: user access tokens from the seller's refresh token, pacing, bounded retries.

Tokens and the app's client secret travel only in headers and form bodies, which nothing here logs; URLs
carry only the order filter (dates), limit and offset, so a transport log stays PII-free. Error messages name
the operation, the HTTP status and eBay's error *id* or OAuth error code, never a body or a token.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.http import shared_pool
from connectors.interfaces import (
    AuthRefused,
    BadResponse,
    ConnectorStats,
    ConsentExpired,
    MarketplaceUnavailable,
    ThrottledOut,
)
from connectors.ratelimit import RateLimiter

log = logging.getLogger(__name__)

for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

USER_AGENT = "labelvault/0.1 (Language=Python)"
_HEADERS = {"user-agent": USER_AGENT, "accept": "application/json"}


@dataclass(frozen=True, slots=True)
class EbayCredentials:
    """The app's keyset and RuName with one seller's refresh token (sealed at rest, never printed).

    ``refresh_token`` is None only before the seller's consent has been exchanged (:meth:`EbayClient.exchange_code`).
    """

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    ru_name: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> EbayCredentials:
        """From the dict stored with :func:`vault.marketplace_accounts.seal_credentials`."""
        try:
            return cls(secrets["client_id"], secrets["client_secret"], secrets["ru_name"], secrets["refresh_token"])
        except KeyError as exc:
            raise AuthRefused(f"stored credentials lack {exc.args[0]}") from None

    def as_secrets(self) -> dict[str, str]:
        """The dict to seal (only once the seller's consent gave a refresh token)."""
        if self.refresh_token is None:
            raise AuthRefused("no refresh token to seal: the seller's consent was not exchanged")
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "ru_name": self.ru_name,
            "refresh_token": self.refresh_token,
        }


@dataclass(frozen=True, slots=True)
class Grant:
    """What a code exchange gives: the seller's refresh token and when eBay says it ends."""

    refresh_token: str = field(repr=False)
    refresh_token_expires_at: datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per call, exponential backoff with jitter, and per-request timeouts."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: Token renewals allowed per call when eBay says the access token is invalid (then it's a refusal).
    auth_refreshes: int = 2

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout: every phase bounded."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)


def shared_http(retry: RetryPolicy | None = None) -> httpx.Client:
    """This process's one HTTP connection pool for every account's Sell API and token calls (:mod:`connectors.http`).
    Never closed by a client."""
    retry = retry or RetryPolicy()
    return shared_pool("ebay", connect_timeout=retry.connect_timeout, read_timeout=retry.read_timeout, headers=_HEADERS)


def _error_id(response: httpx.Response) -> str:
    """eBay's first ``errorId`` (REST errors) or OAuth ``error`` code, fit for a log line; "?" otherwise."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "?"
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            value = errors[0].get("errorId")
            return str(value) if isinstance(value, int) else "?"
        code = body.get("error")
        if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 40:
            return code
    return "?"


class RequestRefused(BadResponse):
    """A 4xx answer the client doesn't retry; ``status`` and eBay's error id say which (no body)."""

    def __init__(self, message: str, *, status: int, error_id: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id


class EbayClient:
    """Calls the Sell APIs for one seller, inside the app's daily quotas (shared per process)."""

    def __init__(
        self,
        *,
        credentials: EbayCredentials,
        api_url: str,
        token_url: str,
        limiter: RateLimiter,
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
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.limiter = limiter
        # eBay's quotas are the application's, whichever seller a call is for: one bucket per app.
        self.scope = f"ebay-app:{credentials.client_id}"
        self.retry = retry or RetryPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=self.retry.timeout(), headers=_HEADERS, transport=transport, follow_redirects=False
        )
        self._lock = threading.RLock()
        self._access: tuple[str, datetime] | None = None
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
        """Close the client's own connection pool (a shared one stays open for the other clients)."""
        if self._owns_http:
            self._http.close()

    # -- tokens ---------------------------------------------------------------------------------------

    def _basic(self) -> str:
        pair = f"{self._credentials.client_id}:{self._credentials.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _seconds(self, value: Any, default: float) -> float:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else default

    def access_token(self) -> str:
        """A valid user access token, minted from the refresh token when the cached one is (nearly) stale.

        Raises :class:`ConsentExpired` when eBay says the refresh token is no good (``invalid_grant``: it
        ran out after its ~18 months, or the seller revoked the app): only the seller's new consent helps.
        """
        with self._lock:
            if self._access is not None and self._clock() < self._access[1]:
                return self._access[0]
            if self._credentials.refresh_token is None:
                raise AuthRefused("no seller grant yet: the consent's code must be exchanged first")
            body = self._token_call(
                "oauthRefresh",
                {"grant_type": "refresh_token", "refresh_token": self._credentials.refresh_token},
            )
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise BadResponse("oauthRefresh: response has no access_token")
            seconds = self._seconds(body.get("expires_in"), 7200.0)
            # Renew a little early (a minute, or a tenth of a short lifetime): a call in flight keeps working.
            self._access = (token, self._clock() + timedelta(seconds=seconds - min(60.0, seconds / 10)))
            self.token_refreshes += 1
            return token

    def exchange_code(self, code: str) -> Grant:
        """Exchange a consent redirect's authorization code for the seller's refresh token (and an access
        token, kept for this client's calls)."""
        body = self._token_call(
            "oauthCode", {"grant_type": "authorization_code", "code": code, "redirect_uri": self._credentials.ru_name}
        )
        refresh, access = body.get("refresh_token"), body.get("access_token")
        if not isinstance(refresh, str) or not refresh or not isinstance(access, str) or not access:
            raise BadResponse("oauthCode: response lacks refresh_token or access_token")
        now = self._clock()
        lifetime = self._seconds(body.get("refresh_token_expires_in"), 47304000.0)
        seconds = self._seconds(body.get("expires_in"), 7200.0)
        with self._lock:
            self._access = (access, now + timedelta(seconds=seconds - min(60.0, seconds / 10)))
            self._credentials = EbayCredentials(
                self._credentials.client_id, self._credentials.client_secret, self._credentials.ru_name, refresh
            )
        return Grant(refresh_token=refresh, refresh_token_expires_at=now + timedelta(seconds=lifetime))

    def _token_call(self, operation: str, form: dict[str, str]) -> dict[str, Any]:
        attempt = 0
        while True:
            self.limiter.acquire(self.scope, operation)
            self.calls[operation] += 1
            try:
                response = self._http.post(self.token_url, data=form, headers={"authorization": self._basic()})
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            status = response.status_code
            if status == 200:
                return self._json(operation, response)
            code = _error_id(response)
            if status == 429 or status >= 500:
                if status == 429:
                    self.throttled[operation] += 1
                    self.limiter.throttled(self.scope, operation)
                attempt = self._retryable(operation, attempt, status)
                continue
            if code == "invalid_grant":
                if operation == "oauthRefresh":
                    raise ConsentExpired(
                        "eBay refused the seller's refresh token (invalid_grant): it expired or was revoked; "
                        "the seller must consent again"
                    )
                raise AuthRefused("eBay refused the authorization code (invalid_grant): consent again")
            raise AuthRefused(f"eBay's token endpoint refused the app (HTTP {status} {code})")

    # -- calls ----------------------------------------------------------------------------------------

    def get(self, operation: str, path_or_url: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a Sell API resource (a path, or a ``next`` href on the same origin) and return its JSON body.

        Retries 429, 5xx and transport errors with backoff; renews the access token on 401. Raises
        :class:`ThrottledOut` / :class:`MarketplaceUnavailable` once the retries are spent, :class:`AuthRefused`
        on 403 (a missing scope), :class:`RequestRefused` on other 4xx.
        """
        url = path_or_url if path_or_url.startswith(self.api_url + "/") else self.api_url + path_or_url
        if not url.startswith(self.api_url + "/"):
            raise BadResponse(f"{operation}: a next href points away from the account's API host")
        attempt = refreshes = 0
        while True:
            token = self.access_token()
            self.limiter.acquire(self.scope, "fulfillment")
            self.calls[operation] += 1
            try:
                response = self._http.get(url, params=params, headers={"authorization": f"Bearer {token}"})
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            status = response.status_code
            if status == 200:
                return self._json(operation, response)
            if status == 429:
                self.throttled[operation] += 1
                self.limiter.throttled(self.scope, "fulfillment")
                attempt = self._retryable(operation, attempt, status)
                continue
            if status >= 500:
                attempt = self._retryable(operation, attempt, status)
                continue
            error_id = _error_id(response)
            if status == 401:
                refreshes += 1
                if refreshes > self.retry.auth_refreshes:
                    raise AuthRefused(f"{operation}: access tokens keep being refused (HTTP 401 {error_id})")
                log.info("%s: access token refused, renewing", operation)
                with self._lock:
                    self._access = None
                continue
            if status == 403:
                raise AuthRefused(f"{operation}: access denied (HTTP 403 {error_id}); the grant lacks the scope")
            raise RequestRefused(f"{operation}: HTTP {status} {error_id}", status=status, error_id=error_id)

    def post(self, operation: str, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
        """POST ``body`` (JSON) to a Sell API path; returns the status (2xx) and the answer's headers.

        Not idempotent at eBay, so only answers that say nothing was done are retried: 429 (after backoff) and
        401 (after renewing the token). A 5xx or a transport error may have been acted on, so it is raised at
        once as :class:`MarketplaceUnavailable` for the caller to look before asking again; 403 is
        :class:`AuthRefused` (the grant lacks the write scope), other 4xx :class:`RequestRefused`.
        """
        url = self.api_url + path
        attempt = refreshes = 0
        while True:
            token = self.access_token()
            self.limiter.acquire(self.scope, "fulfillment")
            self.calls[operation] += 1
            try:
                response = self._http.post(url, json=dict(body), headers={"authorization": f"Bearer {token}"})
            except httpx.TransportError as exc:
                raise MarketplaceUnavailable(f"{operation}: {type(exc).__name__}; it may have been done") from None
            status = response.status_code
            if 200 <= status < 300:
                return status, {k.lower(): v for k, v in response.headers.items()}
            if status == 429:
                self.throttled[operation] += 1
                self.limiter.throttled(self.scope, "fulfillment")
                attempt = self._retryable(operation, attempt, status)
                continue
            if status >= 500:
                raise MarketplaceUnavailable(f"{operation}: HTTP {status}; it may have been done")
            error_id = _error_id(response)
            if status == 401:
                refreshes += 1
                if refreshes > self.retry.auth_refreshes:
                    raise AuthRefused(f"{operation}: access tokens keep being refused (HTTP 401 {error_id})")
                with self._lock:
                    self._access = None
                continue
            if status == 403:
                raise AuthRefused(f"{operation}: access denied (HTTP 403 {error_id}); the grant lacks the scope")
            raise RequestRefused(f"{operation}: HTTP {status} {error_id}", status=status, error_id=error_id)

    def _backoff(self, operation: str, attempt: int, why: str) -> None:
        self.retries += 1
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling) / self.limiter.speedup
        log.info("%s: %s, retry %d in %.2fs", operation, why, attempt, delay)
        self._sleep(delay)

    def _retryable(self, operation: str, attempt: int, status: int) -> int:
        attempt += 1
        if attempt >= self.retry.attempts:
            if status == 429:
                raise ThrottledOut(f"{operation}: still throttled after {attempt} attempts (the app's daily quota)")
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
