"""Amazon Shipping v2 for an Amazon order takes the ship-to from the order (issue 18): no ``shipTo`` in any
request, the quote's ``fields_sent`` and the purchase's audit event empty, the label printed with the order's
own address; an order Amazon doesn't know falls back to sending the ship-to and says so; an external order
sends it as before. And ``oneClickShipment`` (``AmazonShippingPolicy.one_click``): the rate's service bought
in one call, once; a lost answer is never bought again (Amazon keeps no key to retry it under); an outage
buys nothing. Against the fake Amazon Shipping over real HTTP, the shipment flow on both databases."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.carriers.amazon_shipping import AmazonShippingCarrier
from connectors.carriers.interfaces import (
    AddressRejected,
    CarrierUnavailable,
    LabelFormat,
    OrderContext,
    PurchaseUncertain,
    RateChanged,
)
from connectors.carriers.shipments import buy_wave, key_hash, print_shipment_label, reconcile_pending
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.fake_amazon_shipping import FakeAmazonShipping
from connectors.samples import sample_label
from tests.support.buyers import SEATTLE
from tests.support.carriers import (
    FAST_AMAZON,
    PARCEL,
    SHIP_FROM,
    amazon_address,
    amazon_shipping_client,
    connect_fake_amazon_shipping,
    fast_amazon_carriers,
    ship_request,
)
from tests.support.servers import Database
from tests.support.shipments import audit_events, buy
from tests.support.vault import make_account, make_orders
from vault.db import make_session_factory
from vault.errors import PurchaseUnsettled
from vault.keys import KeyManager
from vault.models import AuditEvent, CarrierAccount, Order, Shipment, Tenant
from vault.records import LabelRecord
from vault.tenants import create_tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

ORDER = OrderContext("amazon", "112-0000000-0000001")
ONE_CLICK = dataclasses.replace(FAST_AMAZON, one_click=True)
_BUYER_FIELDS = ("name", "company", "address_line1", "address_line2", "address_line3", "phone")


def assert_no_buyer_data_sent(fake: FakeAmazonShipping, record: LabelRecord) -> None:
    """No request the fake received (query or body) carries a value of the buyer's (as sent or JSON-escaped)."""
    assert fake.requests, "the fake saw no request"
    for value in (getattr(record, f) for f in _BUYER_FIELDS):
        if not value:
            continue
        for operation, text in fake.requests:
            assert value not in text and json.dumps(value)[1:-1] not in text, f"buyer data sent in {operation}"


def ship_tos(fake: FakeAmazonShipping) -> list[str]:
    """The operations whose request body had a ``shipTo``."""
    return [op for op, text in fake.requests if '"shipTo"' in text]


@pytest.fixture
def fake() -> Iterator[FakeAmazonShipping]:
    with FakeAmazonShipping() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def amazon(fake: FakeAmazonShipping) -> Iterator[AmazonShippingCarrier]:
    client = amazon_shipping_client(fake)
    yield client
    client.close()


# --- the client ---------------------------------------------------------------------------------------------


def test_an_amazon_order_is_quoted_and_bought_without_the_ship_to_and_printed_with_the_orders_address(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    quote = amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=ORDER)
    assert quote.fields_sent == ()
    bought = amazon.purchase(quote.choose("cheapest"), label_format=LabelFormat.ZPL, reference="lv-1")
    label = amazon.label(bought)
    assert ship_tos(fake) == []
    assert_no_buyer_data_sent(fake, SEATTLE)
    assert SEATTLE.name is not None and SEATTLE.name.encode() in label.content  # Amazon's copy of the address
    assert fake.purchases_by_key() == {"lv-1": 1}


