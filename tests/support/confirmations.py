"""What the confirmation tests (tests/connectors/test_confirmations*.py) share: each buys a label for an order
synced in from a fake marketplace, runs connectors/confirmations.py against that fake and reads back the
confirmation row and its audit events. One copy here, so the Shopify, eBay, Walmart and Amazon tests buy,
retry and read alike and a change to the queue's shape is made once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.interfaces import Connector
from connectors.sync import sync_account
from tests.support import shipments
from vault.keys import KeyManager
from vault.models import AuditEvent, MarketplaceAccount, Order, Shipment, ShipmentConfirmation


class Fake(Protocol):
    """A fake platform served over real HTTP that records what it couldn't serve by its document."""

    validation_errors: list[str]
    server_errors: list[str]

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...


F = TypeVar("F", bound=Fake)
P = TypeVar("P")


def served(fake: F) -> Iterator[F]:
    """The body of a fixture: ``fake`` running for one test, which fails if it served anything its document
    doesn't allow or broke."""
    with fake:
        yield fake
        assert fake.validation_errors == [] and fake.server_errors == []


def quick(policy: Callable[..., P]) -> P:
    """A marketplace client's retry policy of two quick tries per call: a fault of three answers outlasts it."""
    return policy(attempts=2, base_delay=0.01, max_delay=0.02, connect_timeout=2.0, read_timeout=0.5)


def confirm_options(fake: Any, endpoint_overrides: Any, **connector_options: Any) -> dict[str, Any]:
    """The keyword arguments of ``confirm_due`` that point it at ``fake`` on its clock and speed."""
    return {
        "endpoint_overrides": endpoint_overrides,
        "speedup": fake.speedup,
        "connector_options": {**connector_options, "clock": fake.now},
    }


def synced_orders(session: Session, keys: KeyManager, account: MarketplaceAccount, connector: Connector) -> list[Order]:
    """The account's orders in the vault after one sync through ``connector`` (closed after), oldest first."""
    try:
        sync_account(session, keys=keys, account=account, connector=connector)
    finally:
        connector.close()
    return list(session.scalars(select(Order).where(Order.account_id == account.id).order_by(Order.id)))


def buy(session: Session, keys: KeyManager, order: Order, key: str = "k1") -> Shipment:
    """A label bought for ``order`` from the connected fake carrier, as a client would (a key per order)."""
    return shipments.buy(session, keys, order, f"{key}:{order.id}")


def row_of(session: Session, shipment: Shipment) -> ShipmentConfirmation:
    """The confirmation queued for ``shipment``, read afresh from the database."""
    session.expire_all()
    row = session.scalar(select(ShipmentConfirmation).where(ShipmentConfirmation.shipment_id == shipment.id))
    assert row is not None
    return row


def confirm_events(session: Session, tenant_id: int) -> list[AuditEvent]:
    """The tenant's ``shipment.confirm`` audit events, in the chain's order."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.action == "shipment.confirm")
    return list(session.scalars(query.order_by(AuditEvent.seq)))
