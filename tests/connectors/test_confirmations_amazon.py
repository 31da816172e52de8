"""Amazon told the order shipped (connectors/amazon/fulfillment.py) through connectors/confirmations.py, on both
databases, against the fake Amazon and the fake Shippo: one ``confirmShipment`` with the package and tracking,
a 5xx answered to the POST retried later without a second confirmation, a refusal failed visibly, the order
shipped at Amazon and in the vault; and the fake refuses a confirmation its model doesn't allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from connectors.amazon.client import RequestRefused
from connectors.amazon.client import RetryPolicy as AmazonRetryPolicy
from connectors.amazon.endpoints import USAGE_PLANS
from connectors.amazon.fulfillment import carrier_fields, ship_date
from connectors.confirmations import confirm_due, needs_confirmation
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.fake_shippo import FakeShippo
from connectors.ratelimit import RateLimiter
from tests.support.amazon import SPEEDUP, add_amazon_account, fake_origins, make_connector
from tests.support.carriers import connect_fake_shippo
from tests.support.confirmations import buy, confirm_events, confirm_options, quick, row_of, served, synced_orders
from tests.support.world import assert_no_pii
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, Tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

QUICK = quick(AmazonRetryPolicy)


@pytest.fixture
def shippo() -> Iterator[FakeShippo]:
    yield from served(FakeShippo())


@pytest.fixture
def amazon() -> Iterator[FakeAmazon]:
    yield from served(FakeAmazon(speedup=SPEEDUP, seed=0, clock=FakeClock()))


def _orders(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon, n: int = 2
) -> tuple[MarketplaceAccount, list[Order]]:
    """``n`` unshipped orders the seller ships (not Amazon), synced into the vault with their labels."""
    amazon.generate_orders(n * 4, countries=("US",), statuses=["UNSHIPPED"])
    account = add_amazon_account(session, keys, tenant, amazon)
    synced = synced_orders(session, keys, account, make_connector(session, keys, account, amazon))
    merchant = {oid for oid, o in amazon.orders().items() if o.fulfilled_by == "MERCHANT"}
    orders = [o for o in synced if o.status == "unshipped" and o.external_order_id in merchant][:n]
    assert len(orders) == n
    return account, orders


def _options(amazon: FakeAmazon) -> dict[str, Any]:
    limiter = RateLimiter(USAGE_PLANS, speedup=amazon.speedup)
    return confirm_options(amazon, fake_origins(amazon), limiter=limiter, retry=QUICK)


def test_amazon_carriers_map_to_its_codes() -> None:
    assert needs_confirmation("amazon", "shippo")
    assert carrier_fields("USPS") == {"carrierCode": "USPS"}
    assert carrier_fields("DHL Express") == {"carrierCode": "DHL"}
    assert carrier_fields("Pony Express") == {"carrierCode": "Other", "carrierName": "Pony Express"}
    assert ship_date(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"


def test_an_amazon_order_is_confirmed_once_with_its_package_and_ends_shipped(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, amazon: FakeAmazon
) -> None:
    _, orders = _orders(session, keys, tenant, amazon)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    assert row_of(session, shipment).marketplace == "amazon"
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon))
    assert (summary.confirmed, summary.retried, summary.failed) == (1, 0, 0)
    oid = orders[0].external_order_id
    ((confirmed_id, package),) = amazon.confirmations
    fake_order = amazon.orders()[oid]
    assert confirmed_id == oid and fake_order.status == "SHIPPED"
    assert package["trackingNumber"] == shipment.tracking_number
    assert {k: package[k] for k in carrier_fields(shipment.provider or "")} == carrier_fields(shipment.provider or "")
    assert {(i["orderItemId"], i["quantity"]) for i in package["orderItems"]} == {
        (i.order_item_id, i.quantity) for i in fake_order.items
    }
    assert amazon.orders()[orders[1].external_order_id].status == "UNSHIPPED"  # not touched
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "shipped"
    row = row_of(session, shipment)
    assert (row.status, row.attempts, row.last_error) == ("confirmed", 1, None)
    (event,) = confirm_events(session, tenant.id)
    assert event.details is not None and event.details["marketplace"] == "amazon"
    assert (shipment.tracking_number or "?") not in json.dumps(event.details)
    assert_no_pii(json.dumps(event.details), "the confirmation's audit event")
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon)).confirmed == 0
    assert amazon.calls["confirmShipment"] == 1


def test_an_order_whose_items_come_in_pages_is_confirmed_with_all_of_them(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, amazon: FakeAmazon
) -> None:
    amazon.items_per_page = 1
    _, orders = _orders(session, keys, tenant, amazon, n=6)
    order = next(o for o in orders if len(amazon.orders()[o.external_order_id].items) > 1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    buy(session, keys, order)
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon)).confirmed == 1
    ((_, package),) = amazon.confirmations
    fake_order = amazon.orders()[order.external_order_id]
    assert {(i["orderItemId"], i["quantity"]) for i in package["orderItems"]} == {
        (i.order_item_id, i.quantity) for i in fake_order.items
    }
    assert fake_order.status == "SHIPPED" and not amazon.refused_requests


def test_a_5xx_to_the_amazon_post_is_retried_later_and_confirms_once(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, amazon: FakeAmazon
) -> None:
    _, orders = _orders(session, keys, tenant, amazon, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    amazon.inject(status=503, operation="confirmShipment")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon))
    assert (summary.confirmed, summary.retried, summary.errors) == (0, 1, {"unavailable": 1})
    assert amazon.calls["confirmShipment"] == 1 and amazon.confirmations == []  # not retried blindly
    row = row_of(session, shipment)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "unavailable")
    assert row.next_attempt_at is not None
    assert confirm_due(session, keys, tenant_id=tenant.id, now=row.next_attempt_at, **_options(amazon)).confirmed == 1
    assert len(amazon.confirmations) == 1 and amazon.orders()[orders[0].external_order_id].status == "SHIPPED"
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "shipped"


def test_an_amazon_order_shipped_meanwhile_is_confirmed_without_a_post(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, amazon: FakeAmazon
) -> None:
    _, orders = _orders(session, keys, tenant, amazon, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    amazon.update_order(orders[0].external_order_id, status="SHIPPED")  # confirmed in Seller Central meanwhile
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon)).confirmed == 1
    assert row_of(session, shipment).status == "confirmed" and amazon.calls["confirmShipment"] == 0


def test_a_cancelled_amazon_order_fails_visibly(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, amazon: FakeAmazon
) -> None:
    _, orders = _orders(session, keys, tenant, amazon, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    amazon.update_order(orders[0].external_order_id, status="CANCELLED")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon))
    assert (summary.confirmed, summary.failed, summary.errors) == (0, 1, {"order-cancelled": 1})
    row = row_of(session, shipment)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "order-cancelled", None)
    (event,) = confirm_events(session, tenant.id)
    assert event.outcome == "failed:order-cancelled"
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon)).failed == 0  # failed stays failed
    assert amazon.calls["confirmShipment"] == 0


def test_the_fake_amazon_refuses_a_confirmation_its_model_does_not_allow(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    account, orders = _orders(session, keys, tenant, amazon, n=1)
    oid = orders[0].external_order_id
    fake_order = amazon.orders()[oid]
    item = fake_order.items[0]

    def body(**changes: Any) -> dict[str, Any]:
        package = {"packageReferenceId": "1", "carrierCode": "UPS", "trackingNumber": "1Z999",
                   "shipDate": "2026-01-02T03:04:05Z",
                   "orderItems": [{"orderItemId": item.order_item_id, "quantity": 1}], **changes}  # fmt: skip
        return {"marketplaceId": fake_order.marketplace_id, "packageDetail": package}

    bads: list[dict[str, Any]] = [
        body(trackingNumber=None),  # required
        body(shipDate="yesterday"),  # not a date-time
        body(carrierCode="Other"),  # Other needs a carrierName
        body(orderItems=[{"orderItemId": "nope", "quantity": 1}]),
        body(carrier="UPS"),  # a field the model doesn't define
        {"packageDetail": body()["packageDetail"]},  # no marketplaceId
    ]
    connector = make_connector(session, keys, account, amazon)
    path = f"/orders/v0/orders/{oid}/shipmentConfirmation"
    try:
        for bad in bads:
            with pytest.raises(RequestRefused) as refused:
                connector.client.call("confirmShipment", "POST", path, json_body=bad, idempotent=False)
            assert refused.value.status == 400
        assert amazon.confirmations == [] and amazon.orders()[oid].status == "UNSHIPPED"
        assert len(amazon.refused_requests) >= 4
        assert connector.client.call("confirmShipment", "POST", path, json_body=body(), idempotent=False) == {}
        assert len(amazon.confirmations) == 1
    finally:
        connector.close()


def test_a_400_from_amazon_to_the_post_fails_the_confirmation_visibly(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, amazon: FakeAmazon
) -> None:
    _, orders = _orders(session, keys, tenant, amazon, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    amazon.inject(status=400, operation="confirmShipment")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(amazon))
    assert (summary.failed, summary.errors) == (1, {"refused": 1})
    row = row_of(session, shipment)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "refused", None)
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "unshipped"
