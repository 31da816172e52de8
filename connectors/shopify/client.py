"""A small Shopify Admin GraphQL client: one shop, one access token, cost-based pacing, bounded retries.

The token travels only in the ``X-Shopify-Access-Token`` header, which nothing here logs; the URL is the
shop's GraphQL endpoint and carries nothing else; queries and their variables (dates, page cursors) go in
the request body. Error messages name the operation, the HTTP status and Shopify's error *code*, never a
body, a variable or the token.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from connectors.http import shared_pool
from connectors.interfaces import (
    AuthRefused,
    BadResponse,
    ConnectorStats,
    MarketplaceUnavailable,
    ThrottledOut,
)
from connectors.shopify.endpoints import ACCESS_TOKEN_PATH, GRAPHQL_PATH
from connectors.shopify.pacing import SINGLE_QUERY_MAX_COST, CostBucket, ThrottleStatus
from connectors.shopify.tokens import ShopifyToken, TokenKeeper

log = logging.getLogger(__name__)

for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

USER_AGENT = "labelvault/0.1 (Language=Python)"
_HEADERS = {"user-agent": USER_AGENT, "accept": "application/json"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per query, exponential backoff with jitter, and per-request timeouts."""

    attempts: int = 6
    #: THROTTLED answers allowed per query; each retry first waits for the bucket, so more are cheap.
    throttle_attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout: every phase bounded."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)


def shared_http(retry: RetryPolicy | None = None) -> httpx.Client:
    """This process's one HTTP connection pool for every account's GraphQL and token calls (:mod:`connectors.http`).
    Never closed by a client."""
    retry = retry or RetryPolicy()
    return shared_pool(
        "shopify", connect_timeout=retry.connect_timeout, read_timeout=retry.read_timeout, headers=_HEADERS
    )


