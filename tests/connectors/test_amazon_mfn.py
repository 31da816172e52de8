"""Amazon Merchant Fulfillment v0 as a carrier (connectors/carriers/amazon_mfn/), against the fake marketplace
(connectors/fake_amazon/, which serves Merchant Fulfillment over its own orders, every body checked against
Amazon's model): quoted from the order's items with the ship-to never sent, bought, printed in each format,
tracked and voided; the order Shipped at Amazon and no confirmation queued; a non-Amazon order refused; a lost
purchase never bought twice; an outage bought and recorded nothing. Then the shipment flow and API, on both
databases.

The shared contract (tests/connectors/test_carriers.py) quotes a ship-to without an order, which Merchant
Fulfillment can't do; its points are asserted here for an Amazon order instead.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pypdf
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.amazon.endpoints import LWA_URL, REGIONS, SANDBOX_REGIONS
from connectors.carriers.amazon_mfn import MerchantFulfillmentCarrier, MerchantFulfillmentPolicy
from connectors.carriers.amazon_mfn.client import lwa_url_for, region_base
from connectors.carriers.interfaces import (
    Carrier,
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierUnavailable,
    LabelFormat,
    NoMatchingRate,
    OrderContext,
    PurchaseUncertain,
    RateChanged,
    TrackingStatus,
    VoidRefused,
    VoidStatus,
)
from connectors.carriers.pool import CarrierPool
from connectors.carriers.registry import CARRIERS
from connectors.carriers.shipments import (
    LEASE,
    buy_wave,
    key_hash,
    print_shipment_label,
    reconcile_pending,
    shipment_view,
    void_shipment,
)
from connectors.confirmations import needs_confirmation
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.fake_amazon.models import schema_errors
from tests.support.amazon import SPEEDUP, add_amazon_account, make_connector
from tests.support.buyers import SEATTLE, sample_label
from tests.support.carriers import (
    FAST,
    PARCEL,
    SHIP_FROM,
    connect_fake_amazon_mfn,
    fast_carriers,
    mfn_client,
    ship_request,
)
from tests.support.confirmations import served, synced_orders
from tests.support.servers import Database
from tests.support.shipments import audit_events, buy
from tests.support.vault import sample_facts
from tests.support.world import World, assert_no_pii, build_world
from vault.clients import SHIPMENTS_BUY
from vault.db import make_session_factory
from vault.errors import PurchaseUnsettled
from vault.keys import KeyManager
from vault.models import (
    AuditEvent,
    CarrierAccount,
    MarketplaceAccount,
    Order,
    Shipment,
    ShipmentConfirmation,
    Tenant,
    utcnow,
)
from vault.orders import store_order
from vault.tenants import create_tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

_buy = partial(buy, carriers=fast_carriers)


@pytest.fixture
def amazon() -> Iterator[FakeAmazon]:
    yield from served(FakeAmazon(speedup=SPEEDUP, seed=3, clock=FakeClock()))


@pytest.fixture
def client(amazon: FakeAmazon) -> Iterator[MerchantFulfillmentCarrier]:
    built = mfn_client(amazon)
    yield built
    built.close()


def _merchant_orders(amazon: FakeAmazon, n: int = 2) -> list[str]:
    """``n`` unshipped orders the seller ships itself, at the fake."""
    amazon.generate_orders(n * 4, countries=("US",), statuses=["UNSHIPPED"])
    ids = [oid for oid, o in amazon.orders().items() if o.fulfilled_by == "MERCHANT" and o.status == "UNSHIPPED"]
    assert len(ids) >= n
    return ids[:n]


def _quote(client: Carrier, order_id: str) -> Any:
    return client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=OrderContext("amazon", order_id))


def _no_buyer_data_went_out(amazon: FakeAmazon) -> None:
    pii = amazon.buyer_pii_strings() | {SEATTLE.name, SEATTLE.address_line1, SEATTLE.phone or "-"}
    assert amazon.mfn.requests
    for _, path, body in amazon.mfn.requests:
        for value in pii:
            assert value not in body and value not in path, "a Merchant Fulfillment request carried buyer data"


def _token(amazon: FakeAmazon) -> str:
    """An access token of the fake's seller, from its Login with Amazon."""
    seller = amazon.seller()
    form = {"grant_type": "refresh_token", "refresh_token": seller.refresh_token,
            "client_id": seller.client_id, "client_secret": seller.client_secret}  # fmt: skip
    token: str = httpx.post(amazon.lwa_url, data=form).json()["access_token"]
    return token


