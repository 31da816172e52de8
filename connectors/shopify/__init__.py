"""Shopify connector: Admin GraphQL API 2026-07, a custom app's or an installed public app's offline token."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from connectors.interfaces import AuthRefused, ConnectorError
from connectors.ratelimit import RedisBuckets
from connectors.shopify.client import RetryPolicy, ShopifyClient, shared_http
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.endpoints import API_VERSION, api_base, endpoint_policy
from connectors.shopify.mapping import MARKETPLACE
from connectors.shopify.pacing import CostPacer
from connectors.shopify.tokens import ShopifyToken
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import reseal_credentials, unseal_credentials
from vault.models import MarketplaceAccount

__all__ = [
    "API_VERSION",
    "RetryPolicy",
    "ShopifyClient",
    "ShopifyConnector",
    "connector_for_account",
    "shared_http",
    "shared_pacer",
]

_pacers: dict[float, CostPacer] = {}
_pacers_lock = threading.Lock()


def shared_pacer(speedup: float = 1.0) -> CostPacer:
    """The process's cost buckets (one set per speed-up factor), shared by every Shopify connector."""
    with _pacers_lock:
        pacer = _pacers.get(speedup)
        if pacer is None:
            pacer = _pacers[speedup] = CostPacer(speedup=speedup)
        return pacer


def account_shop(account: MarketplaceAccount) -> str:
    """The shop domain of a Shopify account (its one marketplace id)."""
    ids = list(account.marketplace_ids)
    if len(ids) != 1:
        raise ConnectorError(f"account {account.id}: a Shopify account names exactly one shop")
    return str(ids[0])


def _resealer(session: Session, keys: KeyManager, account_id: int) -> Callable[[ShopifyToken], None]:
    """Re-seal a renewed token pair in a transaction of its own, committed at once: the sync's transaction
    commits per page, and Shopify retires the old refresh token as soon as the new access token is used."""
    factory = sessionmaker(bind=session.get_bind())

    def reseal(token: ShopifyToken) -> None:
        with factory() as own:
            account = own.get(MarketplaceAccount, account_id)
            if account is None:
                raise ConnectorError(f"account {account_id} is gone")
            reseal_credentials(own, keys=keys, account=account, secrets=token.as_secrets())
            own.commit()

    return reseal


def connector_for_account(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    speedup: float = 1.0,
    endpoint_overrides: Collection[str] = (),
    clock: Callable[[], datetime] | None = None,
    pacer: CostPacer | None = None,
    retry: RetryPolicy | None = None,
    shared_buckets: RedisBuckets | None = None,  # unused: the limits are per seller (ConnectorFactory)
    http: httpx.Client | None = None,
    **options: Any,
) -> ShopifyConnector:
    """A :class:`ShopifyConnector` for a stored account: its shop, its (checked) endpoint, its unsealed token.

    The stored endpoint is checked again against the shop's own origin and the operator's
    ``endpoint_overrides`` before anything is sent, as for every platform (connectors.platform).
    ``options`` go to :class:`ShopifyConnector` (page size, overlap, initial look-back, prefetch). Calls go
    through ``http``, by default the process's shared connection pool (:func:`shared_http`).
    """
    if account.marketplace != MARKETPLACE:
        raise ConnectorError(f"account {account.id} is not a Shopify account")
    if account.removed_at is not None:
        raise ConnectorError(f"account {account.id} has been removed")
    shop = account_shop(account)
    try:
        policy = endpoint_policy(shop, endpoint_overrides)
        policy.check(account.api_endpoint, policy.api_name, policy.api)
    except (AccountSetupError, ConnectorError) as exc:
        raise ConnectorError(f"account {account.id}: {exc}") from None
    try:
        token = ShopifyToken.from_secrets(unseal_credentials(session, keys=keys, account=account))
    except AuthRefused as exc:
        raise AuthRefused(f"account {account.id}: {exc}") from None
    client = ShopifyClient(
        token=token,
        base_url=api_base(shop, account.api_endpoint),
        bucket=(pacer or shared_pacer(speedup)).bucket(f"shopify:{shop}"),
        speedup=speedup,
        retry=retry,
        clock=clock,
        on_renewed=_resealer(session, keys, account.id),
        http=http or shared_http(retry),
    )
    return ShopifyConnector(client=client, clock=clock, **options)
