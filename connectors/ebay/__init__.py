"""eBay connector: Sell Fulfillment API v1 ``getOrders``, OAuth user tokens from the seller's consent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from connectors.ebay.client import EbayClient, EbayCredentials, Grant, RetryPolicy, shared_http
from connectors.ebay.connector import EbayConnector
from connectors.ebay.endpoints import FULFILLMENT_DAILY_CALLS, endpoint_policy, endpoints_for, usage_plans
from connectors.interfaces import ConnectorError
from connectors.ratelimit import RateLimiter, RedisBuckets
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import MarketplaceAccount

__all__ = [
    "EbayClient",
    "EbayConnector",
    "EbayCredentials",
    "Grant",
    "RetryPolicy",
    "connector_for_account",
    "shared_http",
    "shared_limiter",
]

_limiters: dict[tuple[float, int, int], RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(
    speedup: float = 1.0, daily_calls: int = FULFILLMENT_DAILY_CALLS, shared: RedisBuckets | None = None
) -> RateLimiter:
    """The pacing of eBay's daily quotas (one per speed-up, quota and store), shared by every connector: the
    quotas are the application's, so every seller's sync draws on the same buckets. With ``shared`` (Redis)
    the buckets are the fleet's, one for every process; without, this process's alone."""
    with _limiters_lock:
        key = (speedup, daily_calls, id(shared))
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(
                usage_plans(daily_calls), speedup=speedup, shared=shared, name=f"ebay:{speedup!r}:{daily_calls}"
            )
        return limiter


def connector_for_account(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    speedup: float = 1.0,
    endpoint_overrides: Collection[str] = (),
    clock: Callable[[], datetime] | None = None,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
    daily_calls: int = FULFILLMENT_DAILY_CALLS,
    shared_buckets: RedisBuckets | None = None,
    http: httpx.Client | None = None,
    **options: Any,
) -> EbayConnector:
    """An :class:`EbayConnector` for a stored account: its (re-checked) endpoints and unsealed credentials.

    ``speedup`` shortens eBay's day for the quotas and the retry backoff (fakes only); ``daily_calls`` is the
    app's Fulfillment API quota, drawn on by every process that shares ``shared_buckets`` (without them, this
    process's share of it); ``options`` go to :class:`EbayConnector`. Calls go through ``http``, by default
    the process's shared connection pool (:func:`shared_http`).
    """
    if account.marketplace != "ebay":
        raise ConnectorError(f"account {account.id} is not an eBay account")
    if account.removed_at is not None:
        raise ConnectorError(f"account {account.id} has been removed")
    policy = endpoint_policy(endpoint_overrides)
    try:
        policy.check(account.api_endpoint, policy.api_name, policy.api)
        policy.check(account.token_endpoint, "token", policy.token)
    except AccountSetupError as exc:
        raise ConnectorError(f"account {account.id}: {exc}") from None
    credentials = EbayCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account))
    ends = endpoints_for(account.api_endpoint, account.token_endpoint)
    client = EbayClient(
        credentials=credentials,
        api_url=ends.api,
        token_url=ends.token,
        limiter=limiter or shared_limiter(speedup, daily_calls, shared_buckets),
        retry=retry,
        clock=clock,
        http=http or shared_http(retry),
    )
    return EbayConnector(client=client, clock=clock, **options)
