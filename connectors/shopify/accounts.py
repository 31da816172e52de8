"""Connecting a Shopify shop: a custom app's Admin API token, or the offline token of an OAuth install.

Both end in the vault's audited connect (:func:`vault.marketplace_accounts.connect_account`), with the
shop's own origin as the only endpoint (or one the operator allows) and a probe that asks Shopify once
which shop the token opens and which scopes it holds, so a token that cannot sync is never stored.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from connectors.interfaces import AuthRefused, ConnectorError
from connectors.shopify.client import RetryPolicy, ShopifyClient
from connectors.shopify.endpoints import API_VERSION, api_base, endpoint_policy, shop_domain
from connectors.shopify.mapping import MARKETPLACE
from connectors.shopify.pacing import CostPacer
from connectors.shopify.tokens import ShopifyToken
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import connect_account
from vault.models import MarketplaceAccount

#: The scope a sync needs; the fulfillment orders' statuses need one of the fulfillment-order scopes.
REQUIRED_SCOPE = "read_orders"
#: What the install flow asks for: orders, the fulfillment orders of the merchant's own locations and of
#: fulfilment services assigned to the app, and the write scope of the merchant's own fulfillment orders, so
#: that an order whose label the vault bought is marked fulfilled with its tracking (connectors/shopify/
#: fulfillment.py). Protected customer data is granted per field by Shopify's review, not by a scope.
INSTALL_SCOPES = (
    "read_orders",
    "read_merchant_managed_fulfillment_orders",
    "read_assigned_fulfillment_orders",
    "write_merchant_managed_fulfillment_orders",
)
#: The credential check is one query: no retry, and a person waits for it.
CHECK_RETRY = RetryPolicy(attempts=1, throttle_attempts=2, connect_timeout=5.0, read_timeout=10.0)
#: Checks share one set of buckets per process, so a form submitted in a loop stays inside Shopify's limits.
_CHECK_PACER = CostPacer()

PROBE_OPERATION = "LabelvaultProbe"
PROBE_QUERY = (
    f"query {PROBE_OPERATION} {{ shop {{ myshopifyDomain }} currentAppInstallation {{ accessScopes {{ handle }} }} }}"
)
#: shop 1, currentAppInstallation 1, accessScopes (a list of objects) 1.
PROBE_COST = 3


def probe_token(shop: str, access_token: str, *, api_endpoint: str | None) -> frozenset[str]:
    """Ask Shopify which shop ``access_token`` opens and which scopes it holds; returns the scopes.

    Refuses with a one-line :class:`AccountSetupError` (never the token) when Shopify refuses the token,
    the token opens another shop, it lacks ``read_orders``, or Shopify cannot be reached.
    """
    client = ShopifyClient(
        token=ShopifyToken(access_token),
        base_url=api_base(shop, api_endpoint),
        bucket=_CHECK_PACER.bucket(f"shopify:{shop}"),
        retry=CHECK_RETRY,
    )
    try:
        body = client.query(PROBE_OPERATION, PROBE_QUERY, {}, cost=PROBE_COST)
    except AuthRefused:
        raise AccountSetupError("Shopify refused the access token; nothing was stored") from None
    except ConnectorError as exc:
        raise AccountSetupError(f"the access token could not be checked: {exc}; nothing was stored") from None
    finally:
        client.close()
    data: Any = body.get("data") or {}
    domain = (data.get("shop") or {}).get("myshopifyDomain") if isinstance(data, Mapping) else None
    if domain != shop:
        raise AccountSetupError(f"the access token belongs to another shop than {shop}; nothing was stored")
    installation = data.get("currentAppInstallation") or {}
    scopes = frozenset(
        str(s["handle"]) for s in installation.get("accessScopes") or () if isinstance(s, Mapping) and s.get("handle")
    )
    if REQUIRED_SCOPE not in scopes:
        raise AccountSetupError(f"the app lacks the {REQUIRED_SCOPE} access scope; nothing was stored")
    return scopes


def connect_shopify_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    name: str,
    shop: str,
    token: ShopifyToken,
    api_endpoint: str | None = None,
    endpoint_overrides: Collection[str] = (),
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect a Shopify shop with an Admin API access token, audited as ``account.connect``. The caller commits.

    ``token`` is a custom app's token (``ShopifyToken(access_token)``) or an install's offline token as the
    token endpoint answered it (:meth:`ShopifyToken.from_grant`: expiring, with its refresh token and the
    app's client id and secret, all sealed).

    ``shop`` is the shop's myshopify domain (a bare handle is completed). Refuses (:class:`AccountSetupError`,
    nothing stored) a malformed shop domain, an endpoint other than the shop's own origin unless the
    operator allows it, a token Shopify refuses or that opens another shop or lacks ``read_orders``, and
    everything :func:`~vault.marketplace_accounts.connect_account` refuses.
    """
    domain = shop_domain(shop)

    def probe(account: MarketplaceAccount, secrets: Mapping[str, str]) -> None:
        probe_token(domain, secrets["access_token"], api_endpoint=account.api_endpoint)

    return connect_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        marketplace=MARKETPLACE,
        name=name,
        region="global",
        api_version=API_VERSION,
        marketplace_ids=[domain],
        secrets=token.as_secrets(),
        api_endpoint=api_endpoint,
        endpoints=endpoint_policy(domain, endpoint_overrides),
        probe=probe,
        actor=actor,
        ip=ip,
        now=now,
    )