def _v0_status(amazon: FakeAmazon, order_id: str) -> str:
    """The order's status as ``getOrders`` (v0) shows it to the seller."""
    token = _token(amazon)
    with httpx.Client(base_url=amazon.base_url) as http:
        params = {"MarketplaceIds": "ATVPDKIKX0DER", "AmazonOrderIds": order_id}
        answer = http.get("/orders/v0/orders", params=params, headers={"x-amz-access-token": token})
    (order,) = answer.json()["payload"]["Orders"]
    return str(order["OrderStatus"])


# --- the carrier --------------------------------------------------------------------------------------------


def test_it_is_registered_marks_the_order_shipped_and_is_left_out_of_the_shared_contract() -> None:
    platform = CARRIERS["amazonmfn"]
    assert platform.name == "Amazon Merchant Fulfillment" and platform.marks_order_shipped
    assert platform.credentials == ("client_id", "client_secret", "refresh_token", "region")
    assert not needs_confirmation("amazon", "amazonmfn") and needs_confirmation("amazon", "amazonshipping")


def test_a_label_is_quoted_from_the_orders_items_without_the_ship_to_bought_printed_tracked_and_voided(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier
) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    quote = _quote(client, oid)
    assert quote.fields_sent == () and quote.shipment_id == oid  # Amazon has the address: none of it went out
    assert len(quote.rates) == 3 and quote.choose("fastest").estimated_days == 1
    assert quote.choose("UPS_PTP_GND").service == "UPS_PTP_GND"
    (_, _, raw) = next(r for r in amazon.mfn.requests if r[0] == "getEligibleShipmentServices")
    details = json.loads(raw)["ShipmentRequestDetails"]
    order = amazon.orders()[oid]
    assert details["AmazonOrderId"] == oid and "ShipToAddress" not in details
    assert {(i["OrderItemId"], i["Quantity"]) for i in details["ItemList"]} == {
        (i.order_item_id, i.quantity) for i in order.items
    }
    assert details["Weight"] == {"Value": 850, "Unit": "g"}

    bought = client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-mfn-1")
    assert bought.tracking_number and amazon.mfn.purchases_by_order() == {oid: 1}
    assert amazon.orders()[oid].status == "SHIPPED" and _v0_status(amazon, oid) == "Shipped"
    label = client.label(bought)
    text = pypdf.PdfReader(io.BytesIO(label.content)).pages[0].extract_text()
    assert bought.tracking_number in text and order.ship_to.name in text  # Amazon's label, to Amazon's address
    assert client.label(bought).content == label.content
    assert client.tracking(bought).status is TrackingStatus.PRE_TRANSIT
    assert client.void(bought) is VoidStatus.PENDING  # RefundPending: the carrier refunds later
    assert client.tracking(bought).status is TrackingStatus.FAILURE
    with pytest.raises(VoidRefused):
        client.void(bought)
    for value in (quote, bought, label):
        assert_no_pii(repr(value), "a repr")
    _no_buyer_data_went_out(amazon)


def test_an_order_whose_items_come_in_pages_is_quoted_with_all_of_them(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier
) -> None:
    amazon.items_per_page = 1
    amazon.generate_orders(40, countries=("US",), statuses=["UNSHIPPED"])
    oid = next(
        i
        for i, o in amazon.orders().items()
        if o.fulfilled_by == "MERCHANT" and o.status == "UNSHIPPED" and len(o.items) > 1
    )
    _quote(client, oid)
    (_, _, raw) = next(r for r in amazon.mfn.requests if r[0] == "getEligibleShipmentServices")
    sent = {(i["OrderItemId"], i["Quantity"]) for i in json.loads(raw)["ShipmentRequestDetails"]["ItemList"]}
    assert sent == {(i.order_item_id, i.quantity) for i in amazon.orders()[oid].items}
    assert amazon.calls["getOrderItems"] == len(amazon.orders()[oid].items)


