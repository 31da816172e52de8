"""The SP-API plumbing Amazon's carrier clients share (Amazon Shipping v2, ``amazon_shipping/``, and Merchant
Fulfillment v0, ``amazon_mfn/``): the selling partner's Login with Amazon grant, its access token, a call that
buys nothing with bounded retries, a purchase sent again only after a 429, and Amazon's answers read without
keeping its text.

Authentication is the selling partner's LWA refresh token: the access token comes from the Amazon connector's
public :meth:`connectors.amazon.SpApiClient.access_token` (cached, renewed when stale) and travels only in the
``x-amz-access-token`` header. One token holder per grant and carrier lives in the process (keyed by a digest,
never the secrets), so a wave of purchases exchanges the refresh token once, not once per label; a client on
a test transport has its own. The SP-API client's own ``call`` is not used: it retries 5xx, and a purchase is
never retried.

What a carrier does differently is a hook: :meth:`SpApiCarrier._refusal` reads a refused call's answer for
the carrier's own errors before the generic mapping, and :meth:`SpApiCarrier._sleep` is how a backoff waits.

URLs carry only ids; nothing here logs a body; error messages name the operation, the status and Amazon's
error code (:func:`error_code`), never Amazon's text (it can quote the address).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Self, TypeVar

import httpx

from connectors.amazon import LwaCredentials, RetryPolicy, SpApiClient, shared_http, shared_limiter
from connectors.amazon.endpoints import LWA_URL, REGIONS, SANDBOX_REGIONS
from connectors.carriers.http import CarrierPolicy, json_object, tls
from connectors.carriers.interfaces import (
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierUnavailable,
    PurchaseUncertain,
)
from connectors.interfaces import AuthRefused, BadResponse, ConnectorError
from connectors.ratelimit import TokenBucket

USER_AGENT = "labelvault/0.1 (Language=Python)"
#: SP-API's live hosts: the carrier registry's own hosts for an account (a sandbox host is an operator override).
LIVE_HOSTS: frozenset[str] = frozenset(REGIONS.values())
#: Every SP-API host, live and sandbox: Amazon's, so its LWA URL is Amazon's.
API_HOSTS: frozenset[str] = frozenset({*REGIONS.values(), *SANDBOX_REGIONS.values()})


@dataclass(frozen=True, slots=True)
class SpApiCredentials:
    """A selling partner's LWA app credentials and refresh token (a carrier's credentials add where it lives)."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @staticmethod
    def grant(secrets: Mapping[str, str]) -> tuple[str, str, str]:
        """The LWA grant in the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not secrets.get(k)]
        if missing:
            raise CarrierAuthRefused(f"stored credentials lack {', '.join(missing)}")
        return secrets["client_id"], secrets["client_secret"], secrets["refresh_token"]


@dataclass(frozen=True, slots=True)
class SpApiPolicy(CarrierPolicy):
    """The shared carrier policy, whose bounds also hold for the LWA token exchange."""

    @classmethod
    def of(cls, policy: CarrierPolicy | None) -> Self:
        """``policy`` as this carrier's: a plain :class:`CarrierPolicy` gets the carrier's defaults."""
        if isinstance(policy, cls):
            return policy
        if policy is None:
            return cls()
        return cls(**{f.name: getattr(policy, f.name) for f in dataclasses.fields(CarrierPolicy)})

    def retry(self) -> RetryPolicy:
        """The same bounds for the LWA token exchange."""
        return RetryPolicy(
            attempts=self.attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


def region_base(api_base: str, region: str) -> str:
    """The SP-API host of ``region`` for a live or sandbox Amazon host; any other base (an operator-allowed fake
    or proxy) as it is."""
    base = api_base.rstrip("/")
    if base in SANDBOX_REGIONS.values():
        return SANDBOX_REGIONS.get(region, base)
    if base in REGIONS.values():
        return REGIONS.get(region, base)
    return base


def lwa_url_for(api_base: str) -> str:
    """Amazon's LWA token URL for Amazon's hosts; for another (operator-allowed) origin, its own
    ``/auth/o2/token`` (a fake serves both, as one origin)."""
    base = api_base.rstrip("/")
    return LWA_URL if base in API_HOSTS else f"{base}/auth/o2/token"


C = TypeVar("C", bound=SpApiCredentials)
P = TypeVar("P", bound=SpApiPolicy)


class SpApiCarrier(Generic[C, P]):
    """One selling partner's SP-API carrier account: its HTTP client, LWA tokens, calls and purchases."""

    #: The carrier's registry name; it also scopes the LWA token holder.
    carrier: str

    def __init__(
        self,
        credentials: C,
        policy: P,
        *,
        base_url: str,
        lwa_url: str,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.policy = policy
        self.credentials = credentials
        self._base = base_url
        timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            verify=tls(),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, **(headers or {}), "Accept": "application/json"},
        )
        self._transport = transport
        rate = policy.purchase_rate
        self._purchases = TokenBucket(rate, policy.purchase_burst) if rate else None
        self._tokens = self._new_tokens(lwa_url)

    def close(self) -> None:
        self._http.close()
        if self._transport is not None:  # a shared token holder outlives its clients
            self._tokens.close()

    # --- hooks ----------------------------------------------------------------------------------------------

    def _refusal(self, operation: str, response: httpx.Response) -> None:
        """Raise the carrier's own error for the final answer to a call (an error status Amazon explains in
        its body); returning lets the generic mapping of :meth:`_json` run."""

    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(seconds)

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        try:
            return {"x-amz-access-token": self._tokens.access_token()}
        except AuthRefused:
            raise CarrierAuthRefused("Login with Amazon refused the account's refresh token") from None
        except BadResponse:
            raise CarrierBadResponse("Login with Amazon answered without an access token") from None
        except ConnectorError:
            raise CarrierUnavailable("Login with Amazon could not be reached") from None

    def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call that buys nothing, with bounded retries of 429, 5xx and network errors."""
        renewed = False
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, headers=self._auth(), **kwargs)
            except httpx.HTTPError:
                attempt += 1
                if attempt >= self.policy.attempts:
                    raise CarrierUnavailable(f"the carrier could not be reached ({operation})") from None
                self._backoff(attempt, None)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                attempt += 1
                if attempt >= self.policy.attempts:
                    raise CarrierUnavailable(f"the carrier kept answering HTTP {status} ({operation})")
                self._backoff(attempt, response)
                continue
            if status in (401, 403) and not renewed:
                renewed = True  # the cached access token may have been revoked early: exchange a new one once
                self._renew_tokens()
                continue
            self._refusal(operation, response)
            return self._json(response, operation)

    def _send_purchase(self, path: str, body: dict[str, Any], headers: Mapping[str, str]) -> httpx.Response:
        """One purchase request, paced at the policy's ``purchase_rate`` and sent again only after a 429 (Amazon
        refused it whole: nothing bought); a request sent whose answer is lost is :class:`PurchaseUncertain`."""
        attempt = 0
        while True:
            if self._purchases is not None:
                self._purchases.acquire()
            try:
                response = self._http.post(path, json=body, headers=self._auth() | dict(headers))
            except httpx.ConnectError:
                raise CarrierUnavailable("the carrier could not be reached to buy the label") from None
            except httpx.HTTPError:  # sent, and the answer lost: the label may be bought
                raise PurchaseUncertain("the carrier's answer to the purchase was lost") from None
            status = response.status_code
            if status != 429:
                return response
            # Throttled: Amazon refused the request whole (nothing bought), so it is sent again, paced.
            attempt += 1
            if attempt >= self.policy.attempts:
                raise CarrierUnavailable("the carrier kept throttling the purchase (nothing was bought)")
            if self._purchases is not None:
                self._purchases.drain()  # Amazon's bucket is empty, whatever ours thought
            self._backoff(attempt, response)

    def _new_tokens(self, lwa_url: str) -> SpApiClient:
        """The grant's LWA token holder: the process's shared one, or a private one on a test transport."""
        if self._transport is None:
            return _shared_tokens(lwa_url, self.carrier, self.credentials, self.policy)
        return _token_client(lwa_url, self.carrier, self.credentials, self.policy, transport=self._transport)

    def _renew_tokens(self) -> None:
        old = self._tokens
        if self._transport is None:
            self._tokens = _shared_tokens(old.lwa_url, self.carrier, self.credentials, self.policy, stale=old)
        else:
            self._tokens = self._new_tokens(old.lwa_url)
            old.close()

    def _json(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise CarrierAuthRefused(f"the carrier refused the account's access token ({operation}, HTTP {status})")
        if status >= 400:
            raise CarrierBadResponse(f"the carrier refused {operation} (HTTP {status} {error_code(response)})")
        return json_object(response, operation)

    @staticmethod
    def _payload(body: dict[str, Any]) -> dict[str, Any]:
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise CarrierBadResponse("the carrier's answer has no payload")
        return payload

    def _backoff(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
        if response is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(self.policy.max_delay, float(response.headers.get("Retry-After", 0))))
        self._sleep(delay)


_shared: dict[tuple[str, str, str], SpApiClient] = {}
_shared_lock = threading.Lock()


def _token_client(
    lwa_url: str,
    carrier: str,
    c: SpApiCredentials,
    policy: SpApiPolicy,
    *,
    transport: httpx.BaseTransport | None = None,
    http: httpx.Client | None = None,
) -> SpApiClient:
    return SpApiClient(
        credentials=LwaCredentials(c.client_id, c.client_secret, c.refresh_token),
        base_url=lwa_url,  # only its token exchange is used: no SP-API call goes through it
        lwa_url=lwa_url,
        limiter=shared_limiter(),
        scope=f"{carrier}:{_grant_digest(c)[:16]}",
        retry=policy.retry(),
        rng=random.Random(0),  # noqa: S311 - jitter, not cryptography
        transport=transport,
        http=http,
    )


def _grant_digest(c: SpApiCredentials) -> str:
    return hashlib.sha256("\0".join((c.client_id, c.client_secret, c.refresh_token)).encode()).hexdigest()


def _shared_tokens(
    lwa_url: str, carrier: str, c: SpApiCredentials, policy: SpApiPolicy, *, stale: SpApiClient | None = None
) -> SpApiClient:
    """The process's token holder for one carrier's LWA grant (keyed by a digest, never the secrets themselves);
    a ``stale`` holder Amazon refused is replaced, so its cached access token is exchanged anew."""
    key = (carrier, lwa_url, _grant_digest(c))
    with _shared_lock:
        held = _shared.get(key)
        if held is None or held is stale:
            held = _shared[key] = _token_client(lwa_url, carrier, c, policy, http=shared_http(policy.retry()))
        return held


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``errors`` of Amazon's answer (none when it is not JSON)."""
    try:
        body = response.json()
    except ValueError:
        return []
    found = body.get("errors") if isinstance(body, dict) else None
    return [e for e in found or [] if isinstance(e, dict)]


def error_code(response: httpx.Response) -> str:
    """Amazon's first error code, if it looks like a code (letters, digits, ``._-``, at most 60)."""
    found = errors(response)
    code = str(found[0].get("code", "")) if found else ""
    if code and len(code) <= 60 and all(c.isalnum() or c in "._-" for c in code):
        return code
    return "unknown"


def names(response: httpx.Response, words: tuple[str, ...]) -> bool:
    """Whether Amazon's error text names one of ``words``: how a 400 says what it is about, as Amazon's own
    sandbox states it ("RequestToken cannot be null"). The text is read here, never kept or logged."""
    for error in errors(response):
        text = f"{error.get('message', '')} {error.get('details', '')}".lower()
        if any(word in text for word in words):
            return True
    return False


def cm(mm: int) -> float:
    """Millimetres as Amazon's centimetres."""
    return float(Decimal(mm) / 10)
