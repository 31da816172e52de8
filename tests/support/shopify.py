"""The fake Shopify from the tests' side: accounts and connectors bound to it, and the state a sync must
leave in the vault compared with the state it did leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_shopify import FULL_ACCESS, FakeShopify, ProtectedAccess, legacy_id
from connectors.shopify import RetryPolicy, ShopifyConnector, connector_for_account
from connectors.shopify.mapping import status_of
from connectors.shopify.pacing import CostPacer
from connectors.shopify.tokens import ShopifyToken
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.marketplace_accounts import parse_endpoint_overrides, seal_credentials
from vault.models import MarketplaceAccount, Order, Tenant
from vault.records import LabelRecord, repair_text

#: Shopify's restore rate in tests: 100 points/s becomes 50,000 (a 992-point page restores in 20 ms).
SPEEDUP = 500.0
FAST_RETRY = RetryPolicy(attempts=6, base_delay=1.0, connect_timeout=2.0, read_timeout=10.0)

#: The fake's displayFulfillmentStatus values (with its cancel and close flags) as the vault stores them.
DISPLAY_STATUS = {
    "UNFULFILLED": "unshipped",
    "IN_PROGRESS": "unshipped",
    "PARTIALLY_FULFILLED": "partially_shipped",
    "FULFILLED": "shipped",
    "ON_HOLD": "pending",
    "SCHEDULED": "pending",
}
#: Countries whose labels carry the province's code.
PROVINCE_CODES = {"US", "CA", "AU", "BR", "MX", "MY", "IN"}


def add_shopify_account(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    fake: FakeShopify,
    *,
    name: str = "Shopify",
    token: str | ShopifyToken | None = None,
    shop: str | None = None,
) -> MarketplaceAccount:
    """An account of the fake's shop pointed at the fake, its token (a custom app's by default, or an
    install's expiring one with its refresh token) sealed like a real one's."""
    account = MarketplaceAccount(
        tenant_id=tenant.id,
        marketplace="shopify",
        name=name,
        region="global",
        api_version="2026-07",
        marketplace_ids=[fake.shop(shop).domain],
        api_endpoint=fake.base_url,
    )
    session.add(account)
    session.flush()
    sealed = token if isinstance(token, ShopifyToken) else ShopifyToken(token or fake.DEFAULT_TOKEN)
    seal_credentials(session, keys=keys, account=account, secrets=sealed.as_secrets())
    session.commit()
    return account


def installed_token(fake: FakeShopify, *, shop: str | None = None) -> ShopifyToken:
    """The fake's default public app installed on ``shop`` with an expiring offline token (an hour, renewable)."""
    app = fake.app()
    answer = fake.install(client_id=app.client_id, shop=shop)
    return ShopifyToken.from_grant(answer, client_id=app.client_id, client_secret=app.client_secret, now=fake.now())


def fake_origins(fake: FakeShopify) -> frozenset[str]:
    """The fake's origin, as an operator lists it in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES."""
    return parse_endpoint_overrides(fake.base_url)


def make_connector(
    session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeShopify, **options: Any
) -> ShopifyConnector:
    """A connector for ``account`` with its own buckets (tests must not share them) at the fake's pace."""
    options.setdefault("pacer", CostPacer(speedup=fake.speedup))
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", fake.now)
    options.setdefault("initial_lookback", timedelta(days=30))
    options.setdefault("endpoint_overrides", fake_origins(fake))
    return connector_for_account(session, keys=keys, account=account, speedup=fake.speedup, **options)


def stored_state(session: Session, keys: KeyManager, account: MarketplaceAccount) -> dict[str, tuple[str, Any]]:
    """Every stored order of the account by id: status and the unsealed label as a dict (all None without)."""
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


def _text(value: str | None) -> str | None:
    return (repair_text(value).strip() or None) if value is not None else None


def expected_record(fake: FakeShopify, gid: str, *, access: ProtectedAccess = FULL_ACCESS) -> dict[str, Any]:
    """The label record the vault must hold for the fake's order, field by field (all None without one)."""
    served = fake.expected_label(gid, access=access)
    empty = dict.fromkeys(LabelRecord.field_names())
    if served["name"] is None or served["address1"] is None or served["countryCodeV2"] is None:
        return empty
    country = served["countryCodeV2"].upper()
    province = _text(served["provinceCode"]) if country in PROVINCE_CODES else None
    return {
        **empty,
        "name": _text(served["name"]),
        "company": _text(served["company"]),
        "address_line1": _text(served["address1"]),
        "address_line2": _text(served["address2"]),
        "city": _text(served["city"]) or "",
        "state_or_region": province or _text(served["province"]),
        "postal_code": _text(served["zip"]),
        "country_code": country,
        "phone": _text(served["phone"]),
    }


def expected_status(fake: FakeShopify, gid: str) -> str:
    """The status the vault must store for the fake's order."""
    order = fake.orders()[gid]
    # The fulfillment orders refine the display status (held or scheduled shares: no label yet; every share
    # closed or cancelled: nothing left to ship), as Shopify's own admin reads them.
    return str(
        status_of(
            order.display_status,
            cancelled=order.cancelled,
            closed=order.closed,
            fulfillment_orders=[fo.status for fo in order.fulfillment_orders],
        )
    )


def expected_state(fake: FakeShopify, *, access: ProtectedAccess = FULL_ACCESS) -> dict[str, tuple[str, Any]]:
    """What ``stored_state`` must be after syncing every order of the fake's default shop."""
    out = {}
    for gid in fake.orders():
        status = expected_status(fake, gid)
        label = (
            expected_record(fake, gid, access=access)
            if status != "cancelled"
            else dict.fromkeys(LabelRecord.field_names())
        )
        out[str(legacy_id(gid))] = (status, label)
    return out