@pytest.mark.parametrize(
    ("label_format", "dpi", "amazon_format", "magic"),
    [
        (LabelFormat.ZPL, 203, "ZPL203", b"^XA"),
        (LabelFormat.ZPL, 300, "ZPL300", b"^XA"),
        (LabelFormat.PNG, 203, "PNG", b"\x89PNG"),
        (LabelFormat.PDF, 203, "PDF", b"%PDF"),
    ],
)
def test_the_label_comes_in_the_format_bought(
    amazon: FakeAmazon, label_format: LabelFormat, dpi: int, amazon_format: str, magic: bytes
) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    client = mfn_client(amazon, dataclasses.replace(MerchantFulfillmentPolicy.of(FAST), dpi=dpi))
    quote = _quote(client, oid)
    bought = client.purchase(quote.choose("UPS_PTP_GND"), label_format=label_format, reference="lv-fmt")
    label = client.label(bought)
    assert label.label_format is label_format and label.content.startswith(magic)
    (_, _, raw) = next(r for r in amazon.mfn.requests if r[0] == "createShipment")
    assert json.loads(raw)["ShipmentRequestDetails"]["ShippingServiceOptions"]["LabelFormat"] == amazon_format
    if label_format is LabelFormat.ZPL:  # drawn for the printer's resolution: 4 x 6 in of its dots
        assert bought.tracking_number.encode() in label.content
        assert f"^PW{4 * dpi}^LL{6 * dpi}".encode() in label.content
    if label_format is LabelFormat.PNG:
        assert Image.open(io.BytesIO(label.content)).format == "PNG"
    client.close()


def test_an_order_of_another_marketplace_is_refused_before_any_call(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier
) -> None:
    for order in (OrderContext("shopify", "1001"), OrderContext("walmart", "W-1"), None):
        with pytest.raises(NoMatchingRate, match="Amazon orders only") as refused:
            client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=order)
        assert_no_pii(str(refused.value), "an error message")
    assert sum(amazon.calls.values()) == 0


def test_an_order_amazon_offers_no_service_for_is_no_matching_rate(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier
) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    amazon.mfn.reject()
    quote = _quote(client, oid)
    assert quote.rates == ()
    with pytest.raises(NoMatchingRate):
        quote.choose("cheapest")
    amazon.update_order(oid, status="CANCELLED")  # an order Amazon won't ship: refused, nothing bought
    with pytest.raises(CarrierBadResponse, match="HTTP 400 InvalidInput") as refused:
        _quote(client, oid)
    assert_no_pii(str(refused.value), "an error message")
    assert amazon.mfn.purchases_by_order() == {}


def test_a_lost_purchase_is_never_bought_twice(amazon: FakeAmazon, client: MerchantFulfillmentCarrier) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    rate = _quote(client, oid).choose("cheapest")
    amazon.mfn.lose_purchase(seconds=FAST.read_timeout + 1)
    with pytest.raises(PurchaseUncertain):
        client.purchase(rate, label_format=LabelFormat.PNG, reference="lv-lost")
    assert amazon.mfn.purchases_by_order() == {oid: 1}  # Amazon did buy it
    again = mfn_client(amazon)  # a fresh client, as after a crash
    with pytest.raises(PurchaseUncertain):  # the order is Shipped, the shipment can't be looked up
        again.find_purchase(rate=rate, reference="lv-lost")
    with pytest.raises(RateChanged):  # a rate this client never quoted is never bought blindly
        again.purchase(rate, label_format=LabelFormat.PNG, reference="lv-lost")
    again.close()
    assert amazon.mfn.purchases_by_order() == {oid: 1}


def test_an_outage_is_retried_then_reported_and_a_5xx_purchase_is_settled_by_the_orders_status(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier
) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    amazon.inject(status=503, count=FAST.attempts, operation="getEligibleShipmentServices")
    with pytest.raises(CarrierUnavailable, match="HTTP 503"):
        _quote(client, oid)
    quote = _quote(client, oid)
    amazon.inject(status=503, operation="createShipment")
    with pytest.raises(PurchaseUncertain):  # a 5xx to a purchase is never taken as "nothing bought"
        client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-5xx")
    assert amazon.mfn.purchases_by_order() == {}
    assert client.find_purchase(rate=quote.choose("cheapest"), reference="lv-5xx") is None  # still Unshipped
    assert client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-5xx")
    assert amazon.mfn.purchases_by_order() == {oid: 1}