def test_the_fake_marketplaces_order_is_shipped_with_none_of_its_buyer_data_sent() -> None:
    # One source of truth: Amazon Shipping knows the fake marketplace's orders as the marketplace serves them.
    with FakeAmazon(seed=11, clock=FakeClock()) as amazon, FakeAmazonShipping(marketplace=amazon) as fake:
        amazon.generate_orders(8, countries=("US",), statuses=["UNSHIPPED"])
        oid, order = next((k, o) for k, o in amazon.orders().items() if o.fulfilled_by == "MERCHANT")
        record = LabelRecord(**amazon.expected_label(oid))  # what the vault holds for the order
        for policy in (FAST_AMAZON, ONE_CLICK):
            client = amazon_shipping_client(fake, policy)
            try:
                quote = client.quote(
                    ship_from=SHIP_FROM, ship_to=record, parcel=PARCEL, order=OrderContext("amazon", oid)
                )
                bought = client.purchase(quote.choose("SWA-US-GROUND"), label_format=LabelFormat.ZPL, reference=oid)
                assert quote.fields_sent == () and order.ship_to.name.encode() in client.label(bought).content
            finally:
                client.close()
        assert fake.calls["purchaseShipment"] == 1 and fake.calls["oneClickShipment"] == 1
        pii = amazon.buyer_pii_strings()
        assert pii and ship_tos(fake) == []
        for operation, text in fake.requests:
            assert not [v for v in pii if v and (v in text or json.dumps(v)[1:-1] in text)], operation
        assert fake.validation_errors == [] and fake.server_errors == []


def test_an_amazon_order_amazon_does_not_know_falls_back_to_the_ship_to_and_says_so(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    quote = amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=ORDER)
    assert "name" in quote.fields_sent and "address_line1" in quote.fields_sent
    assert fake.calls["getRates"] == 2 and ship_tos(fake) == ["getRates"]  # refused without it, then sent
    bought = amazon.purchase(quote.choose("cheapest"), label_format=LabelFormat.ZPL, reference="lv-2")
    assert SEATTLE.name is not None and SEATTLE.name.encode() in amazon.label(bought).content


def test_an_external_order_and_a_policy_turned_off_send_the_ship_to(fake: FakeAmazonShipping) -> None:
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    off = amazon_shipping_client(fake, dataclasses.replace(FAST_AMAZON, ship_to_from_order=False))
    on = amazon_shipping_client(fake)
    try:
        for client, order in ((on, OrderContext("shopify", "1001")), (on, None), (off, ORDER)):
            before = len(ship_tos(fake))
            quote = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=order)
            assert "name" in quote.fields_sent and len(ship_tos(fake)) == before + 1
            assert fake.last_requests["getRates"]["body"]["shipTo"]["name"] == SEATTLE.name
    finally:
        off.close()
        on.close()


def test_a_failed_quote_says_what_its_requests_carried(fake: FakeAmazonShipping, amazon: AmazonShippingCarrier) -> None:
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    for order, carried in ((ORDER, ()), (None, ("name", "address_line1"))):
        fake.fail(status=503, count=FAST_AMAZON.attempts, operation="getRates")
        with pytest.raises(CarrierUnavailable) as failed:
            amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=order)
        assert failed.value.fields_sent is not None
        assert set(carried) <= set(failed.value.fields_sent) and bool(carried) == bool(failed.value.fields_sent)


def test_one_click_buys_the_named_service_in_one_call_once_without_the_ship_to(fake: FakeAmazonShipping) -> None:
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    client = amazon_shipping_client(fake, ONE_CLICK)
    try:
        quote = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=ORDER)
        assert quote.fields_sent == ()
        rate = quote.choose("SWA-US-2DAY")
        bought = client.purchase(rate, label_format=LabelFormat.PNG, reference="lv-3")
        sent = fake.last_requests["oneClickShipment"]["body"]
        assert sent["serviceSelection"] == {"serviceId": ["SWA-US-2DAY"]}
        assert sent["channelDetails"]["amazonOrderDetails"] == {"orderId": ORDER.order_id}
        assert sent["labelSpecifications"]["format"] == "PNG" and sent["labelSpecifications"]["dpi"] == 203
        assert fake.calls["oneClickShipment"] == 1 and fake.calls["purchaseShipment"] == 0
        assert [s["rate_id"] for s in fake.shipments()] and len(fake.shipments()) == 1
        assert bought.rate.service == "SWA-US-2DAY" and bought.rate.amount == rate.amount  # what Amazon charged
        assert ship_tos(fake) == []
        assert_no_buyer_data_sent(fake, SEATTLE)
        assert SEATTLE.name is not None
        client.label(bought)  # served again by getShipmentDocuments
        external = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=None)
        client.purchase(external.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-4")
        assert fake.calls["purchaseShipment"] == 1  # an external order keeps purchaseShipment (its key)
    finally:
        client.close()


def test_a_lost_one_click_answer_is_uncertain_and_never_bought_again(fake: FakeAmazonShipping) -> None:
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    client = amazon_shipping_client(fake, ONE_CLICK)
    try:
        rate = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=ORDER).choose("cheapest")
        fake.lose_purchase(seconds=FAST_AMAZON.read_timeout + 1, operation="oneClickShipment")
        with pytest.raises(PurchaseUncertain):
            client.purchase(rate, label_format=LabelFormat.PDF, reference="lv-5")
        with pytest.raises(PurchaseUncertain):
            client.find_purchase(rate=rate, reference="lv-5")
        assert fake.calls["oneClickShipment"] == 1 and len(fake.shipments()) == 1  # bought once, never twice
        fake.fail(status=503, operation="oneClickShipment")
        with pytest.raises(PurchaseUncertain):  # a 5xx to a purchase may have bought: uncertain, never retried
            client.purchase(rate, label_format=LabelFormat.PDF, reference="lv-6")
        assert fake.calls["oneClickShipment"] == 2 and len(fake.shipments()) == 1
    finally:
        client.close()


