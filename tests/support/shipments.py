"""What the shipment tests (tests/connectors/test_shipments*.py, test_amazon_shipping_shipments.py) share: a
label bought for an order as a client would, and the audit events of an action, read in the chain's order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.carriers.shipments import CarrierFactory, buy_shipment, key_hash
from tests.support.carriers import fast_carriers, ship_request
from vault.keys import KeyManager
from vault.models import AuditEvent, Order, Shipment, Tenant


def buy(
    session: Session,
    keys: KeyManager,
    order: Order,
    key: str = "k1",
    *,
    carriers: Callable[[], CarrierFactory] = fast_carriers,
    now: datetime | None = None,
    **request: Any,
) -> Shipment:
    """Buy ``order``'s label under the idempotency key ``key`` from the tenant's connected fake carrier (at
    ``now``, the vault's clock, if given)."""
    return buy_shipment(
        session, keys=keys, carriers=carriers(), tenant_id=order.tenant_id, client_id=None,
        actor="client:test", idempotency_key_hash=key_hash(key), request=ship_request(order, **request), now=now,
    )  # fmt: skip


def audit_events(session: Session, tenant: Tenant, action: str) -> list[AuditEvent]:
    """The tenant's events of ``action``, oldest first."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
    return list(session.scalars(query.order_by(AuditEvent.seq)))