class QueryRefused(BadResponse):
    """Shopify answered a query with errors and no data, or with a 4xx the client doesn't retry;
    ``code`` is Shopify's error code (``BAD_REQUEST``, ``ACCESS_DENIED``, ...), never a message."""

    def __init__(self, message: str, *, code: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TokenRejected(AuthRefused):
    """Shopify refused a renewable access token (401) in a call told not to renew it itself: the caller renews
    (:meth:`TokenKeeper.rejected`) where the renewed pair can be sealed, then asks again."""

    def __init__(self, message: str, *, token: str) -> None:
        super().__init__(message)
        self.token = token


def _safe_code(code: Any) -> str:
    """An error code fit for a log line: Shopify's codes are short identifiers; anything else is dropped."""
    text = str(code or "")
    return text if text.replace("_", "").isalnum() and len(text) <= 60 else "?"


def error_codes(body: Mapping[str, Any]) -> list[str]:
    """The ``extensions.code`` of each entry of a GraphQL answer's ``errors`` (``"?"`` when absent)."""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return []
    out = []
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        out.append(_safe_code(extensions.get("code")) if isinstance(extensions, Mapping) else "?")
    return out


class ShopifyClient:
    """Runs GraphQL queries against one shop's Admin API, paced by its query-cost bucket."""

    def __init__(
        self,
        *,
        token: ShopifyToken,
        base_url: str,
        bucket: CostBucket,
        token_url: str | None = None,
        speedup: float = 1.0,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        on_renewed: Callable[[ShopifyToken], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """``http`` is a connection pool shared with other clients (:func:`shared_http`), left open by
        :meth:`close`; without it the client opens its own (on ``transport`` if given) and closes it."""
        if http is not None and transport is not None:
            raise ValueError("pass a shared http client or a transport, not both")
        self.url = base_url.rstrip("/") + GRAPHQL_PATH
        self.bucket = bucket
        self.speedup = speedup
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._owns_http = http is None
        self._http = http or httpx.Client(
            timeout=self.retry.timeout(), headers=_HEADERS, transport=transport, follow_redirects=False
        )
        self.tokens = TokenKeeper(
            token,
            token_url=token_url or base_url.rstrip("/") + ACCESS_TOKEN_PATH,
            http=self._http,
            clock=clock,
            on_renewed=on_renewed,
        )
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.retries = 0
        self.cost_requested = 0
        self.cost_actual = 0

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far."""
        return ConnectorStats(
            calls=sum(self.calls.values()),
            throttled=sum(self.throttled.values()),
            retries=self.retries,
            token_refreshes=self.tokens.refreshes,
            per_operation=dict(self.calls),
        )

    def close(self) -> None:
        """Close the client's own connection pool (a shared one stays open for the other clients)."""
        if self._owns_http:
            self._http.close()

    def _backoff(self, operation: str, attempt: int, why: str) -> None:
        """Sleep before retry ``attempt`` (1-based): exponential, with full jitter, scaled by the speed-up."""
        self.retries += 1
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling) / self.speedup
        log.info("%s: %s, retry %d in %.2fs", operation, why, attempt, delay)
        self._sleep(delay)

    def query(
        self, operation: str, document: str, variables: Mapping[str, Any], *, cost: int, renew: bool = True
    ) -> dict[str, Any]:
        """Run ``document`` (named ``operation``) and return the whole answer (``data``, ``errors``, ``extensions``).

        ``cost`` is the query's requested cost by Shopify's rules; the query waits until the bucket covers
        it. Retries THROTTLED answers (after the bucket refills), HTTP 429, 5xx and transport errors;
        raises :class:`ThrottledOut` or :class:`MarketplaceUnavailable` when they are spent,
        :class:`AuthRefused` on 401/403 (a revoked or wrong token, an uninstalled app), and
        :class:`QueryRefused` on an answer with errors and no data or another 4xx. An answer with data
        *and* errors (a redacted protected field) is returned as it is: the caller decides.

        A 401 for an expiring token renews it and asks again; with ``renew=False`` (a prefetch thread, which
        must not write to the database) it raises :class:`TokenRejected` for the caller to renew instead.
        """
        if cost > SINGLE_QUERY_MAX_COST:
            raise ValueError(f"{operation} requests {cost} points; Shopify refuses more than {SINGLE_QUERY_MAX_COST}")
        payload = {"query": document, "operationName": operation, "variables": dict(variables)}
        failures = throttles = renewals = 0
        while True:
            token = self.tokens.current()
            self.bucket.spend(cost)
            self.calls[operation] += 1
            self.cost_requested += cost
            try:
                response = self._http.post(self.url, json=payload, headers={"x-shopify-access-token": token})
            except httpx.TransportError as exc:
                failures = self._failed(operation, failures, type(exc).__name__)
                continue
            status = response.status_code
            if status == 401 and not renew and self.tokens.renewable:
                raise TokenRejected(f"{operation}: Shopify refused the access token (HTTP 401)", token=token)
            if status == 401 and renewals < 2 and self.tokens.rejected(token):
                renewals += 1  # an expiring token ran out early (or was revoked): renewed, try again
                log.info("%s: access token refused, renewed", operation)
                continue
            if status in (401, 403):
                raise AuthRefused(f"{operation}: Shopify refused the access token (HTTP {status})")
            if status == 429:
                throttles = self._throttled(operation, throttles, None)
                continue
            if status >= 500:
                failures = self._failed(operation, failures, f"HTTP {status}")
                continue
            if status == 402:
                raise QueryRefused(
                    f"{operation}: the shop is frozen for an unpaid bill (HTTP 402)", code="", status=402
                )
            if status == 423:
                raise QueryRefused(f"{operation}: the shop is locked (HTTP 423)", code="", status=423)
            if status != 200:
                raise QueryRefused(f"{operation}: HTTP {status}", code="", status=status)
            body = self._json(operation, response)
            throttle = ThrottleStatus.from_extensions(body.get("extensions"))
            if throttle is not None:
                self.bucket.observe(throttle)
            actual = _actual_cost(body)
            if actual is not None:
                self.cost_actual += actual
            codes = error_codes(body)
            if "THROTTLED" in codes:
                throttles = self._throttled(operation, throttles, throttle)
                continue
            if codes and "INTERNAL_SERVER_ERROR" in codes and body.get("data") is None:
                failures = self._failed(operation, failures, "INTERNAL_SERVER_ERROR")
                continue
            if "ACCESS_DENIED" in codes and body.get("data") is None:
                raise AuthRefused(
                    f"{operation}: Shopify denied the app access (ACCESS_DENIED): check its access scopes and its "
                    "protected customer data approval"
                )
            if codes and body.get("data") is None:
                raise QueryRefused(f"{operation}: Shopify refused the query ({', '.join(codes[:3])})", code=codes[0])
            return body

    def _throttled(self, operation: str, throttles: int, status: ThrottleStatus | None) -> int:
        """A THROTTLED answer (or HTTP 429): the bucket is emptier than our copy said. The next spend waits
        for the refill from Shopify's own numbers; a short backoff on top spaces out a throttle that is not
        about this bucket (another app process of the same app spending it)."""
        self.throttled[operation] += 1
        throttles += 1
        if throttles >= self.retry.throttle_attempts:
            raise ThrottledOut(f"{operation}: still throttled after {throttles} attempts")
        if status is None:
            self._backoff(operation, throttles, "HTTP 429")
        else:
            self.retries += 1
            log.info(
                "%s: throttled (%.0f points available), waiting for the bucket", operation, status.currently_available
            )
            self._sleep(min(self.retry.max_delay, 0.05 * throttles) / self.speedup)
        return throttles

    def _failed(self, operation: str, failures: int, why: str) -> int:
        failures += 1
        if failures >= self.retry.attempts:
            raise MarketplaceUnavailable(f"{operation}: {why} after {failures} attempts")
        self._backoff(operation, failures, why)
        return failures

    @staticmethod
    def _json(operation: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponse(f"{operation}: response is not JSON") from None
        if not isinstance(body, dict):
            raise BadResponse(f"{operation}: response is not a JSON object")
        return body


def _actual_cost(body: Mapping[str, Any]) -> int | None:
    extensions = body.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    actual = cost.get("actualQueryCost") if isinstance(cost, Mapping) else None
    return int(actual) if isinstance(actual, (int, float)) and not isinstance(actual, bool) else None