def test_an_expired_offer_is_rate_changed_with_nothing_bought(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier
) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    quote = _quote(client, oid)
    amazon.mfn.expire_offers()
    with pytest.raises(RateChanged):
        client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-exp")
    assert amazon.mfn.purchases_by_order() == {}


def test_wrong_credentials_are_refused_before_anything_goes_out(amazon: FakeAmazon) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    seller = amazon.seller()
    wrong = dataclasses.replace(mfn_client(amazon).credentials, client_secret="amzn1.oa2-cs.v1.wrong")
    client = MerchantFulfillmentCarrier(wrong, api_base=amazon.base_url, policy=FAST)
    with pytest.raises(CarrierAuthRefused):
        _quote(client, oid)
    assert amazon.calls["lwaToken"] == 1 and amazon.calls["getEligibleShipmentServices"] == 0
    assert seller.client_secret not in repr(client.credentials)
    client.close()


def test_the_fake_answers_getshipment_as_the_model_says() -> None:
    with FakeAmazon(speedup=SPEEDUP, seed=5, clock=FakeClock()) as amazon:
        (oid,) = _merchant_orders(amazon, 1)
        client = mfn_client(amazon)
        bought = client.purchase(_quote(client, oid).choose("cheapest"), label_format=LabelFormat.PDF, reference="r")
        token = _token(amazon)
        with httpx.Client(base_url=amazon.base_url) as http:
            answer = http.get(f"/mfn/v0/shipments/{bought.purchase_id}", headers={"x-amz-access-token": token})
        body = answer.json()
        assert schema_errors("getShipment", 200, body) == []
        contents = body["payload"]["Label"]["FileContents"]["Contents"]
        assert gzip.decompress(base64.b64decode(contents)).startswith(b"%PDF")
        client.close()
        assert amazon.validation_errors == [] and amazon.server_errors == []


# --- the shipment flow, both databases ----------------------------------------------------------------------


def _vault_orders(session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon, n: int = 2) -> list[Order]:
    """``n`` unshipped merchant-fulfilled orders, synced into the vault with their labels."""
    merchant = set(_merchant_orders(amazon, n))
    account = add_amazon_account(session, keys, tenant, amazon)
    synced = synced_orders(session, keys, account, make_connector(session, keys, account, amazon))
    orders = [o for o in synced if o.status == "unshipped" and o.external_order_id in merchant][:n]
    assert len(orders) == n
    return orders