def test_a_one_click_refusal_buys_nothing(fake: FakeAmazonShipping) -> None:
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    client = amazon_shipping_client(fake, ONE_CLICK)
    other = amazon_shipping_client(fake, ONE_CLICK)
    try:
        rate = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=ORDER).choose("cheapest")
        with pytest.raises(RateChanged):  # the body stayed with the client that quoted: quote again
            other.purchase(rate, label_format=LabelFormat.PDF, reference="lv-7")
        fake.reject_address(operation="oneClickShipment")
        with pytest.raises(AddressRejected) as refused:
            client.purchase(rate, label_format=LabelFormat.PDF, reference="lv-7")
        assert "postal" not in str(refused.value)  # Amazon's text is read, never passed on
        fake.fail(status=429, count=FAST_AMAZON.attempts, operation="oneClickShipment")
        with pytest.raises(CarrierUnavailable, match="throttling"):  # a 429 was refused whole: nothing bought
            client.purchase(rate, label_format=LabelFormat.PDF, reference="lv-7")
        assert fake.shipments() == []
        assert client.purchase(rate, label_format=LabelFormat.PDF, reference="lv-7").tracking_number
        assert len(fake.shipments()) == 1
    finally:
        client.close()
        other.close()


def test_a_one_click_purchase_that_cannot_reach_amazon_buys_nothing() -> None:
    fake = FakeAmazonShipping().start()
    fake.know_orders({ORDER.order_id: amazon_address(SEATTLE)})
    client = amazon_shipping_client(fake, ONE_CLICK)
    try:
        rate = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=ORDER).choose("cheapest")
        fake.stop()  # Amazon is unreachable: the request never left, so nothing can have been bought
        with pytest.raises(CarrierUnavailable):
            client.purchase(rate, label_format=LabelFormat.PDF, reference="lv-8")
        assert fake.shipments() == [] and fake.calls["oneClickShipment"] == 0
    finally:
        client.close()
        fake.stop()


# --- the shipment flow, both databases ----------------------------------------------------------------------


@pytest.fixture
def orders(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazonShipping) -> list[Order]:
    """Three Amazon orders in the vault, whose addresses Amazon has too (the same sample buyers)."""
    account = make_account(session, tenant)
    made = make_orders(session, keys, account, 3)
    session.commit()
    fake.know_orders({o.external_order_id: amazon_address(sample_label(i)) for i, o in enumerate(made)})
    return made


@pytest.fixture
def carrier_account(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazonShipping) -> CarrierAccount:
    return connect_fake_amazon_shipping(session, keys, tenant.id, fake)


@pytest.mark.usefixtures("carrier_account")
@pytest.mark.parametrize("policy", [FAST_AMAZON, ONE_CLICK], ids=["purchaseShipment", "oneClickShipment"])
def test_the_flow_buys_an_amazon_order_sharing_nothing_of_the_buyer(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    orders: list[Order],
    fake: FakeAmazonShipping,
    policy: Any,
) -> None:
    carriers = partial(fast_amazon_carriers, policy)
    shipment = buy(session, keys, orders[0], carriers=carriers, service="SWA-US-2DAY", label_format=LabelFormat.ZPL)
    assert shipment.status == "bought" and shipment.service == "SWA-US-2DAY"
    assert shipment.fields_sent == []
    [event] = audit_events(session, tenant, "shipment.purchase")
    assert event.details["fields_sent"] == [] and event.details["result"] == "bought"
    doc = print_shipment_label(
        session, keys=keys, carriers=carriers(), shipment=shipment, reprint_cap=3, actor="client:test"
    )
    buyer = sample_label(0)
    assert buyer.name is not None and buyer.name.encode() in doc.content  # the order's address, from Amazon
    assert ship_tos(fake) == []
    assert_no_buyer_data_sent(fake, buyer)
    assert len(fake.shipments()) == 1
    assert fake.calls["oneClickShipment" if policy.one_click else "purchaseShipment"] == 1


