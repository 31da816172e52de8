"""The fake Walmart from the tests' side: accounts and connectors bound to it, and the state a sync must
leave in the vault compared with the state it did leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.fake_walmart import FakeOrder, FakeWalmart
from connectors.ratelimit import RateLimiter
from connectors.walmart import RetryPolicy, WalmartConnector, WalmartCredentials, connector_for_account
from connectors.walmart.client import USAGE_PLANS
from connectors.walmart.mapping import MARKET_US
from tests.support.amazon import stored_state
from vault.keys import KeyManager
from vault.marketplace_accounts import parse_endpoint_overrides, seal_credentials
from vault.models import MarketplaceAccount, Tenant
from vault.records import repair_text

#: Walmart's limits in tests run this much faster (All orders: 5000 a minute -> 8333 a second).
SPEEDUP = 100.0
#: Quick retries: backoff is divided by the speed-up as well.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=1.0, connect_timeout=2.0, read_timeout=5.0)

__all__ = ["FAST_RETRY", "SPEEDUP", "add_walmart_account", "expected_state", "make_connector", "stored_state"]


def add_walmart_account(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    fake: FakeWalmart,
    *,
    name: str = "Walmart",
    seller: str | None = None,
) -> MarketplaceAccount:
    """An account pointed at the fake, its API key sealed like a real one's."""
    s = fake.seller(seller)
    account = MarketplaceAccount(
        tenant_id=tenant.id,
        marketplace="walmart",
        name=name,
        region="us",
        api_version="v3",
        marketplace_ids=[MARKET_US],
        api_endpoint=fake.base_url,
        token_endpoint=fake.token_url,
    )
    session.add(account)
    session.flush()
    seal_credentials(
        session, keys=keys, account=account, secrets=WalmartCredentials(s.client_id, s.client_secret).as_secrets()
    )
    session.commit()
    return account


def make_connector(
    session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeWalmart, **options: Any
) -> WalmartConnector:
    """A connector for ``account`` with its own rate limiter (tests must not share buckets) at the fake's pace."""
    options.setdefault("limiter", RateLimiter(USAGE_PLANS, speedup=fake.speedup))
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", fake.now)
    options.setdefault("initial_lookback", timedelta(days=30))
    options.setdefault("endpoint_overrides", parse_endpoint_overrides(fake.base_url))
    return connector_for_account(session, keys=keys, account=account, speedup=fake.speedup, **options)


def _status(order: FakeOrder) -> str:
    """The order's labelvault status, by the rule docs/marketplaces/walmart.md states (written out here)."""
    live = order.line_statuses - {"Cancelled", "Refund"}
    to_ship, shipped = live & {"Created", "Acknowledged"}, live & {"Shipped", "Delivered"}
    if to_ship and shipped:
        return "partially_shipped"
    return "unshipped" if to_ship else "shipped" if shipped else "cancelled"


def expected_state(fake: FakeWalmart) -> dict[str, tuple[str, Any]]:
    """What ``stored_state`` must be after syncing every order of the fake (statuses combined, text repaired)."""
    out = {}
    for oid, order in fake.orders().items():
        label = {
            k: (repair_text(v).strip() or None) if isinstance(v, str) else v
            for k, v in fake.expected_label(oid).items()
        }
        if label["name"] is not None and label["city"] is None:
            label["city"] = ""
        out[oid] = (_status(order), label)
    return out