def test_an_amazon_order_is_bought_once_shipped_at_amazon_and_no_confirmation_is_queued(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    orders = _vault_orders(session, keys, tenant, amazon)
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    shipment = _buy(session, keys, orders[0], label_format=LabelFormat.ZPL)
    oid = orders[0].external_order_id
    assert shipment.status == "bought" and shipment.tracking_number
    assert amazon.mfn.purchases_by_order() == {oid: 1} and _v0_status(amazon, oid) == "Shipped"
    assert _buy(session, keys, orders[0], label_format=LabelFormat.ZPL).id == shipment.id  # a retry buys nothing
    assert amazon.mfn.purchases_by_order() == {oid: 1}
    mine = select(ShipmentConfirmation).where(ShipmentConfirmation.tenant_id == tenant.id)
    assert session.scalars(mine).all() == []  # Amazon marked it shipped itself
    assert amazon.calls["confirmShipment"] == 0
    view = shipment_view(session, shipment)
    assert view["carrier"] == "amazonmfn" and view["cost"]["currency"] == "USD"
    assert_no_pii(json.dumps(view), "the shipment view")
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["fields_sent"] == []  # nothing of the address shared

    zpl = print_shipment_label(
        session, keys=keys, carriers=fast_carriers(), shipment=shipment, reprint_cap=3, actor="client:test"
    )
    assert zpl.content.startswith(b"^XA") and shipment.tracking_number.encode() in zpl.content
    status = void_shipment(session, keys=keys, carriers=fast_carriers(), shipment=shipment, actor="t")
    assert status is VoidStatus.PENDING
    assert amazon.mfn.shipments()[0]["status"] == "RefundPending"
    again = _buy(session, keys, orders[0], key="k2")  # voided, the order can be shipped again (Amazon allows it)
    assert again.status == "bought" and amazon.mfn.purchases_by_order() == {oid: 2}
    _no_buyer_data_went_out(amazon)
    assert_no_pii(json.dumps([e.details for e in audit_events(session, tenant, "shipment.purchase")]), "audit")


def test_a_lost_answer_stays_pending_and_is_never_bought_again(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    orders = _vault_orders(session, keys, tenant, amazon, n=1)
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    amazon.mfn.lose_purchase(seconds=FAST.read_timeout + 1)
    with pytest.raises(PurchaseUnsettled):
        _buy(session, keys, orders[0])
    pending = session.scalars(select(Shipment).where(Shipment.order_id == orders[0].id)).one()
    assert pending.status == "pending" and audit_events(session, tenant, "shipment.purchase") == []
    with pytest.raises(PurchaseUnsettled):  # the same key again: still unsettled, nothing bought
        _buy(session, keys, orders[0])
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers()) == (0, 0)  # not dropped either
    session.refresh(pending)
    assert pending.status == "pending"
    assert amazon.mfn.purchases_by_order() == {orders[0].external_order_id: 1}


def test_a_5xx_to_the_purchase_is_settled_by_the_order_and_bought_once(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    orders = _vault_orders(session, keys, tenant, amazon, n=1)
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    amazon.inject(status=503, operation="createShipment")
    with pytest.raises(PurchaseUnsettled):  # not bought (the order is Unshipped): the retry may buy it
        _buy(session, keys, orders[0])
    with pytest.raises(PurchaseUnsettled) as waiting:  # at once, not yet: Amazon may still be making the label
        _buy(session, keys, orders[0])
    delay = MerchantFulfillmentPolicy().settle_after
    assert waiting.value.retry_after is not None and 0 < waiting.value.retry_after <= delay
    assert f"in {waiting.value.retry_after} s" in str(waiting.value)  # the client is told how long to wait
    assert amazon.mfn.purchases_by_order() == {}
    shipment = _buy(session, keys, orders[0], now=_settled())  # a fresh client: the rate is quoted again, then bought
    assert shipment.status == "bought"
    assert amazon.mfn.purchases_by_order() == {orders[0].external_order_id: 1}
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["requoted"] is True


def _settled(after: datetime | None = None) -> datetime:
    """A moment past Merchant Fulfillment's default settle delay after ``after`` (now)."""
    return (after or utcnow()) + timedelta(seconds=MerchantFulfillmentPolicy().settle_after + 1)


def _wait_for(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the fake never got there"
        time.sleep(0.05)


def test_a_lost_purchase_amazon_is_still_making_stays_pending_and_is_never_bought_again(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    """Amazon makes the label after the client stopped waiting: the order still shows Unshipped when the flow
    asks, which is not taken as "not bought" before the settle delay, by the same key or by the worker."""
    orders = _vault_orders(session, keys, tenant, amazon, n=1)
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    oid = orders[0].external_order_id
    amazon.inject_delay(FAST.read_timeout + 3, operation="createShipment")  # bought 3 s after the client gave up
    with pytest.raises(PurchaseUnsettled):
        _buy(session, keys, orders[0])
    assert _v0_status(amazon, oid) == "Unshipped" and amazon.mfn.purchases_by_order() == {}
    with pytest.raises(PurchaseUnsettled):  # the same key at once: nothing bought again
        _buy(session, keys, orders[0])
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers()) == (0, 0)  # nor dropped
    _wait_for(lambda: amazon.mfn.purchases_by_order() == {oid: 1})  # Amazon finishes the first request
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers(), now=_settled()) == (0, 0)
    with pytest.raises(PurchaseUnsettled):  # settled now: Shipped, so pending for the seller, never bought again
        _buy(session, keys, orders[0], now=_settled())
    pending = session.scalars(select(Shipment).where(Shipment.order_id == orders[0].id)).one()
    assert pending.status == "pending" and audit_events(session, tenant, "shipment.purchase") == []
    assert amazon.mfn.purchases_by_order() == {oid: 1}


def _unsettled_by_a_5xx(session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon) -> Order:
    """An order whose purchase Amazon answered with a 503 (nothing bought): its shipment left pending."""
    (order,) = _vault_orders(session, keys, tenant, amazon, n=1)
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    amazon.inject(status=503, operation="createShipment")
    with pytest.raises(PurchaseUnsettled):
        _buy(session, keys, order)
    return order


def test_the_worker_settles_a_lost_purchase_by_the_orders_status_only_once_amazon_has_settled(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    order = _unsettled_by_a_5xx(session, keys, tenant, amazon)
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers()) == (0, 0)  # Amazon may still be buying
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers(), now=_settled()) == (0, 1)  # Unshipped
    assert session.scalars(select(Shipment).where(Shipment.order_id == order.id)).all() == []
    assert _buy(session, keys, order, key="k2").status == "bought"  # the order is free, bought once
    assert amazon.mfn.purchases_by_order() == {order.external_order_id: 1}


def test_a_buyer_killed_while_buying_is_settled_only_once_amazon_has_settled_after_its_lease(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    order = _unsettled_by_a_5xx(session, keys, tenant, amazon)
    pending = session.scalars(select(Shipment).where(Shipment.order_id == order.id)).one()
    died = utcnow() + LEASE
    pending.lease_until = died  # as if its buyer were killed holding the lease: its attempt went before the end
    session.commit()
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers(), now=died) == (0, 0)
    with pytest.raises(PurchaseUnsettled):  # the same key, the lease run out: not yet settled either
        _buy(session, keys, order, now=died + timedelta(seconds=1))
    assert reconcile_pending(session, keys=keys, carriers=fast_carriers(), now=_settled(died)) == (0, 1)
    assert amazon.mfn.purchases_by_order() == {}


def test_the_settle_delay_is_the_policys_and_the_carrier_pool_hands_it_on(amazon: FakeAmazon) -> None:
    client = mfn_client(amazon, MerchantFulfillmentPolicy(settle_after=60))
    assert client.settle_delay == timedelta(seconds=60)
    assert mfn_client(amazon).settle_delay == timedelta(minutes=5)  # the default: a few minutes
    account = CarrierAccount(id=1, tenant_id=1, carrier="amazonmfn", name="MFN", api_endpoint=amazon.base_url)
    borrowed = CarrierPool(lambda _account, _secrets: client)(account, {})
    assert getattr(borrowed, "settle_delay", None) == timedelta(seconds=60)
    borrowed.close()
    client.close()


def test_an_outage_records_nothing(session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon) -> None:
    orders = _vault_orders(session, keys, tenant, amazon, n=1)
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    amazon.inject(status=503, count=10, operation="getEligibleShipmentServices")
    with pytest.raises(CarrierUnavailable):
        _buy(session, keys, orders[0])
    assert session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all() == []
    assert amazon.mfn.purchases_by_order() == {}
    assert audit_events(session, tenant, "shipment.purchase") == []  # no address went out: no share to audit


def test_an_order_of_another_marketplace_bought_through_merchant_fulfillment_is_refused_unshared(
    session: Session, keys: KeyManager, tenant: Tenant, amazon: FakeAmazon
) -> None:
    account = MarketplaceAccount(tenant_id=tenant.id, marketplace="shopify", name="Shop", region="global",
                                 api_version="2026-07", marketplace_ids=["shop.example"])  # fmt: skip
    session.add(account)
    session.flush()
    facts = dataclasses.replace(sample_facts(0), marketplace="shopify", marketplace_id="shop.example")
    order = store_order(session, keys=keys, account=account, facts=facts, label=sample_label(0)).order
    session.commit()
    assert order.marketplace == "shopify"
    connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
    with pytest.raises(NoMatchingRate, match="Amazon orders only"):
        _buy(session, keys, order)
    assert session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all() == []
    assert audit_events(session, tenant, "shipment.purchase") == []
    assert sum(amazon.calls.values()) == 0


# --- the shipment API ---------------------------------------------------------------------------------------

API_PARCEL = {"weight_g": 850, "length_mm": 300, "width_mm": 200, "height_mm": 120}


@pytest.fixture
def world(shared_db: Database, keys: KeyManager, amazon: FakeAmazon) -> tuple[World, list[str]]:
    built = build_world(shared_db, keys, n_orders=0, scopes=(SHIPMENTS_BUY,))
    with built.session() as s:
        orders = _vault_orders(s, keys, built.tenant, amazon)
        connect_fake_amazon_mfn(s, keys, built.tenant.id, amazon)
        ids = [o.external_order_id for o in orders]
    return built, ids


def test_the_shipment_api_buys_prints_and_voids_a_merchant_fulfillment_label(
    make_app: Any, shared_db: Database, world: tuple[World, list[str]], amazon: FakeAmazon
) -> None:
    built, ids = world
    app = make_app(shared_db.app_url, marketplace_endpoint_overrides=amazon.base_url)
    client = app.test_client()
    payload = {"marketplace": "amazon", "order_id": ids[0], "parcel": API_PARCEL, "format": "png"}
    headers = built.auth() | {"Idempotency-Key": "mfn-1"}
    resp = client.post("/v1/shipments", json=payload, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    shipment = resp.get_json()
    assert shipment["carrier"] == "amazonmfn" and shipment["tracking_number"]
    assert_no_pii(resp.get_data(as_text=True), "a shipment")
    assert client.post("/v1/shipments", json=payload, headers=headers).get_json()["id"] == shipment["id"]
    assert amazon.mfn.purchases_by_order() == {ids[0]: 1} and _v0_status(amazon, ids[0]) == "Shipped"

    label = client.get(f"/v1/shipments/{shipment['id']}/label", headers=built.auth())
    assert label.status_code == 200 and label.mimetype == "image/png"
    assert Image.open(io.BytesIO(label.data)).format == "PNG"
    void = client.post(f"/v1/shipments/{shipment['id']}/void", headers=built.auth())
    assert void.status_code == 200 and void.get_json()["status"] == "voided"
    with built.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == built.tenant.id)).all()
        assert (
            s.scalars(select(ShipmentConfirmation).where(ShipmentConfirmation.tenant_id == built.tenant.id)).all() == []
        )
    shares = [e for e in events if e.purpose == "shipping-label"]
    assert [e.action for e in shares] == ["shipment.purchase", "shipment.label", "shipment.void"]
    assert_no_pii(json.dumps([e.details for e in events]), "the audit chain")
    _no_buyer_data_went_out(amazon)


