"""Walmart Marketplace (US) connector: client-credentials tokens and ``GET /v3/orders`` by last-modified date."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from connectors.interfaces import ConnectorError
from connectors.ratelimit import RateLimiter, RedisBuckets
from connectors.walmart.client import USAGE_PLANS, RetryPolicy, WalmartClient, WalmartCredentials
from connectors.walmart.connector import WalmartConnector
from connectors.walmart.endpoints import endpoint_policy, endpoints_for
from connectors.walmart.mapping import MARKETPLACE
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import MarketplaceAccount

__all__ = [
    "RetryPolicy",
    "WalmartClient",
    "WalmartConnector",
    "WalmartCredentials",
    "connector_for_account",
    "shared_limiter",
]

_limiters: dict[float, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(speedup: float = 1.0) -> RateLimiter:
    """The process's rate limiter for Walmart's per-API limits (one per speed-up factor), shared by connectors."""
    with _limiters_lock:
        limiter = _limiters.get(speedup)
        if limiter is None:
            limiter = _limiters[speedup] = RateLimiter(USAGE_PLANS, speedup=speedup)
        return limiter


def connector_for_account(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    speedup: float = 1.0,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
    endpoint_overrides: Collection[str] = (),
    shared_buckets: RedisBuckets | None = None,  # unused: the limits are per seller (ConnectorFactory)
    **options: Any,
) -> WalmartConnector:
    """A :class:`WalmartConnector` for a stored account: its endpoints and unsealed API key.

    The stored endpoints are checked again against Walmart's hosts and the operator's ``endpoint_overrides``
    before anything is sent; ``speedup`` scales Walmart's limits and the retry backoff (the fake only);
    ``options`` go to :class:`WalmartConnector` (page size, overlap, initial look-back).
    """
    if account.marketplace != MARKETPLACE:
        raise ConnectorError(f"account {account.id} is not a Walmart account")
    if account.removed_at is not None:
        raise ConnectorError(f"account {account.id} has been removed")
    policy = endpoint_policy(endpoint_overrides)
    try:
        policy.check(account.api_endpoint, policy.api_name, policy.api)
        policy.check(account.token_endpoint, "token", policy.token)
    except AccountSetupError as exc:
        raise ConnectorError(f"account {account.id}: {exc}") from None
    credentials = WalmartCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account))
    ends = endpoints_for(
        sandbox=account.sandbox, api_endpoint=account.api_endpoint, token_endpoint=account.token_endpoint
    )
    client = WalmartClient(
        credentials=credentials,
        base_url=ends.api,
        token_url=ends.token,
        limiter=limiter or shared_limiter(speedup),
        scope=f"walmart-account:{account.id}",
        retry=retry,
        clock=clock,
    )
    return WalmartConnector(client=client, clock=clock, **options)
