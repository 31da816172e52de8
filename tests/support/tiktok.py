"""The fake TikTok Shop from the tests' side: accounts connected to it the way a seller connects one,
connectors bound to it, and the state a sync must leave in the vault compared with the state it did leave."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_tiktok import FakeTikTok
from connectors.ratelimit import RateLimiter
from connectors.tiktok import RetryPolicy, TikTokConnector, connector_for_account
from connectors.tiktok.accounts import connect_tiktok_account
from connectors.tiktok.endpoints import USAGE_PLANS
from connectors.tiktok.mapping import STATUSES
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.marketplace_accounts import parse_endpoint_overrides
from vault.models import MarketplaceAccount, Order, Tenant
from vault.records import LabelRecord

#: Rates in tests run this much faster than the platform's (orders/search: 10/s -> 500/s).
SPEEDUP = 50.0
#: Quick retries: backoff is divided by the speed-up as well.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=1.0, connect_timeout=2.0, read_timeout=5.0)


def fake_origins(fake: FakeTikTok) -> frozenset[str]:
    """The fake's origin, as an operator lists it in LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES."""
    return parse_endpoint_overrides(fake.base_url)  # its token service is on the same origin


def add_tiktok_account(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeTikTok, *, name: str = "TikTok Shop"
) -> MarketplaceAccount:
    """An account connected to the fake through the real connect: a fresh auth code traded for tokens."""
    account = connect_tiktok_account(
        session,
        keys=keys,
        tenant_id=tenant.id,
        name=name,
        app_key=fake.app.app_key,
        app_secret=fake.app.app_secret,
        auth_code=fake.authorize(),
        api_endpoint=fake.base_url,
        token_endpoint=fake.auth_url,
        endpoint_overrides=fake_origins(fake),
        actor="test",
    )
    session.commit()
    return account


def make_connector(
    session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeTikTok, **options: Any
) -> TikTokConnector:
    """A connector for ``account`` with its own rate limiter (tests must not share buckets) at the fake's pace."""
    options.setdefault("limiter", RateLimiter(USAGE_PLANS, speedup=fake.speedup))
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", fake.now)
    options.setdefault("initial_lookback", timedelta(days=30))
    options.setdefault("endpoint_overrides", fake_origins(fake))
    return connector_for_account(session, keys=keys, account=account, speedup=fake.speedup, **options)


def stored_state(session: Session, keys: KeyManager, account: MarketplaceAccount) -> dict[str, tuple[Any, ...]]:
    """Every stored order of the account: status, why its label is withheld, and the unsealed label."""
    session.expire_all()
    out: dict[str, tuple[Any, ...]] = {}
    for order in session.scalars(select(Order).where(Order.account_id == account.id)):
        label = (
            unseal_label(session, keys=keys, order=order).as_dict()
            if order.label
            else dict.fromkeys(LabelRecord.field_names())
        )
        out[order.external_order_id] = (order.status, order.label_withheld, label)
    return out


def expected_state(fake: FakeTikTok) -> dict[str, tuple[Any, ...]]:
    """What ``stored_state`` must be after syncing every order of the fake."""
    return {
        oid: (STATUSES[o.status].value, "platform-shipped" if o.platform_shipped else None, fake.expected_label(oid))
        for oid, o in fake.orders().items()
    }
