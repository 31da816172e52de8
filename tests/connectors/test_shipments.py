"""Buying a carrier label for an order (connectors/carriers/shipments.py) on both databases against the fake
Shippo: bought once whatever fails or is retried, audited as a share exactly when the label exists, nothing
half-recorded when nothing was bought, no PII in the audit chain."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.carriers.interfaces import AddressRejected, CarrierUnavailable, LabelFormat, NoMatchingRate
from connectors.carriers.shipments import (
    LEASE,
    buy_shipment,
    key_hash,
    print_shipment_label,
    reconcile_pending,
    shipment_view,
    void_shipment,
)
from connectors.fake_shippo import FakeShippo
from tests.support.carriers import FAST, connect_fake_shippo, fast_carriers, ship_request
from tests.support.servers import Database
from tests.support.shipments import audit_events, buy
from tests.support.vault import make_account, make_orders
from tests.support.world import assert_no_pii
from vault.errors import (
    DecryptionError,
    IdempotencyKeyReused,
    NotEligible,
    PurchaseInProgress,
    PurchaseUnsettled,
    ReissueCapReached,
    ShipmentExists,
    ShipmentNotActive,
)
from vault.keys import KeyManager
from vault.models import AuditEvent, CarrierAccount, Order, Shipment, Tenant, utcnow
from vault.records import OrderStatus

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


@pytest.fixture
def fake() -> Iterator[FakeShippo]:
    with FakeShippo() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def orders(session: Session, keys: KeyManager, tenant: Tenant) -> list[Order]:
    account = make_account(session, tenant)
    made = make_orders(session, keys, account, 3)
    session.commit()
    return made


@pytest.fixture
def carrier_account(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeShippo) -> CarrierAccount:
    return connect_fake_shippo(session, keys, tenant.id, fake)


@pytest.mark.usefixtures("carrier_account")
def test_a_purchase_is_bought_once_recorded_and_audited_as_a_share(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    shipment = buy(session, keys, orders[0])
    assert shipment.status == "bought" and shipment.tracking_number and shipment.live_order_id == orders[0].id
    view = shipment_view(session, shipment)
    assert view["carrier"] == "shippo" and view["service"] == "usps_ground_advantage"
    assert Decimal(view["cost"]["amount"]) > 0 and view["cost"]["currency"] == "USD"
    assert_no_pii(json.dumps(view), "the shipment view")
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert (event.purpose, event.outcome, event.order_ref) == (
        "shipping-label",
        "ok",
        f"amazon:{orders[0].external_order_id}",
    )
    assert event.details is not None and event.details["carrier"] == "shippo" and event.details["result"] == "bought"
    assert {"name", "address_line1", "city", "postal_code", "country_code", "phone"} <= set(
        event.details["fields_sent"]
    )
    assert_no_pii(json.dumps(event.details), "the audit event")
    assert fake.purchases_by_metadata() == {shipment.reference: 1}
    # The same key again: the same shipment, nothing bought.
    assert buy(session, keys, orders[0]).id == shipment.id and fake.calls["CreateTransaction"] == 1


@pytest.mark.usefixtures("carrier_account")
def test_a_key_reused_for_another_request_and_a_second_label_for_an_order_are_refused(
    session: Session, keys: KeyManager, orders: list[Order], fake: FakeShippo
) -> None:
    first = buy(session, keys, orders[0])
    with pytest.raises(IdempotencyKeyReused):
        buy(session, keys, orders[0], service="fastest")
    with pytest.raises(ShipmentExists) as exists:
        buy(session, keys, orders[0], key="k2")
    assert exists.value.shipment_id == first.id
    assert len(fake.purchases_by_metadata()) == 1
    # Voided, the order may be shipped again.
    void_shipment(session, keys=keys, carriers=fast_carriers(), shipment=first, actor="client:test")
    assert first.status == "voided" and first.live_order_id is None
    assert buy(session, keys, orders[0], key="k2").status == "bought"
    with pytest.raises(ShipmentNotActive):
        print_shipment_label(
            session, keys=keys, carriers=fast_carriers(), shipment=first, reprint_cap=3, actor="client:test"
        )


@pytest.mark.usefixtures("carrier_account")
def test_the_label_is_printed_again_up_to_the_cap_and_each_print_audited(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order]
) -> None:
    shipment = buy(session, keys, orders[1], label_format=LabelFormat.ZPL)
    for _ in range(2):
        doc = print_shipment_label(
            session, keys=keys, carriers=fast_carriers(), shipment=shipment, reprint_cap=2, actor="client:test"
        )
        assert doc.content.startswith(b"^XA") and (shipment.tracking_number or "").encode() in doc.content
    with pytest.raises(ReissueCapReached):
        print_shipment_label(
            session, keys=keys, carriers=fast_carriers(), shipment=shipment, reprint_cap=2, actor="client:test"
        )
    assert [e.details["issue"] for e in audit_events(session, tenant, "shipment.label") if e.details] == [1, 2]


@pytest.mark.usefixtures("carrier_account")
def test_a_lost_answer_is_settled_from_the_carriers_records_never_bought_twice(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    shipment = buy(session, keys, orders[0])
    assert shipment.status == "bought"
    assert fake.purchases_by_metadata() == {shipment.reference: 1}
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["reconciled"] is True


@pytest.mark.usefixtures("carrier_account")
def test_an_answer_lost_with_the_carriers_records_unreachable_stays_pending_and_a_retry_settles_it(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    fake.fail(status=503, count=FAST.attempts, operation="ListTransactions")
    with pytest.raises(PurchaseUnsettled):
        buy(session, keys, orders[0])
    pending = session.scalars(select(Shipment).where(Shipment.order_id == orders[0].id)).one()
    assert pending.status == "pending" and audit_events(session, tenant, "shipment.purchase") == []
    shipment = buy(session, keys, orders[0])  # the same key: looked up, found, recorded
    assert shipment.id == pending.id and shipment.status == "bought"
    assert fake.purchases_by_metadata() == {shipment.reference: 1}
    assert len(audit_events(session, tenant, "shipment.purchase")) == 1


@pytest.mark.usefixtures("carrier_account")
def test_a_pending_purchase_held_by_a_live_buyer_is_not_taken_over(
    session: Session, keys: KeyManager, orders: list[Order], fake: FakeShippo
) -> None:
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    fake.fail(status=503, count=FAST.attempts, operation="ListTransactions")
    with pytest.raises(PurchaseUnsettled):
        buy(session, keys, orders[0])
    pending = session.scalars(select(Shipment).where(Shipment.order_id == orders[0].id)).one()
    pending.lease_until = utcnow() + LEASE  # as if another process held it now
    session.commit()
    with pytest.raises(PurchaseInProgress):
        buy(session, keys, orders[0])


@pytest.mark.usefixtures("carrier_account")
def test_a_rate_changed_between_quote_and_purchase_is_quoted_again_and_bought_at_the_new_price(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    fake.reprice()
    shipment = buy(session, keys, orders[0])
    assert shipment.status == "bought" and fake.calls["CreateShipment"] == 2
    assert fake.purchases_by_metadata() == {shipment.reference: 1}
    (event,) = audit_events(session, tenant, "shipment.purchase")
    assert event.details is not None and event.details["requoted"] is True


@pytest.mark.usefixtures("carrier_account")
def test_failures_before_anything_is_bought_leave_no_shipment_and_audit_the_address_share(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    fake.reject_address()
    with pytest.raises(AddressRejected):
        buy(session, keys, orders[0])
    fake.fail(status=503, count=FAST.attempts, operation="CreateShipment")
    with pytest.raises(CarrierUnavailable):
        buy(session, keys, orders[0], key="k2")
    with pytest.raises(NoMatchingRate):
        buy(session, keys, orders[0], key="k3", service="fedex_overnight")
    assert session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all() == []
    outcomes = [e.outcome for e in audit_events(session, tenant, "shipment.purchase")]
    # Each time the ship-to was handed to the carrier: an outage's request may have reached it too.
    assert outcomes == ["failed:address-rejected", "failed:carrier-unavailable", "failed:no-matching-rate"]
    assert fake.purchases_by_metadata() == {}
    assert buy(session, keys, orders[0], key="k1").status == "bought"  # and the key can be used again


@pytest.mark.usefixtures("carrier_account")
def test_an_order_that_may_not_ship_is_refused_before_the_carrier_hears_of_it(
    session: Session, keys: KeyManager, orders: list[Order], fake: FakeShippo
) -> None:
    orders[2].status = OrderStatus.CANCELLED
    session.commit()
    with pytest.raises(NotEligible):
        buy(session, keys, orders[2])
    assert sum(fake.calls.values()) == 0


@pytest.mark.usefixtures("carrier_account")
def test_reconciling_after_a_crash_records_what_was_bought_and_drops_what_was_not(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    # Two purchases "killed": one after the carrier bought the label, one before the purchase went out.
    for order, key, bought in ((orders[0], "a", True), (orders[1], "b", False)):
        fake.lose_purchase(seconds=FAST.read_timeout + 1) if bought else fake.fail(
            status=503, operation="CreateTransaction"
        )
        fake.fail(status=503, count=FAST.attempts, operation="ListTransactions")
        with pytest.raises(PurchaseUnsettled):
            buy(session, keys, order, key=key)
    recorded, removed = reconcile_pending(session, keys=keys, carriers=fast_carriers())
    assert (recorded, removed) == (1, 1)
    shipments = session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all()
    assert [(s.order_id, s.status) for s in shipments] == [(orders[0].id, "bought")]
    assert len(audit_events(session, tenant, "shipment.purchase")) == 1
    assert sum(fake.purchases_by_metadata().values()) == 1


@pytest.mark.usefixtures("carrier_account")
def test_a_carrier_account_that_cannot_be_opened_holds_up_no_other_shipment(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeShippo
) -> None:
    for order, key in ((orders[0], "a"), (orders[1], "b")):  # two purchases whose answers were lost
        fake.lose_purchase(seconds=FAST.read_timeout + 1)
        fake.fail(status=503, count=FAST.attempts, operation="ListTransactions")
        with pytest.raises(PurchaseUnsettled):
            buy(session, keys, order, key=key)
    working = fast_carriers()
    opened: list[int] = []

    def flaky(account: Any, secrets: dict[str, str]) -> Any:
        opened.append(account.id)
        if len(opened) == 1:  # the first shipment's account can't be opened (a KMS blip, a bad set-up)
            raise DecryptionError()
        return working(account, secrets)

    assert reconcile_pending(session, keys=keys, carriers=flaky) == (1, 0)  # the other one is settled
    pending = session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id, Shipment.status == "pending"))
    (left,) = pending.all()
    assert left.lease_until is None or left.lease_until <= utcnow()  # free for the next run at once
    assert reconcile_pending(session, keys=keys, carriers=working) == (1, 0)
    bought = session.scalars(select(Shipment).where(Shipment.tenant_id == tenant.id)).all()
    assert sorted(s.status for s in bought) == ["bought", "bought"]
    assert sum(fake.purchases_by_metadata().values()) == 2


def test_a_wave_buys_each_order_once_and_a_retried_wave_buys_nothing_more(
    shared_db: Database, keys: KeyManager, fake: FakeShippo
) -> None:
    from connectors.carriers.shipments import buy_wave
    from vault.db import make_session_factory
    from vault.tenants import create_tenant

    sessions = make_session_factory(shared_db.engine)
    with sessions() as s:
        tenant = create_tenant(s, keys=keys, slug=f"wave-{uuid.uuid4().hex[:6]}", name="Wave", actor="test")
        made = make_orders(s, keys, make_account(s, tenant), 12, start=100)
        s.commit()
        connect_fake_shippo(s, keys, tenant.id, fake)
        tenant_id = tenant.id
    requests = [ship_request(o) for o in made]
    requests.append(ship_request(made[0], order_id="503-0000000-missing"))

    def run() -> list[Any]:
        return buy_wave(
            sessions, keys=keys, carriers=fast_carriers(), tenant_id=tenant_id, client_id=None, actor="client:test",
            idempotency_key_hash=key_hash("wave"), requests=requests, concurrency=4,
        )  # fmt: skip

    first = run()
    assert [r.error for r in first] == [None] * 12 + ["not-found"]
    assert run() == first  # the same shipments again, nothing bought
    assert len(fake.purchases_by_metadata()) == 12 and set(fake.purchases_by_metadata().values()) == {1}
    with pytest.raises(ValueError, match="1 to 500"):
        buy_wave(sessions, keys=keys, carriers=fast_carriers(), tenant_id=tenant_id, client_id=None, actor="t",
                 idempotency_key_hash="x", requests=[])  # fmt: skip


def test_a_wave_order_taken_by_another_buyer_meanwhile_is_refused_and_the_rest_of_its_chunk_bought(
    shared_db: Database, keys: KeyManager, fake: FakeShippo
) -> None:
    import threading

    from connectors.carriers.shipments import buy_wave
    from vault.db import make_session_factory
    from vault.tenants import create_tenant

    sessions = make_session_factory(shared_db.engine)
    with sessions() as s:
        tenant = create_tenant(s, keys=keys, slug=f"race-{uuid.uuid4().hex[:6]}", name="Race", actor="test")
        made = make_orders(s, keys, make_account(s, tenant), 2, start=300)
        s.commit()
        connect_fake_shippo(s, keys, tenant.id, fake)
        tenant_id = tenant.id
    fake.latency = 0.4  # the wave quotes both orders (0.8 s) while the single buyer commits its intent at 0.4 s

    def single() -> None:
        with sessions() as s:
            buy_shipment(
                s, keys=keys, carriers=fast_carriers(), tenant_id=tenant_id, client_id=None, actor="client:other",
                idempotency_key_hash=key_hash("other"), request=ship_request(made[1]),
            )  # fmt: skip

    other = threading.Thread(target=single)
    other.start()
    results = buy_wave(
        sessions, keys=keys, carriers=fast_carriers(), tenant_id=tenant_id, client_id=None, actor="client:test",
        idempotency_key_hash=key_hash("wave"), requests=[ship_request(o) for o in made], concurrency=1,
    )  # fmt: skip
    other.join()
    assert results[0].shipment_id is not None and results[1].error == "shipment-exists"
    assert sorted(fake.purchases_by_metadata().values()) == [1, 1]  # each order bought once, by one buyer
    with sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant_id,
                                                    AuditEvent.action == "shipment.purchase")).all()  # fmt: skip
        live = s.scalars(select(Shipment).where(Shipment.tenant_id == tenant_id)).all()
    assert sorted(e.outcome for e in events) == ["failed:shipment-exists", "ok", "ok"]  # the quote was a share
    assert sorted((sh.order_id, sh.status) for sh in live) == sorted((o.id, "bought") for o in made)
