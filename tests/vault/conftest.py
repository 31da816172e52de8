from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import LabelRecord, OrderFacts, OrderStatus

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def sample_label(i: int = 0, country: str = "JP") -> LabelRecord:
    if country == "JP":
        return LabelRecord(
            name=f"山田 太郎{i}",
            address_line1="千代田区千代田1-1",
            address_line2=f"皇居外苑ビル{i}階",
            city="千代田区",
            state_or_region="東京都",
            postal_code="100-0001",
            country_code="JP",
            phone=f"+81 3-1234-{i:04d}",
        )
    return LabelRecord(
        name=f"Jane Buyer{i}",
        company="Acme Widgets Ltd",
        address_line1=f"{i} Pike Street",
        address_line2="Suite 400",
        address_line3="Building C",
        city="Seattle",
        state_or_region="WA",
        postal_code="98101",
        country_code="US",
        phone=f"+1 206-555-{i:04d} ext. 12",
        address_type="Commercial",
    )


def sample_facts(i: int, status: OrderStatus = OrderStatus.UNSHIPPED) -> OrderFacts:
    return OrderFacts(
        marketplace="amazon",
        marketplace_id="A1VC38T7YXB528",
        external_order_id=f"503-{i:07d}-{i % 9999999:07d}",
        status=status,
        purchased_at=T0,
        last_updated_at=T0 + timedelta(minutes=i),
        fulfillment_channel="MFN",
        ship_by=T0 + timedelta(days=2),
        latest_delivery_at=T0 + timedelta(days=7),
    )


def make_account(session: Session, tenant: Tenant, name: str = "JP store") -> MarketplaceAccount:
    account = MarketplaceAccount(
        tenant_id=tenant.id,
        marketplace="amazon",
        name=name,
        region="fe",
        api_version="2026-01-01",
        marketplace_ids=["A1VC38T7YXB528"],
    )
    session.add(account)
    session.flush()
    return account


def make_orders(session: Session, keys: KeyManager, account: MarketplaceAccount, n: int, start: int = 0) -> list[Order]:
    return [
        store_order(session, keys=keys, account=account, facts=sample_facts(i), label=sample_label(i)).order
        for i in range(start, start + n)
    ]


@pytest.fixture
def account(session: Session, tenant: Tenant) -> MarketplaceAccount:
    return make_account(session, tenant)
