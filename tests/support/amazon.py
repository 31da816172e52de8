"""The fake Amazon marketplace from the tests' side: accounts and connectors bound to it, and the state a
sync must leave in the vault compared with the state it did leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.amazon import AmazonConnector, LwaCredentials, RetryPolicy, connector_for_account
from connectors.amazon.endpoints import USAGE_PLANS
from connectors.fake_amazon import FakeAmazon
from connectors.ratelimit import RateLimiter
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.marketplace_accounts import parse_endpoint_overrides, seal_credentials
from vault.models import MarketplaceAccount, Order, Tenant
from vault.records import LabelRecord

#: Rates in tests run this much faster than Amazon's documented ones (searchOrders: 0.0056/s -> 28/s).
SPEEDUP = 5000.0
#: Quick retries: backoff is divided by the speed-up as well.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=1.0, connect_timeout=2.0, read_timeout=5.0)


#: Amazon's order statuses as the vault stores them.
STATUS = {
    "PENDING_AVAILABILITY": "pending",
    "PENDING": "pending",
    "UNSHIPPED": "unshipped",
    "PARTIALLY_SHIPPED": "partially_shipped",
    "SHIPPED": "shipped",
    "CANCELLED": "cancelled",
    "UNFULFILLABLE": "unfulfillable",
}


def add_amazon_account(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    fake: FakeAmazon,
    *,
    name: str = "Amazon",
    api_version: str = "2026-01-01",
    seller: str | None = None,
) -> MarketplaceAccount:
    """An account pointed at the fake, its LWA credentials sealed like a real one's."""
    s = fake.seller(seller)
    account = MarketplaceAccount(
        tenant_id=tenant.id,
        marketplace="amazon",
        name=name,
        region="na",
        api_version=api_version,
        marketplace_ids=list(s.marketplace_ids),
        api_endpoint=fake.base_url,
        token_endpoint=fake.lwa_url,
    )
    session.add(account)
    session.flush()
    credentials = LwaCredentials(s.client_id, s.client_secret, s.refresh_token)
    seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
    session.commit()
    return account


def fake_origins(fake: FakeAmazon) -> frozenset[str]:
    """The fake's origins, as an operator lists them in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES."""
    return parse_endpoint_overrides(fake.base_url)  # its token URL is on the same origin


def make_connector(
    session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeAmazon, **options: Any
) -> AmazonConnector:
    """A connector for ``account`` with its own rate limiter (tests must not share buckets) at the fake's pace."""
    options.setdefault("limiter", RateLimiter(USAGE_PLANS, speedup=fake.speedup))
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", fake.now)
    options.setdefault("initial_lookback", timedelta(days=30))
    options.setdefault("endpoint_overrides", fake_origins(fake))  # the tests' operator allows the fake
    return connector_for_account(session, keys=keys, account=account, speedup=fake.speedup, **options)


def stored_state(session: Session, keys: KeyManager, account: MarketplaceAccount) -> dict[str, tuple[str, Any]]:
    """Every stored order of the account: status and the unsealed label as a dict (all None without one)."""
    session.expire_all()
    out = {}
    for order in session.scalars(select(Order).where(Order.account_id == account.id)):
        label = (
            unseal_label(session, keys=keys, order=order).as_dict()
            if order.label
            else dict.fromkeys(LabelRecord.field_names())
        )
        out[order.external_order_id] = (order.status, label)
    return out


def expected_state(fake: FakeAmazon) -> dict[str, tuple[str, Any]]:
    """What ``stored_state`` must be after syncing every order of the fake (statuses mapped, labels unsealed)."""
    return {oid: (STATUS[o.status], fake.expected_label(oid)) for oid, o in fake.orders().items()}
