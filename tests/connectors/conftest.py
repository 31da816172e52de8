"""Fixtures for connector tests: the fake Amazon marketplace (real HTTP), accounts and connectors bound to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from connectors.amazon import AmazonConnector, LwaCredentials, RetryPolicy, connector_for_account
from connectors.amazon.endpoints import USAGE_PLANS
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.ratelimit import RateLimiter
from vault.keys import KeyManager
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount, Tenant

#: Rates in tests run this much faster than Amazon's documented ones (searchOrders: 0.0056/s -> 28/s).
SPEEDUP = 5000.0
#: Quick retries: backoff is divided by the speed-up as well.
FAST_RETRY = RetryPolicy(attempts=6, base_delay=1.0, connect_timeout=2.0, read_timeout=5.0)


@pytest.fixture
def clock() -> FakeClock:
    """The marketplace's clock, shared by the fake and the connector (tests move it by hand)."""
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeAmazon]:
    """A running fake Amazon marketplace with no orders yet; its served bodies must all match Amazon's models."""
    with FakeAmazon(speedup=SPEEDUP, seed=0, clock=clock) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


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
        sp_api_endpoint=fake.base_url,
        lwa_endpoint=fake.lwa_url,
    )
    session.add(account)
    session.flush()
    credentials = LwaCredentials(s.client_id, s.client_secret, s.refresh_token)
    seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
    session.commit()
    return account


def make_connector(
    session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeAmazon, **options: Any
) -> AmazonConnector:
    """A connector for ``account`` with its own rate limiter (tests must not share buckets) at the fake's pace."""
    options.setdefault("limiter", RateLimiter(USAGE_PLANS, speedup=fake.speedup))
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("clock", fake.now)
    options.setdefault("initial_lookback", timedelta(days=30))
    return connector_for_account(session, keys=keys, account=account, speedup=fake.speedup, **options)
