"""Vault test data: numbered orders' facts and labels, a marketplace account, orders stored sealed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tests.support.buyers import sample_label
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus

#: When the sample orders were bought.
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def sample_facts(i: int, status: OrderStatus = OrderStatus.UNSHIPPED) -> OrderFacts:
    """The ``i``-th sample order on amazon.co.jp: a distinct order id, updated ``i`` minutes after T0."""
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
    """An Amazon JP account of ``tenant`` (flushed, not committed), pointed at no marketplace server."""
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
    """Orders ``start`` .. ``start + n - 1`` of ``account``, each with its sample label sealed."""
    return [
        store_order(session, keys=keys, account=account, facts=sample_facts(i), label=sample_label(i)).order
        for i in range(start, start + n)
    ]
