"""Amazon Selling Partner API connector (Orders v2026-01-01, or legacy Orders v0 with an RDT)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from connectors.amazon.client import LwaCredentials, RetryPolicy, SpApiClient, shared_http
from connectors.amazon.connector import AmazonConnector
from connectors.amazon.endpoints import API_V0, API_V2026, USAGE_PLANS, endpoint_policy, endpoints_for
from connectors.interfaces import ConnectorError
from connectors.ratelimit import RateLimiter, RedisBuckets
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import MarketplaceAccount

__all__ = [
    "API_V0",
    "API_V2026",
    "AmazonConnector",
    "LwaCredentials",
    "RetryPolicy",
    "SpApiClient",
    "connector_for_account",
    "shared_http",
    "shared_limiter",
]

_limiters: dict[float, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(speedup: float = 1.0) -> RateLimiter:
    """The process's rate limiter for Amazon's usage plans (one per speed-up factor), shared by connectors."""
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
    http: httpx.Client | None = None,
    shared_buckets: RedisBuckets | None = None,  # unused: the limits are per seller (ConnectorFactory)
    **options: Any,
) -> AmazonConnector:
    """An :class:`AmazonConnector` for a stored account: its endpoints, API version and unsealed credentials.

    ``speedup`` scales Amazon's documented rates and the retry backoff (for the fake marketplace only);
    ``options`` go to :class:`AmazonConnector` (page size, overlap, initial look-back). Calls go through
    ``http``, by default the process's shared connection pool (:func:`shared_http`).

    The stored endpoints are checked again against Amazon's own hosts and the operator's
    ``endpoint_overrides`` (``LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES``) before anything is sent: an
    account stored before that rule, or whose override the operator has since withdrawn, is a
    :class:`ConnectorError` and its credentials go nowhere.
    """
    if account.marketplace != "amazon":
        raise ConnectorError(f"account {account.id} is not an Amazon account")
    if account.removed_at is not None:
        raise ConnectorError(f"account {account.id} has been removed")
    policy = endpoint_policy(account.region, endpoint_overrides)
    try:
        policy.check(account.api_endpoint, policy.api_name, policy.api)
        policy.check(account.token_endpoint, "token", policy.token)
    except AccountSetupError as exc:
        raise ConnectorError(f"account {account.id}: {exc}") from None
    credentials = LwaCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account))
    ends = endpoints_for(
        account.region,
        sandbox=account.sandbox,
        sp_api_endpoint=account.api_endpoint,
        lwa_endpoint=account.token_endpoint,
    )
    client = SpApiClient(
        credentials=credentials,
        base_url=ends.sp_api,
        lwa_url=ends.lwa,
        limiter=limiter or shared_limiter(speedup),
        scope=f"amazon-account:{account.id}",
        retry=retry,
        clock=clock,
        http=http or shared_http(retry),
    )
    return AmazonConnector(
        client=client,
        marketplace_ids=list(account.marketplace_ids),
        api_version=account.api_version,
        clock=clock,
        **options,
    )
