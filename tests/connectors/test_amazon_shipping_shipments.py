"""Amazon Shipping v2 as the carrier behind the shipment flow (connectors/carriers/shipments.py) and the
shipment API, on both databases, against the fake Amazon Shipping: bought once whatever fails, printed in
each format, voided, an Amazon order quoted as an Amazon order; a lost purchase is settled by Amazon's
idempotent retry, and one Amazon can't settle stays pending (never bought twice, never dropped)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import pypdf
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.carriers.interfaces import AddressRejected, LabelFormat, VoidRefused
from connectors.carriers.shipments import (
    print_shipment_label,
    reconcile_pending,
    shipment_view,
    void_shipment,
)
from connectors.fake_amazon_shipping import FakeAmazonShipping
from connectors.samples import sample_label
from tests.support.carriers import (
    FAST_AMAZON,
    amazon_address,
    connect_fake_amazon_shipping,
    fast_amazon_carriers,
)
from tests.support.servers import Database
from tests.support.shipments import audit_events, buy
from tests.support.vault import make_account, make_orders
from tests.support.world import World, assert_no_pii, build_world
from vault.clients import SHIPMENTS_BUY
from vault.errors import PurchaseUnsettled
from vault.keys import KeyManager
from vault.models import AuditEvent, CarrierAccount, Order, Shipment, Tenant

#: A label bought from the fake Amazon Shipping.
_buy = partial(buy, carriers=fast_amazon_carriers)

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


@pytest.fixture
def fake() -> Iterator[FakeAmazonShipping]:
    with FakeAmazonShipping() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def orders(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazonShipping) -> list[Order]:
    """Three Amazon orders, which Amazon has too (so they are quoted without the ship-to)."""
    account = make_account(session, tenant)
    made = make_orders(session, keys, account, 3)
    session.commit()
    fake.know_orders({o.external_order_id: amazon_address(sample_label(i)) for i, o in enumerate(made)})
    return made


@pytest.fixture
def carrier_account(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazonShipping) -> CarrierAccount:
    return connect_fake_amazon_shipping(session, keys, tenant.id, fake)


@pytest.mark.usefixtures("carrier_account")
def test_an_amazon_order_is_bought_once_printed_in_each_format_and_voided(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    shipment = _buy(session, keys, orders[0], label_format=LabelFormat.ZPL)
    assert shipment.status == "bought" and shipment.tracking_number and shipment.tracking_number.startswith("TBA")
    assert fake.purchases_by_key() == {shipment.reference: 1}  # the vault's reference is the idempotency key
    channel = fake.last_requests["getRates"]["body"]["channelDetails"]
    assert channel == {"channelType": "AMAZON", "amazonOrderDetails": {"orderId": orders[0].external_order_id}}
    view = shipment_view(session, shipment)
    assert view["carrier"] == "amazonshipping" and view["service"] == "SWA-US-GROUND"
    assert view["cost"]["currency"] == "USD"
    assert_no_pii(json.dumps(view), "the shipment view")
    assert _buy(session, keys, orders[0], label_format=LabelFormat.ZPL).id == shipment.id  # a retry: nothing bought
    assert sum(fake.purchases_by_key().values()) == 1

    zpl = print_shipment_label(
        session, keys=keys, carriers=fast_amazon_carriers(), shipment=shipment, reprint_cap=3, actor="client:test"
    )
    assert zpl.content.startswith(b"^XA") and shipment.tracking_number.encode() in zpl.content
    assert fake.last_requests["getShipmentDocuments"]["args"] == {
        "packageClientReferenceId": "1",
        "format": "ZPL",
        "dpi": "203",
    }
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.purpose == "shipping-label" and event.details is not None
    # Amazon took the ship-to from the order: nothing of the buyer's went out, and the event says so.
    assert event.details["carrier"] == "amazonshipping" and event.details["fields_sent"] == []
    assert "shipTo" not in fake.last_requests["getRates"]["body"]

    assert void_shipment(session, keys=keys, carriers=fast_amazon_carriers(), shipment=shipment, actor="t").value == (
        "voided"
    )
    assert fake.shipments()[0]["cancelled"] is True
    assert_no_pii(
        json.dumps([e.details for e in audit_events(session, tenant, "shipment.purchase")]), "the audit chain"
    )


@pytest.mark.usefixtures("carrier_account")
@pytest.mark.parametrize("label_format", [LabelFormat.PDF, LabelFormat.PNG])
def test_pdf_and_png_labels_are_the_carriers_own(
    session: Session, keys: KeyManager, orders: list[Order], label_format: LabelFormat
) -> None:
    shipment = _buy(session, keys, orders[1], label_format=label_format)
    doc = print_shipment_label(
        session, keys=keys, carriers=fast_amazon_carriers(), shipment=shipment, reprint_cap=3, actor="client:test"
    )
    assert doc.label_format is label_format
    if label_format is LabelFormat.PDF:
        text = pypdf.PdfReader(io.BytesIO(doc.content)).pages[0].extract_text()
        assert shipment.tracking_number is not None and shipment.tracking_number in text
    else:
        assert Image.open(io.BytesIO(doc.content)).format == "PNG"


@pytest.mark.usefixtures("carrier_account")
def test_a_cancel_amazon_refuses_leaves_the_label_bought(
    session: Session, keys: KeyManager, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    shipment = _buy(session, keys, orders[0])
    fake.refuse_cancel()
    with pytest.raises(VoidRefused):
        void_shipment(session, keys=keys, carriers=fast_amazon_carriers(), shipment=shipment, actor="t")
    session.refresh(shipment)
    assert shipment.status == "bought"


@pytest.mark.usefixtures("carrier_account")
def test_a_lost_answer_is_settled_by_amazons_idempotent_retry_never_bought_twice(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    fake.lose_purchase(seconds=FAST_AMAZON.read_timeout + 1)
    shipment = _buy(session, keys, orders[0])
    assert shipment.status == "bought"
    assert fake.purchases_by_key() == {shipment.reference: 1}
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["reconciled"] is True


@pytest.mark.usefixtures("carrier_account")
def test_a_quote_expired_before_the_purchase_is_quoted_again_and_bought_once(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    fake.expire_at_purchase()  # the quote lapses between the vault's quote and its purchase
    shipment = _buy(session, keys, orders[0])
    assert shipment.status == "bought" and fake.calls["getRates"] == 2
    assert fake.purchases_by_key() == {shipment.reference: 1}
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["requoted"] is True


@pytest.mark.usefixtures("carrier_account")
def test_a_lost_answer_amazon_cannot_settle_stays_pending_and_is_never_bought_again(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    # The purchase's answer is lost (503) and Amazon refuses the retry too (the quote expired meanwhile):
    # nobody can say whether a label exists, so the shipment stays pending for the seller, never re-bought.
    fake.fail(status=503, count=1, operation="purchaseShipment")
    fake.expire_at_purchase(count=10)
    with pytest.raises(PurchaseUnsettled):
        _buy(session, keys, orders[0])
    pending = session.scalars(select(Shipment).where(Shipment.order_id == orders[0].id)).one()
    assert pending.status == "pending" and audit_events(session, tenant, "shipment.purchase") == []
    with pytest.raises(PurchaseUnsettled):  # the same key again: still unsettled, nothing bought
        _buy(session, keys, orders[0])
    assert reconcile_pending(session, keys=keys, carriers=fast_amazon_carriers()) == (0, 0)  # not dropped
    session.refresh(pending)
    assert pending.status == "pending"
    assert fake.purchases_by_key() == {}


@pytest.mark.usefixtures("carrier_account")
def test_an_address_amazon_refuses_leaves_no_shipment_and_audits_the_share(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    fake.reject_address()
    with pytest.raises(AddressRejected) as refused:
        _buy(session, keys, orders[0])
    assert_no_pii(str(refused.value), "an error message")
    assert session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all() == []
    # Amazon refused the address it holds for the order: nothing of the buyer's went out, nothing to audit.
    assert audit_events(session, tenant, "shipment.purchase") == []
    # An order Amazon doesn't know: the ship-to went out in the fallback quote, and the refused share is audited.
    unknown = make_orders(session, keys, make_account(session, tenant, name="other"), 1, start=7)[0]
    session.commit()
    fake.reject_address()  # the fallback's ship-to (the first quote was refused for the unknown order)
    with pytest.raises(AddressRejected):
        _buy(session, keys, unknown, "k2")
    [event] = audit_events(session, tenant, "shipment.purchase")
    assert event.outcome == "failed:address-rejected" and event.details is not None
    assert "address_line1" in event.details["fields_sent"]
    assert fake.purchases_by_key() == {}


# --- the shipment API ---------------------------------------------------------------------------------------

PARCEL = {"weight_g": 850, "length_mm": 300, "width_mm": 200, "height_mm": 120}


@pytest.fixture
def world(shared_db: Database, keys: KeyManager, fake: FakeAmazonShipping) -> World:
    built = build_world(shared_db, keys, n_orders=2, scopes=(SHIPMENTS_BUY,))
    with built.session() as s:
        connect_fake_amazon_shipping(s, keys, built.tenant.id, fake)
    return built


def test_the_shipment_api_buys_prints_and_voids_an_amazon_shipping_label(
    make_app: Any, shared_db: Database, world: World, fake: FakeAmazonShipping
) -> None:
    app = make_app(shared_db.app_url, marketplace_endpoint_overrides=fake.base_url)
    client = app.test_client()
    payload = {"marketplace": "amazon", "order_id": world.order_ids[0], "parcel": PARCEL, "format": "png"}
    headers = world.auth() | {"Idempotency-Key": "amz-1"}
    resp = client.post("/v1/shipments", json=payload, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    shipment = resp.get_json()
    assert shipment["carrier"] == "amazonshipping" and shipment["tracking_number"].startswith("TBA")
    assert_no_pii(resp.get_data(as_text=True), "a shipment")
    assert client.post("/v1/shipments", json=payload, headers=headers).get_json()["id"] == shipment["id"]
    assert sum(fake.purchases_by_key().values()) == 1

    label = client.get(f"/v1/shipments/{shipment['id']}/label", headers=world.auth())
    assert label.status_code == 200 and label.mimetype == "image/png"
    assert Image.open(io.BytesIO(label.data)).format == "PNG"
    void = client.post(f"/v1/shipments/{shipment['id']}/void", headers=world.auth())
    assert void.status_code == 200 and void.get_json()["status"] == "voided"
    with world.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == world.tenant.id)).all()
    shares = [e for e in events if e.purpose == "shipping-label"]
    assert [e.action for e in shares] == ["shipment.purchase", "shipment.label", "shipment.void"]
    assert_no_pii(json.dumps([e.details for e in events]), "the audit chain")


def test_an_amazon_shipping_outage_is_a_clear_503_with_nothing_half_recorded(
    make_app: Any, shared_db: Database, world: World, fake: FakeAmazonShipping
) -> None:
    app = make_app(shared_db.app_url, marketplace_endpoint_overrides=fake.base_url)
    fake.fail(status=503, count=10, operation="getRates")
    payload = {"marketplace": "amazon", "order_id": world.order_ids[1], "parcel": PARCEL}
    resp = app.test_client().post("/v1/shipments", json=payload, headers=world.auth() | {"Idempotency-Key": "o"})
    assert resp.status_code == 503, resp.get_json()
    assert_no_pii(resp.get_data(as_text=True), "a problem")
    with world.session() as s:
        assert s.scalars(select(Shipment).where(Shipment.tenant_id == world.tenant.id)).all() == []
    assert fake.purchases_by_key() == {}