@pytest.mark.usefixtures("carrier_account")
def test_the_flow_records_the_ship_to_it_sent_for_an_order_amazon_does_not_know(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    unknown = make_orders(session, keys, make_account(session, tenant, name="other"), 1, start=7)[0]
    session.commit()
    shipment = buy(session, keys, unknown, carriers=fast_amazon_carriers)
    assert shipment.status == "bought" and "name" in (shipment.fields_sent or [])
    [event] = audit_events(session, tenant, "shipment.purchase")
    assert "address_line1" in event.details["fields_sent"]
    assert ship_tos(fake) == ["getRates"]


@pytest.mark.usefixtures("carrier_account")
def test_a_lost_one_click_purchase_stays_pending_and_is_never_bought_twice(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    carriers = partial(fast_amazon_carriers, ONE_CLICK)
    fake.lose_purchase(seconds=FAST_AMAZON.read_timeout + 1, operation="oneClickShipment")
    with pytest.raises(PurchaseUnsettled):
        buy(session, keys, orders[0], carriers=carriers)
    with pytest.raises(PurchaseUnsettled):  # the same key again: still unsettled, not bought again
        buy(session, keys, orders[0], carriers=carriers)
    assert reconcile_pending(session, keys=keys, carriers=carriers()) == (0, 0)  # kept, not dropped
    [pending] = session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all()
    session.refresh(pending)
    assert pending.status == "pending"
    assert fake.calls["oneClickShipment"] == 1 and len(fake.shipments()) == 1


@pytest.mark.usefixtures("carrier_account")
def test_an_outage_buys_and_records_nothing(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    fake.fail(status=503, count=10, operation="getRates")
    with pytest.raises(CarrierUnavailable):
        buy(session, keys, orders[0], carriers=partial(fast_amazon_carriers, ONE_CLICK))
    assert session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all() == []
    assert audit_events(session, tenant, "shipment.purchase") == []  # nothing of the buyer went out to audit
    assert fake.shipments() == [] and fake.calls["oneClickShipment"] == 0 and ship_tos(fake) == []


def test_a_one_click_wave_buys_each_amazon_order_once_sharing_nothing(
    shared_db: Database, keys: KeyManager, fake: FakeAmazonShipping
) -> None:
    sessions = make_session_factory(shared_db.engine)
    with sessions() as s:
        tenant = create_tenant(s, keys=keys, slug=f"oc-{uuid.uuid4().hex[:6]}", name="Wave", actor="test")
        made = make_orders(s, keys, make_account(s, tenant), 4)
        s.commit()
        fake.know_orders({o.external_order_id: amazon_address(sample_label(i)) for i, o in enumerate(made)})
        connect_fake_amazon_shipping(s, keys, tenant.id, fake)
        tenant_id, requests = tenant.id, [ship_request(o, service="SWA-US-GROUND") for o in made]

    def run() -> list[Any]:
        return buy_wave(
            sessions, keys=keys, carriers=fast_amazon_carriers(ONE_CLICK), tenant_id=tenant_id, client_id=None,
            actor="client:test", idempotency_key_hash=key_hash("oc-wave"), requests=requests, concurrency=2,
        )  # fmt: skip

    first = run()
    assert [r.error for r in first] == [None] * 4
    assert run() == first  # the same shipments again, nothing bought
    assert fake.calls["oneClickShipment"] == 4 and len(fake.shipments()) == 4 and fake.calls["purchaseShipment"] == 0
    assert ship_tos(fake) == []
    with sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)).all()
        purchases = [e for e in events if e.action == "shipment.purchase"]
        assert len(purchases) == 4 and all(e.details["fields_sent"] == [] for e in purchases)
