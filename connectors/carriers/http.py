"""The HTTP plumbing every carrier client shares: timeouts, TLS, bounded retries of safe calls, a purchase that
is never retried blindly, label files fetched without credentials, and HTTP failures mapped to the carriers'
errors (``connectors/carriers/interfaces.py``).

What a failure means for money is decided here once, for every carrier:

- a call that buys nothing (quote, look-up, label, refund status, tracking) is retried on network errors,
  429 and 5xx with capped exponential backoff (``Retry-After`` honoured up to the cap), then
  :class:`CarrierUnavailable`;
- a purchase is sent once: a connection that never opened is :class:`CarrierUnavailable` (nothing left the
  process), a 429 is retried (the carrier refused it whole), but a timeout, a dropped connection or a 5xx is
  :class:`PurchaseUncertain`: the carrier may have bought the label, and only ``find_purchase`` can tell;
- 401/403 are :class:`CarrierAuthRefused`; another 4xx is :class:`CarrierBadResponse` unless the carrier's
  client recognises its body first (``refuse``: address rejected, rate gone, ...).

Credentials travel only in the client's headers (or its auth), never in URLs, and nothing here logs a body or
a URL (label URLs are bearer links on some carriers).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.carriers.interfaces import (
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierUnavailable,
    PurchaseUncertain,
)
from connectors.ratelimit import TokenBucket

USER_AGENT = "labelvault/0.1"

#: Looks at a carrier's 4xx answer (and its JSON body, if it has one) and raises the carrier's own error for
#: it; returning lets the generic mapping run.
Refusal = Callable[[httpx.Response, Any], None]


@dataclass(frozen=True, slots=True)
class CarrierPolicy:
    """Timeouts and retries: attempts for calls that are safe to repeat (and a purchase the carrier throttled)."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: Purchases per second the account may make (the carrier's limit for the plan), paced client-side so a
    #: wave runs at the limit instead of into it; ``None``: unpaced, a 429 is backed off.
    purchase_rate: float | None = None
    purchase_burst: int = 1


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every client: loading the CA bundle costs ~50 ms, more than a purchase's own work."""
    return httpx.create_ssl_context()


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """A 2xx answer's JSON object; :class:`CarrierBadResponse` if it is not JSON, or not an object."""
    try:
        body = response.json()
    except ValueError:
        raise CarrierBadResponse(f"the carrier's answer to {what} is not JSON") from None
    if not isinstance(body, dict):
        raise CarrierBadResponse(f"the carrier's answer to {what} is not an object")
    return body


class CarrierHttp:
    """One carrier account's HTTP clients: the API (with its credentials) and label files (without)."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        policy: CarrierPolicy,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.base = base_url.rstrip("/")
        timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
        self._api = httpx.Client(
            base_url=self.base,
            timeout=timeout,
            verify=tls(),
            transport=transport,
            auth=auth,
            headers={"User-Agent": USER_AGENT, **headers},
        )
        self._files = httpx.Client(
            timeout=timeout, verify=tls(), transport=transport, headers={"User-Agent": USER_AGENT}
        )
        rate = policy.purchase_rate
        self._purchases = TokenBucket(rate, policy.purchase_burst) if rate else None

    def call(
        self, method: str, path: str, what: str, *, refuse: Refusal | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """A call that is safe to repeat (nothing is bought by it), with bounded retries of 429, 5xx and
        network errors; its JSON object."""
        attempts = self.policy.attempts
        for attempt in range(attempts):
            try:
                response = self._api.request(method, path, **kwargs)
            except httpx.HTTPError:
                if attempt + 1 == attempts:
                    raise CarrierUnavailable(f"the carrier could not be reached to {what}") from None
                self.backoff(attempt, None)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                if attempt + 1 == attempts:
                    raise CarrierUnavailable(f"the carrier kept answering HTTP {response.status_code} to {what}")
                self.backoff(attempt, response)
                continue
            return self.json(response, what, refuse)
        raise CarrierUnavailable(f"the carrier could not be reached to {what}")  # pragma: no cover

    def purchase(
        self, method: str, path: str, what: str, *, refuse: Refusal | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The one request that buys: paced, retried only after a 429, and :class:`PurchaseUncertain` when its
        answer is lost or is a 5xx."""
        attempts = self.policy.attempts
        for attempt in range(attempts):
            if self._purchases is not None:
                self._purchases.acquire()
            try:
                response = self._api.request(method, path, **kwargs)
            except httpx.ConnectError:
                raise CarrierUnavailable(f"the carrier could not be reached to {what}") from None
            except httpx.HTTPError:  # sent, and the answer lost: the label may be bought
                raise PurchaseUncertain(f"the carrier's answer to the request to {what} was lost") from None
            if response.status_code == 429 and attempt + 1 < attempts:
                if self._purchases is not None:
                    self._purchases.drain()  # the carrier's bucket is empty, whatever ours thought
                self.backoff(attempt, response)
                continue
            if response.status_code == 429:
                raise CarrierUnavailable(f"the carrier kept throttling the request to {what}")
            if response.status_code >= 500:
                raise PurchaseUncertain(f"the carrier answered the request to {what} with HTTP {response.status_code}")
            return self.json(response, what, refuse)
        raise CarrierUnavailable(
            f"the carrier kept throttling the request to {what}"
        )  # pragma: no cover - loop returns

    def file(self, url: object, what: str) -> bytes:
        """A label file from the URL the carrier gave (HTTPS, or on the API's own origin), fetched without the
        account's credentials."""
        if not isinstance(url, str) or not url.startswith(("https://", self.base + "/")):
            raise CarrierBadResponse(f"the carrier gave no file to {what}")
        try:
            response = self._files.get(url)
        except httpx.HTTPError:
            raise CarrierUnavailable(f"the carrier's file could not be fetched to {what}") from None
        if response.status_code != 200 or not response.content:
            raise CarrierUnavailable(f"the carrier's file answered HTTP {response.status_code} to {what}")
        return response.content

    def json(self, response: httpx.Response, what: str, refuse: Refusal | None = None) -> dict[str, Any]:
        """The JSON object of a 2xx answer; the carriers' errors for the rest."""
        if response.status_code in (401, 403):
            raise CarrierAuthRefused(f"the carrier refused the account's credentials (HTTP {response.status_code})")
        if response.status_code >= 400:
            if refuse is not None:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                refuse(response, body)
            raise CarrierBadResponse(f"the carrier refused to {what} (HTTP {response.status_code})")
        return json_object(response, what)

    def backoff(self, attempt: int, response: httpx.Response | None) -> None:
        """Sleep before retry ``attempt + 1``: exponential, capped, at least the carrier's ``Retry-After``."""
        delay = min(self.policy.max_delay, self.policy.base_delay * 2**attempt)
        if response is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(self.policy.max_delay, float(response.headers.get("Retry-After", 0))))
        time.sleep(delay)

    def close(self) -> None:
        """Close both clients (idempotent)."""
        self._api.close()
        self._files.close()
