"""The fake eBay from the tests' side: accounts and connectors bound to it, and the state a sync must leave
in the vault compared with the state it did leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from connectors.ebay import EbayConnector, EbayCredentials, RetryPolicy, connector_for_account
from connectors.ebay.endpoints import usage_plans
from connectors.fake_ebay import FakeEbay
from connectors.ratelimit import RateLimiter
from vault.keys import KeyManager
from vault.marketplace_accounts import parse_endpoint_overrides, seal_credentials
from vault.models import MarketplaceAccount, Tenant
from vault.records import LabelRecord, repair_text

#: Quick retries: backoff is divided by the speed-up as well.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=1.0, connect_timeout=2.0, read_timeout=5.0)
#: eBay's quotas are per day; tests run a day in a second or so.
SPEEDUP = 86400.0


def ebay_status(fulfillment: str, cancel: str) -> str:
    """An eBay order's status as the vault stores it."""
    if cancel == "CANCELED":
        return "cancelled"
    return {"NOT_STARTED": "unshipped", "IN_PROGRESS": "partially_shipped", "FULFILLED": "shipped"}[fulfillment]


def add_ebay_account(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, *, name: str = "eBay", seller: str | None = None
) -> MarketplaceAccount:
    """An account pointed at the fake, the app's keyset and the seller's refresh token sealed like a real one's."""
    s = fake.seller(seller)
    account = MarketplaceAccount(
        tenant_id=tenant.id,
        marketplace="ebay",
        name=name,
        region="global",
        api_version="v1",
        marketplace_ids=list(s.marketplace_ids),
        api_endpoint=fake.base_url,
        token_endpoint=fake.token_url,
    )
    session.add(account)
    session.flush()
    credentials = EbayCredentials(fake.app.client_id, fake.app.client_secret, fake.app.ru_name, s.refresh_token)
    seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
    session.commit()
    return account


def fake_origins(fake: FakeEbay) -> frozenset[str]:
    """The fake's origin, as an operator lists it in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES."""
    return parse_endpoint_overrides(fake.base_url)


def make_ebay_connector(
    session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeEbay, **options: Any
) -> EbayConnector:
    """A connector for ``account`` with its own limiter (tests must not share buckets) at the fake's quota."""
    daily_calls = options.pop("daily_calls", fake.daily_calls)
    options.setdefault("limiter", RateLimiter(usage_plans(daily_calls), speedup=fake.speedup))
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", fake.now)
    options.setdefault("initial_lookback", timedelta(days=30))
    options.setdefault("endpoint_overrides", fake_origins(fake))
    return connector_for_account(session, keys=keys, account=account, speedup=fake.speedup, **options)


def expected_ebay_state(fake: FakeEbay) -> dict[str, tuple[str, Any]]:
    """What ``stored_state`` must be after syncing every order of the fake: statuses mapped, labels as
    ``LabelRecord`` dicts (fields eBay has no place for are None), text repaired as the connector repairs it."""
    out: dict[str, tuple[str, Any]] = {}
    for order_id, order in fake.orders().items():
        label = dict.fromkeys(LabelRecord.field_names())
        for key, value in fake.expected_label(order_id).items():
            label[key] = (repair_text(value).strip() or None) if isinstance(value, str) else value
        out[order_id] = (ebay_status(order.fulfillment_status, order.cancel_state), label)
    return out