def test_the_api_tells_a_client_how_long_amazon_may_still_be_making_a_lost_label(
    make_app: Any, shared_db: Database, world: tuple[World, list[str]], amazon: FakeAmazon
) -> None:
    built, ids = world
    client = make_app(shared_db.app_url, marketplace_endpoint_overrides=amazon.base_url).test_client()
    payload = {"marketplace": "amazon", "order_id": ids[1], "parcel": API_PARCEL, "format": "pdf"}
    headers = built.auth() | {"Idempotency-Key": "mfn-lost"}
    amazon.inject(status=503, operation="createShipment")
    first = client.post("/v1/shipments", json=payload, headers=headers)
    assert first.status_code == 503 and first.get_json()["type"].endswith("purchase-unsettled")
    again = client.post("/v1/shipments", json=payload, headers=headers)  # at once: Amazon may still be at it
    assert again.status_code == 503 and again.get_json()["type"].endswith("purchase-unsettled")
    wait = int(again.headers["Retry-After"])
    assert 5 < wait <= MerchantFulfillmentPolicy().settle_after and f"in {wait} s" in again.get_json()["detail"]
    assert amazon.mfn.purchases_by_order() == {}
    with built.session() as s:  # the delay passed: the retry buys it, once
        pending = s.scalars(select(Shipment).where(Shipment.tenant_id == built.tenant.id, Shipment.status == "pending"))
        (shipment,) = pending.all()
        shipment.lease_until = utcnow() - timedelta(seconds=MerchantFulfillmentPolicy().settle_after + 1)
        s.commit()
    bought = client.post("/v1/shipments", json=payload, headers=headers)
    assert bought.status_code == 201 and amazon.mfn.purchases_by_order() == {ids[1]: 1}
    assert client.post(f"/v1/shipments/{bought.get_json()['id']}/void", headers=built.auth()).status_code == 200


