"""Walmart told the order shipped (connectors/walmart/fulfillment.py) through connectors/confirmations.py, on both
databases, against the fake Walmart and the fake Shippo: the order's lines shipped once with the tracking, a
5xx answered to the POST retried later without a second shipment, a refusal failed visibly, the order shipped
in the vault; and the fake refuses a request Walmart's schema doesn't allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from connectors.confirmations import confirm_due, needs_confirmation
from connectors.fake_amazon import FakeClock
from connectors.fake_shippo import FakeShippo
from connectors.fake_walmart import FakeWalmart
from connectors.platform import ConfirmationRefused
from connectors.ratelimit import RateLimiter
from connectors.walmart.client import USAGE_PLANS, RequestRefused, RetryPolicy
from connectors.walmart.fulfillment import carrier_name, method_code, ship_millis, tracking_info
from tests.support.carriers import connect_fake_shippo
from tests.support.confirmations import buy, confirm_events, confirm_options, quick, row_of, served, synced_orders
from tests.support.walmart import SPEEDUP, add_walmart_account, make_connector
from tests.support.world import assert_no_pii
from vault.keys import KeyManager
from vault.marketplace_accounts import parse_endpoint_overrides
from vault.models import MarketplaceAccount, Order, Tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

QUICK = quick(RetryPolicy)


@pytest.fixture
def shippo() -> Iterator[FakeShippo]:
    yield from served(FakeShippo())


@pytest.fixture
def walmart() -> Iterator[FakeWalmart]:
    yield from served(FakeWalmart(speedup=SPEEDUP, seed=0, clock=FakeClock()))


def _orders(
    session: Session, keys: KeyManager, tenant: Tenant, walmart: FakeWalmart, n: int = 2
) -> tuple[MarketplaceAccount, list[Order]]:
    walmart.generate_orders(n, statuses=["Acknowledged"])
    account = add_walmart_account(session, keys, tenant, walmart)
    orders = synced_orders(session, keys, account, make_connector(session, keys, account, walmart))
    assert len(orders) == n and all(o.status == "unshipped" for o in orders)
    return account, orders


def _options(walmart: FakeWalmart) -> dict[str, Any]:
    limiter = RateLimiter(USAGE_PLANS, speedup=walmart.speedup)
    return confirm_options(walmart, parse_endpoint_overrides(walmart.base_url), limiter=limiter, retry=QUICK)


def test_walmart_carriers_and_methods_map_to_its_enumerations() -> None:
    assert needs_confirmation("walmart", "shippo")
    assert carrier_name("USPS") == {"carrier": "USPS"}
    assert carrier_name("DHL Express") == {"carrier": "DHL"}
    assert carrier_name("FedEx") == {"carrier": "FedEx"}
    assert carrier_name("Evri") == {"otherCarrier": "Evri"}
    assert method_code("UPS Next Day Air") == "OneDay"
    assert method_code("FedEx 2Day") == "Express"
    assert method_code("Priority Mail") == "Standard"
    assert ship_millis(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) == 1767323045678


def test_a_carrier_outside_walmarts_list_comes_with_its_tracking_page_or_is_refused_before_any_call() -> None:
    shipped = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    amazon = tracking_info("AMZN_US", "Amazon Shipping Ground", "TBA 123/4", shipped)
    assert amazon["carrierName"] == {"otherCarrier": "AMZN_US"}
    assert amazon["trackingURL"] == "https://track.amazon.com/tracking/TBA%20123%2F4"
    assert "trackingURL" not in tracking_info("USPS", "Priority Mail", "9400", shipped)
    with pytest.raises(ConfirmationRefused) as refused:
        tracking_info("Evri", "Standard", "H01", shipped)
    assert refused.value.code == "no-tracking-page"


def test_a_walmart_order_has_its_lines_shipped_once_with_the_tracking(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, walmart: FakeWalmart
) -> None:
    _, orders = _orders(session, keys, tenant, walmart)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    assert row_of(session, shipment).marketplace == "walmart"
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart))
    assert (summary.confirmed, summary.retried, summary.failed) == (1, 0, 0)
    po = orders[0].external_order_id
    fake_order = walmart.orders()[po]
    assert fake_order.line_statuses == {"Shipped"}
    assert {s.tracking_number for line in fake_order.lines for s in line.statuses} == {shipment.tracking_number}
    ((shipped_po, lines),) = walmart.shipments
    assert shipped_po == po and {e["lineNumber"] for e in lines} == {line.line_number for line in fake_order.lines}
    info = lines[0]["orderLineStatuses"]["orderLineStatus"][0]["trackingInfo"]
    assert info["carrierName"] == carrier_name(shipment.provider or "")
    assert walmart.orders()[orders[1].external_order_id].line_statuses == {"Acknowledged"}  # not touched
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "shipped"
    row = row_of(session, shipment)
    assert (row.status, row.attempts, row.last_error) == ("confirmed", 1, None)
    (event,) = confirm_events(session, tenant.id)
    assert event.details is not None and event.details["marketplace"] == "walmart"
    assert (shipment.tracking_number or "?") not in json.dumps(event.details)
    assert_no_pii(json.dumps(event.details), "the confirmation's audit event")
    # Nothing due any more: a second run ships nothing again.
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart)).confirmed == 0
    assert len(walmart.shipments) == 1 and walmart.calls["shippingUpdates"] == 1


def test_a_5xx_to_the_walmart_post_is_retried_later_and_ships_once(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, walmart: FakeWalmart
) -> None:
    _, orders = _orders(session, keys, tenant, walmart, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    walmart.inject(status=503, operation="shippingUpdates")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart))
    assert (summary.confirmed, summary.retried, summary.errors) == (0, 1, {"unavailable": 1})
    assert walmart.calls["shippingUpdates"] == 1 and walmart.shipments == []  # the POST wasn't retried blindly
    row = row_of(session, shipment)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "unavailable")
    assert row.next_attempt_at is not None
    assert confirm_due(session, keys, tenant_id=tenant.id, now=row.next_attempt_at, **_options(walmart)).confirmed == 1
    assert len(walmart.shipments) == 1 and walmart.orders()[orders[0].external_order_id].line_statuses == {"Shipped"}
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "shipped"


def test_a_walmart_order_shipped_meanwhile_with_the_tracking_is_confirmed_without_a_second_post(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, walmart: FakeWalmart
) -> None:
    _, orders = _orders(session, keys, tenant, walmart, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    walmart.update_order(orders[0].external_order_id, status="Shipped")  # the seller shipped it in Seller Center
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart)).confirmed == 1
    assert row_of(session, shipment).status == "confirmed" and walmart.calls["shippingUpdates"] == 0


def test_a_cancelled_walmart_order_fails_visibly(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, walmart: FakeWalmart
) -> None:
    _, orders = _orders(session, keys, tenant, walmart, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    walmart.update_order(orders[0].external_order_id, status="Cancelled")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart))
    assert (summary.confirmed, summary.failed, summary.errors) == (0, 1, {"order-cancelled": 1})
    row = row_of(session, shipment)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "order-cancelled", None)
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "unshipped"
    (event,) = confirm_events(session, tenant.id)
    assert event.outcome == "failed:order-cancelled"
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart)).failed == 0  # failed stays failed
    assert walmart.calls["shippingUpdates"] == 0


def test_the_fake_walmart_refuses_a_shipment_its_document_does_not_allow(
    session: Session, keys: KeyManager, tenant: Tenant, walmart: FakeWalmart
) -> None:
    account, orders = _orders(session, keys, tenant, walmart, n=1)
    po = orders[0].external_order_id
    fake_order = walmart.orders()[po]
    line = fake_order.lines[0]
    info = {"shipDateTime": 1767323045678, "carrierName": {"carrier": "UPS"}, "methodCode": "Standard",
            "trackingNumber": "1Z999"}  # fmt: skip

    def body(**changes: Any) -> dict[str, Any]:
        status = {"status": "Shipped", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"},
                  "trackingInfo": {**info, **changes.pop("info", {})}}  # fmt: skip
        entry = {"lineNumber": line.line_number, "sellerOrderId": fake_order.customer_order_id,
                 "orderLineStatuses": {"orderLineStatus": [status]}, **changes}  # fmt: skip
        return {"orderShipment": {"orderLines": {"orderLine": [entry]}}}

    connector = make_connector(session, keys, account, walmart)
    try:
        bads: list[dict[str, Any]] = [
            body(info={"methodCode": "Teleport"}),  # not in the enumeration
            body(info={"carrierName": {"carrier": "Pony Express"}}),
            body(lineNumber="99"),  # no such line
            body(carrier="UPS"),  # a field Walmart doesn't define
            body(info={"carrierName": {"otherCarrier": "Evri"}}),  # no trackingURL, which otherCarrier needs
            {"orderShipment": {}},
        ]
        for bad in bads:
            with pytest.raises(RequestRefused) as refused:
                connector.client.post("shippingUpdates", f"/v3/orders/{po}/shipping", bad)
            assert refused.value.status == 400
        assert walmart.shipments == [] and walmart.orders()[po].line_statuses == {"Acknowledged"}
        assert len(walmart.refused_requests) >= 3
        connector.client.post("shippingUpdates", f"/v3/orders/{po}/shipping", body())  # the good one is taken
        assert len(walmart.shipments) == 1
    finally:
        connector.close()


def test_a_400_from_walmart_to_the_post_fails_the_confirmation_visibly(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, walmart: FakeWalmart
) -> None:
    _, orders = _orders(session, keys, tenant, walmart, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    walmart.inject(status=400, operation="shippingUpdates")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(walmart))
    assert (summary.failed, summary.errors) == (1, {"refused": 1})
    row = row_of(session, shipment)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "refused", None)
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "unshipped"
