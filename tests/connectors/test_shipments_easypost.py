"""Buying a carrier label through EasyPost (connectors/carriers/shipments.py) on both databases against the
fake EasyPost: the purchase is a share audited once, a lost answer is settled from EasyPost's shipment (never
bought twice), a changed rate is quoted again, a refused address buys nothing. Shippo's are in
``test_shipments.py``; the carrier contract itself in ``test_carriers.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.carriers.interfaces import AddressRejected, LabelFormat
from connectors.carriers.shipments import print_shipment_label, void_shipment
from connectors.fake_easypost import FakeEasyPost
from tests.support.carriers import FAST, connect_fake_easypost, fast_carriers
from tests.support.shipments import audit_events, buy
from tests.support.vault import make_account, make_orders
from tests.support.world import assert_no_pii
from vault.errors import PurchaseUnsettled
from vault.keys import KeyManager
from vault.models import CarrierAccount, Order, Shipment, Tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


@pytest.fixture
def fake() -> Iterator[FakeEasyPost]:
    with FakeEasyPost() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def orders(session: Session, keys: KeyManager, tenant: Tenant) -> list[Order]:
    made = make_orders(session, keys, make_account(session, tenant), 2)
    session.commit()
    return made


@pytest.fixture
def carrier_account(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEasyPost) -> CarrierAccount:
    return connect_fake_easypost(session, keys, tenant.id, fake)


@pytest.mark.usefixtures("carrier_account")
def test_an_easypost_label_is_bought_once_printed_voided_and_audited_as_a_share(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeEasyPost
) -> None:
    shipment = buy(session, keys, orders[0], label_format=LabelFormat.ZPL)
    assert shipment.status == "bought" and shipment.tracking_number and shipment.service == "GroundAdvantage"
    assert fake.bought() == {shipment.reference: 1}  # the vault's reference is on EasyPost's shipment
    assert buy(session, keys, orders[0], label_format=LabelFormat.ZPL).id == shipment.id
    assert fake.calls["BuyShipment"] == 1
    doc = print_shipment_label(
        session, keys=keys, carriers=fast_carriers(), shipment=shipment, reprint_cap=3, actor="client:test"
    )
    assert doc.content.startswith(b"^XA") and (shipment.tracking_number or "").encode() in doc.content
    status = void_shipment(session, keys=keys, carriers=fast_carriers(), shipment=shipment, actor="client:test")
    assert status.value == "pending" and shipment.status == "voided"  # EasyPost's USPS refunds are submitted
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.purpose == "shipping-label" and event.details is not None
    assert event.details["carrier"] == "easypost" and event.details["result"] == "bought"
    assert {"name", "address_line1", "city", "postal_code", "country_code"} <= set(event.details["fields_sent"])
    assert_no_pii(json.dumps([e.details for e in audit_events(session, tenant, "shipment.void")]), "the audit chain")
    assert_no_pii(json.dumps(event.details), "the audit event")


@pytest.mark.usefixtures("carrier_account")
def test_a_lost_answer_is_settled_from_easyposts_shipment_never_bought_twice(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeEasyPost
) -> None:
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    shipment = buy(session, keys, orders[0])
    assert shipment.status == "bought" and fake.bought() == {shipment.reference: 1}
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["reconciled"] is True


@pytest.mark.usefixtures("carrier_account")
def test_a_lost_answer_with_easypost_unreachable_stays_pending_and_a_retry_settles_it(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeEasyPost
) -> None:
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    fake.fail(status=503, count=FAST.attempts, operation="GetShipment")
    with pytest.raises(PurchaseUnsettled):
        buy(session, keys, orders[0])
    pending = session.scalars(select(Shipment).where(Shipment.order_id == orders[0].id)).one()
    assert pending.status == "pending" and audit_events(session, tenant, "shipment.purchase") == []
    shipment = buy(session, keys, orders[0])  # the same key: a fresh client looks the rate's shipment up
    assert shipment.id == pending.id and shipment.status == "bought"
    assert fake.bought() == {shipment.reference: 1} and fake.calls["BuyShipment"] == 1


@pytest.mark.usefixtures("carrier_account")
def test_a_changed_rate_is_quoted_again_and_a_refused_address_buys_nothing(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeEasyPost
) -> None:
    fake.reprice()
    shipment = buy(session, keys, orders[0])
    assert shipment.status == "bought" and fake.calls["CreateShipment"] == 2
    assert fake.bought() == {shipment.reference: 1}
    fake.reject_address()
    with pytest.raises(AddressRejected) as refused:
        buy(session, keys, orders[1], key="k2")
    assert refused.value.reasons == ("E.ADDRESS.NOT_FOUND",)
    assert session.scalars(select(Shipment).where(Shipment.order_id == orders[1].id)).all() == []
    assert len(fake.bought()) == 1