def test_a_merchant_fulfillment_outage_is_a_clear_503_with_nothing_half_recorded(
    make_app: Any, shared_db: Database, world: tuple[World, list[str]], amazon: FakeAmazon
) -> None:
    built, ids = world
    app = make_app(shared_db.app_url, marketplace_endpoint_overrides=amazon.base_url)
    amazon.inject(status=503, count=10, operation="getEligibleShipmentServices")
    payload = {"marketplace": "amazon", "order_id": ids[1], "parcel": API_PARCEL}
    resp = app.test_client().post("/v1/shipments", json=payload, headers=built.auth() | {"Idempotency-Key": "o"})
    assert resp.status_code == 503, resp.get_json()
    assert_no_pii(resp.get_data(as_text=True), "a problem")
    with built.session() as s:
        assert s.scalars(select(Shipment).where(Shipment.tenant_id == built.tenant.id)).all() == []
    assert amazon.mfn.purchases_by_order() == {}


def test_a_long_lived_client_forgets_its_oldest_quotes(
    amazon: FakeAmazon, client: MerchantFulfillmentCarrier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.carriers.amazon_mfn.client.MAX_OFFERS", 3)
    first, second = _merchant_orders(amazon, 2)
    old = _quote(client, first).choose("cheapest")
    new = _quote(client, second)  # three more services: the first order's are forgotten
    with pytest.raises(RateChanged):
        client.purchase(old, label_format=LabelFormat.PDF, reference="old")
    assert client.purchase(new.choose("cheapest"), label_format=LabelFormat.PDF, reference="new")
    assert amazon.mfn.purchases_by_order() == {second: 1}


def test_an_account_is_served_from_its_regions_host_and_amazons_login() -> None:
    na, eu, fe = (REGIONS[r] for r in ("na", "eu", "fe"))
    assert region_base(eu, "fe") == fe and region_base(SANDBOX_REGIONS["na"], "eu") == SANDBOX_REGIONS["eu"]
    assert region_base("http://127.0.0.1:9000/", "fe") == "http://127.0.0.1:9000"  # an allowed fake, as it is
    assert lwa_url_for(na) == LWA_URL and lwa_url_for("http://127.0.0.1:9000") == "http://127.0.0.1:9000/auth/o2/token"
    assert min(CARRIERS["amazonmfn"].api_hosts) in (na, eu, fe)


def test_a_cancelled_shipment_has_no_label(amazon: FakeAmazon, client: MerchantFulfillmentCarrier) -> None:
    (oid,) = _merchant_orders(amazon, 1)
    bought = client.purchase(_quote(client, oid).choose("cheapest"), label_format=LabelFormat.PDF, reference="c")
    client.void(bought)
    with pytest.raises(CarrierBadResponse, match="cancelled"):
        client.label(bought)


def test_a_wave_buys_each_amazon_order_once_and_a_retried_wave_buys_nothing_more(
    shared_db: Database, keys: KeyManager, amazon: FakeAmazon
) -> None:
    sessions = make_session_factory(shared_db.engine)
    with sessions() as s:
        tenant = create_tenant(s, keys=keys, slug=f"mfn-{uuid.uuid4().hex[:6]}", name="Wave", actor="test")
        orders = _vault_orders(s, keys, tenant, amazon, n=4)
        connect_fake_amazon_mfn(s, keys, tenant.id, amazon)
        tenant_id, requests = tenant.id, [ship_request(o) for o in orders]

    def run() -> list[Any]:
        return buy_wave(
            sessions, keys=keys, carriers=fast_carriers(), tenant_id=tenant_id, client_id=None, actor="client:test",
            idempotency_key_hash=key_hash("mfn-wave"), requests=requests, concurrency=2,
        )  # fmt: skip

    first = run()
    assert [r.error for r in first] == [None] * 4
    assert run() == first  # the same shipments again, nothing bought
    assert amazon.mfn.purchases_by_order() == {r.order_id: 1 for r in requests}
    assert all(amazon.orders()[r.order_id].status == "SHIPPED" for r in requests)
    with sessions() as s:
        confirmations = s.scalars(select(ShipmentConfirmation).where(ShipmentConfirmation.tenant_id == tenant_id))
        assert confirmations.all() == []


def test_the_vault_order_becomes_shipped_with_the_next_sync(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    clock = FakeClock()
    with FakeAmazon(speedup=SPEEDUP, seed=7, clock=clock) as amazon:
        (order,) = _vault_orders(session, keys, tenant, amazon, n=1)
        connect_fake_amazon_mfn(session, keys, tenant.id, amazon)
        assert _buy(session, keys, order).status == "bought"
        assert session.get_one(Order, order.id).status == "unshipped"  # no confirmation runs to say so
        clock.advance(minutes=5)  # past Amazon's two-minute settling window
        account = session.get_one(MarketplaceAccount, order.account_id)
        synced_orders(session, keys, account, make_connector(session, keys, account, amazon))
        session.expire_all()
        assert session.get_one(Order, order.id).status == "shipped"  # Amazon's own status, synced
        assert amazon.validation_errors == [] and amazon.server_errors == []
