"""The loop back to the marketplace (connectors/confirmations.py) on both databases, against the fake Shippo and
the fake Shopify: queued in the bought label's commit, confirmed once, retried with backoff after a 5xx or a
timeout, failed visibly on a permanent error, safe with two workers, cancelled by a void; the order ends shipped
with its retention recomputed, and the audit event names no buyer and no tracking number."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import confirmations
from connectors.carriers.shipments import buy_wave, key_hash, void_shipment
from connectors.confirmations import (
    BASE_DELAY,
    MAX_DELAY,
    backoff,
    confirm_due,
    confirmation_of_order,
    needs_confirmation,
    retry_failed,
)
from connectors.ebay.client import RequestRefused
from connectors.ebay.client import RetryPolicy as EbayRetryPolicy
from connectors.ebay.endpoints import usage_plans
from connectors.ebay.fulfillment import carrier_code, tracking_value
from connectors.fake_amazon import FakeClock
from connectors.fake_ebay import FakeEbay
from connectors.fake_shippo import FakeShippo
from connectors.fake_shopify import FakeShopify, legacy_id
from connectors.ratelimit import RateLimiter
from connectors.shopify.client import RetryPolicy
from connectors.shopify.pacing import CostPacer
from tests.support.buyers import sample_label
from tests.support.carriers import connect_fake_shippo, fast_carriers, ship_request
from tests.support.confirmations import buy, confirm_events, confirm_options, quick, row_of, served, synced_orders
from tests.support.ebay import SPEEDUP as EBAY_SPEEDUP
from tests.support.ebay import add_ebay_account, make_ebay_connector
from tests.support.ebay import fake_origins as ebay_origins
from tests.support.servers import Database
from tests.support.shopify import SPEEDUP, add_shopify_account, fake_origins, make_connector
from tests.support.vault import make_account, sample_facts
from tests.support.world import assert_no_pii
from vault.db import make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, ShipmentConfirmation, Tenant, utcnow
from vault.orders import store_order
from vault.retention import retention_deadline
from vault.tenants import create_tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

#: The scopes of an app installed by the install flow (connectors/shopify/accounts.py): it may fulfil.
WRITE_SCOPES = [*FakeShopify.DEFAULT_SCOPES, "write_merchant_managed_fulfillment_orders"]
#: Two quick tries per call: a fault of three answers outlasts them.
QUICK = quick(RetryPolicy)


@pytest.fixture
def shippo() -> Iterator[FakeShippo]:
    yield from served(FakeShippo())


@pytest.fixture
def shopify() -> Iterator[FakeShopify]:
    with FakeShopify(speedup=SPEEDUP, seed=0, clock=FakeClock()) as fake:
        yield fake
        assert fake.validation_errors == [] and fake.server_errors == [] and not fake.unserved_fields


def _shop_orders(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, n: int = 2, *, write: bool = True
) -> tuple[MarketplaceAccount, list[Order]]:
    """``n`` unfulfilled orders of the fake shop, synced into the vault."""
    shopify.generate_orders(n, statuses=["UNFULFILLED"])
    token = shopify.custom_app_token(scopes=WRITE_SCOPES) if write else None
    account = add_shopify_account(session, keys, tenant, shopify, token=token)
    orders = synced_orders(session, keys, account, make_connector(session, keys, account, shopify))
    assert len(orders) == n and all(o.status == "unshipped" for o in orders)
    return account, orders


def _options(shopify: FakeShopify) -> dict[str, Any]:
    return confirm_options(shopify, fake_origins(shopify), pacer=CostPacer(speedup=shopify.speedup), retry=QUICK)


def _gid(order: Order) -> str:
    return f"gid://shopify/Order/{order.external_order_id}"


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempts in range(1, 30):
        delay = backoff(attempts, rng)
        ceiling = min(MAX_DELAY, BASE_DELAY * (1 << min(attempts - 1, 20)))
        assert ceiling / 2 <= delay <= ceiling
    assert len({backoff(3, rng) for _ in range(5)}) > 1  # jittered


def test_only_marketplaces_with_a_confirmation_call_and_carriers_that_dont_are_queued() -> None:
    assert needs_confirmation("shopify", "shippo")
    assert needs_confirmation("amazon", "shippo") and needs_confirmation("walmart", "shippo")
    assert not needs_confirmation("tiktok", "shippo")  # TikTok Shop's documents hold no fulfilment API
    assert not needs_confirmation("nosuchmarket", "shippo")


def test_a_label_for_a_marketplace_without_a_confirmation_call_queues_nothing(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo
) -> None:
    account = make_account(session, tenant)
    account.marketplace = "tiktok"  # TikTok Shop has no confirmation call
    facts = dataclasses.replace(sample_facts(0), marketplace="tiktok", marketplace_id="US")
    order = store_order(session, keys=keys, account=account, facts=facts, label=sample_label(0)).order
    session.commit()
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, order)
    assert shipment.status == "bought"
    assert session.scalar(select(ShipmentConfirmation).where(ShipmentConfirmation.shipment_id == shipment.id)) is None


def test_a_bought_label_is_confirmed_once_and_the_order_ends_shipped_with_its_retention_recomputed(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, shopify: FakeShopify
) -> None:
    _, orders = _shop_orders(session, keys, tenant, shopify)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    # Queued in the label's own commit: the row is there the moment the label is, pending and due.
    row = row_of(session, shipment)
    assert (row.status, row.attempts, row.marketplace, row.order_id) == ("pending", 0, "shopify", orders[0].id)
    view = confirmation_of_order(session, tenant_id=tenant.id, order_id=orders[0].id)
    assert view is not None and view.status == "pending"

    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify))
    assert (summary.confirmed, summary.retried, summary.failed) == (1, 0, 0)
    row = row_of(session, shipment)
    assert row.status == "confirmed" and row.attempts == 1 and row.confirmed_at is not None and row.last_error is None
    (fulfillment,) = shopify.fulfillments(_gid(orders[0]))
    assert fulfillment.tracking_numbers == [shipment.tracking_number]
    assert fulfillment.tracking_company == shipment.provider and fulfillment.notify_customer
    assert shopify.orders()[_gid(orders[0])].display_status == "FULFILLED"
    assert shopify.fulfillments(_gid(orders[1])) == []  # the other order wasn't touched

    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "shipped"
    assert order.retention_until == retention_deadline(session, tenant_id=tenant.id, marketplace="shopify", order=order)
    (event,) = confirm_events(session, tenant.id)
    assert (event.purpose, event.outcome, event.actor) == ("shipping-label", "ok", "system:confirm")
    assert event.details == {
        "shipment_id": shipment.id, "marketplace": "shopify", "carrier": "shippo", "result": "confirmed", "attempts": 1,
    }  # fmt: skip
    assert (shipment.tracking_number or "?") not in json.dumps(event.details)
    assert_no_pii(json.dumps(event.details), "the confirmation's audit event")

    # Nothing is due any more: a second run calls nobody, and a later sync agrees the order shipped.
    calls = shopify.calls["graphql"]
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify)).confirmed == 0
    assert shopify.calls["graphql"] == calls and len(shopify.fulfillments(_gid(orders[0]))) == 1


def test_a_5xx_or_a_timeout_is_retried_later_with_backoff_then_confirmed(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, shopify: FakeShopify
) -> None:
    _, orders = _shop_orders(session, keys, tenant, shopify)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    now = utcnow()
    shopify.inject(status=503, count=QUICK.attempts, operation="graphql")
    summary = confirm_due(session, keys, tenant_id=tenant.id, now=now, **_options(shopify))
    assert (summary.confirmed, summary.retried, summary.errors) == (0, 1, {"unavailable": 1})
    row = row_of(session, shipment)
    assert (row.status, row.attempts, row.last_error, row.lease_until) == ("pending", 1, "unavailable", None)
    assert row.next_attempt_at is not None and now + BASE_DELAY / 2 <= row.next_attempt_at <= now + BASE_DELAY
    view = confirmation_of_order(session, tenant_id=tenant.id, order_id=orders[0].id)
    assert view is not None and (view.status, view.last_error) == ("pending", "unavailable")
    # Not due before its time.
    assert (
        confirm_due(session, keys, tenant_id=tenant.id, now=now + timedelta(seconds=1), **_options(shopify)).retried
        == 0
    )

    # The second attempt times out (the answer comes after the read timeout, twice): later again, doubled.
    shopify.inject_delay(QUICK.read_timeout * 3, count=QUICK.attempts, operation="graphql")
    later = row.next_attempt_at + timedelta(seconds=1)
    assert confirm_due(session, keys, tenant_id=tenant.id, now=later, **_options(shopify)).retried == 1
    row = row_of(session, shipment)
    assert row.attempts == 2 and row.last_error == "unavailable"
    assert row.next_attempt_at is not None and row.next_attempt_at >= later + BASE_DELAY  # 2 min × 0.5..1

    assert confirm_due(session, keys, tenant_id=tenant.id, now=row.next_attempt_at, **_options(shopify)).confirmed == 1
    assert row_of(session, shipment).status == "confirmed"
    assert len(shopify.fulfillments(_gid(orders[0]))) == 1
    (event,) = confirm_events(session, tenant.id)
    assert event.details is not None and event.details["attempts"] == 3


def test_a_confirmation_that_keeps_failing_is_given_up_visibly_after_the_last_attempt(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, shopify: FakeShopify
) -> None:
    _, orders = _shop_orders(session, keys, tenant, shopify, n=1)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    row = row_of(session, shipment)
    row.attempts = confirmations.MAX_ATTEMPTS - 1  # every earlier attempt failed too
    session.commit()
    shopify.inject(status=502, count=QUICK.attempts, operation="graphql")
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify))
    assert (summary.retried, summary.failed) == (0, 1)
    row = row_of(session, shipment)
    assert (row.status, row.last_error, row.attempts) == ("failed", "unavailable", confirmations.MAX_ATTEMPTS)
    (event,) = confirm_events(session, tenant.id)
    assert event.outcome == "failed:unavailable"


def test_a_permanent_refusal_fails_visibly_until_retried(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, shopify: FakeShopify
) -> None:
    # The account's app was installed without the write scope: Shopify denies fulfillmentCreate.
    _, orders = _shop_orders(session, keys, tenant, shopify, write=False)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    summary = confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify))
    assert (summary.confirmed, summary.failed, summary.errors) == (0, 1, {"scope-missing": 1})
    row = row_of(session, shipment)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "scope-missing", None)
    assert shopify.fulfillments(_gid(orders[0])) == []
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "unshipped"
    (event,) = confirm_events(session, tenant.id)
    assert event.outcome == "failed:scope-missing" and event.details is not None
    assert event.details["result"] == "scope-missing"
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify)).failed == 0  # failed stays failed

    # The seller grants the scope (a new token); the operator retries: confirmed.
    account = session.get(MarketplaceAccount, orders[0].account_id)
    assert account is not None
    from vault.marketplace_accounts import seal_credentials

    seal_credentials(
        session, keys=keys, account=account, secrets={"access_token": shopify.custom_app_token(scopes=WRITE_SCOPES)}
    )
    session.commit()
    assert retry_failed(session, tenant_id=tenant.id) == 1
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify)).confirmed == 1
    assert row_of(session, shipment).status == "confirmed"


def test_an_order_already_fulfilled_at_shopify_is_confirmed_without_a_second_fulfillment(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, shopify: FakeShopify
) -> None:
    _, orders = _shop_orders(session, keys, tenant, shopify)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    shopify.update_order(_gid(orders[0]), fulfill=True)  # the seller fulfilled it in Shopify's admin meanwhile
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify)).confirmed == 1
    assert row_of(session, shipment).status == "confirmed" and shopify.fulfillments(_gid(orders[0])) == []


def test_a_void_before_confirmation_cancels_it(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, shopify: FakeShopify
) -> None:
    _, orders = _shop_orders(session, keys, tenant, shopify)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    void_shipment(session, keys=keys, carriers=fast_carriers(), shipment=shipment, actor="client:test")
    assert row_of(session, shipment).status == "cancelled"
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify)).confirmed == 0
    assert shopify.fulfillments(_gid(orders[0])) == [] and confirm_events(session, tenant.id) == []
    # The order bought again: the new label's confirmation goes out.
    again = buy(session, keys, orders[0], key="k2")
    assert confirm_due(session, keys, tenant_id=tenant.id, **_options(shopify)).confirmed == 1
    (fulfillment,) = shopify.fulfillments(_gid(orders[0]))
    assert fulfillment.tracking_numbers == [again.tracking_number]
    view = confirmation_of_order(session, tenant_id=tenant.id, order_id=orders[0].id)
    assert view is not None and view.status == "confirmed"


def test_two_workers_at_once_confirm_each_order_once(fresh_db: Database, tmp_path: Any, shopify: FakeShopify) -> None:
    keys = KeyManager(LocalKeyProvider(tmp_path / "keyring.json"))
    sessions = make_session_factory(fresh_db.engine)
    with FakeShippo() as shippo, sessions() as s:
        tenant = create_tenant(s, keys=keys, slug="two", name="Two", actor="test")
        s.commit()
        _, orders = _shop_orders(s, keys, tenant, shopify, n=6)
        connect_fake_shippo(s, keys, tenant.id, shippo)
        for order in orders:
            buy(s, keys, order)
        tenant_id = tenant.id
    barrier = threading.Barrier(2)
    results: list[confirmations.ConfirmSummary] = []

    def worker() -> None:
        with sessions() as s:
            barrier.wait()
            results.append(confirm_due(s, keys, **_options(shopify)))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.confirmed for r in results) == 6 and sum(r.failed + r.retried for r in results) == 0
    for order in orders:
        assert len(shopify.fulfillments(f"gid://shopify/Order/{legacy_id(_gid(order))}")) == 1
    with sessions() as s:
        assert len(confirm_events(s, tenant_id)) == 6
        statuses = s.scalars(select(ShipmentConfirmation.status)).all()
        assert sorted(statuses) == ["confirmed"] * 6
        assert set(s.scalars(select(Order.status).where(Order.tenant_id == tenant_id))) == {"shipped"}


def test_a_wave_queues_each_bought_label_in_its_chunk_s_commit(
    fresh_db: Database, tmp_path: Any, shopify: FakeShopify
) -> None:
    keys = KeyManager(LocalKeyProvider(tmp_path / "keyring.json"))
    sessions = make_session_factory(fresh_db.engine)
    with FakeShippo() as shippo:
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="wave", name="Wave", actor="test")
            s.commit()
            _, orders = _shop_orders(s, keys, tenant, shopify, n=3)
            connect_fake_shippo(s, keys, tenant.id, shippo)
            tenant_id = tenant.id
        results = buy_wave(
            sessions, keys=keys, carriers=fast_carriers(), tenant_id=tenant_id, client_id=None, actor="client:test",
            idempotency_key_hash=key_hash("wave-1"), requests=[ship_request(o) for o in orders],
        )  # fmt: skip
    assert all(r.shipment_id is not None for r in results), results
    with sessions() as s:
        rows = s.scalars(select(ShipmentConfirmation).where(ShipmentConfirmation.tenant_id == tenant_id)).all()
        assert sorted(r.shipment_id for r in rows) == sorted(r.shipment_id for r in results if r.shipment_id)
        assert {(r.status, r.marketplace) for r in rows} == {("pending", "shopify")}
        assert confirm_due(s, keys, **_options(shopify)).confirmed == 3
    for order in orders:
        assert len(shopify.fulfillments(_gid(order))) == 1


# -- eBay ---------------------------------------------------------------------------------------------------


@pytest.fixture
def ebay() -> Iterator[FakeEbay]:
    yield from served(FakeEbay(speedup=EBAY_SPEEDUP, seed=0, clock=FakeClock()))


def _ebay_orders(
    session: Session, keys: KeyManager, tenant: Tenant, ebay: FakeEbay, n: int = 2
) -> tuple[MarketplaceAccount, list[Order]]:
    ebay.generate_orders(n, statuses=["NOT_STARTED"])
    account = add_ebay_account(session, keys, tenant, ebay)
    orders = synced_orders(session, keys, account, make_ebay_connector(session, keys, account, ebay))
    assert len(orders) == n and all(o.status == "unshipped" for o in orders)
    return account, orders


EBAY_QUICK = quick(EbayRetryPolicy)


def _ebay_options(ebay: FakeEbay) -> dict[str, Any]:
    limiter = RateLimiter(usage_plans(ebay.daily_calls), speedup=ebay.speedup)
    return confirm_options(ebay, ebay_origins(ebay), limiter=limiter, retry=EBAY_QUICK)


def test_an_ebay_order_gets_one_shipping_fulfillment_with_the_tracking(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, ebay: FakeEbay
) -> None:
    _, orders = _ebay_orders(session, keys, tenant, ebay)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    assert row_of(session, shipment).marketplace == "ebay"
    assert confirm_due(session, keys, tenant_id=tenant.id, **_ebay_options(ebay)).confirmed == 1
    (fulfillment,) = ebay.fulfillments(orders[0].external_order_id)
    assert fulfillment["shipmentTrackingNumber"] == tracking_value(shipment.tracking_number or "")
    assert fulfillment["shippingCarrierCode"] == carrier_code(shipment.provider or "")
    items = ebay.orders()[orders[0].external_order_id].items
    assert {line["lineItemId"] for line in fulfillment["lineItems"]} == {i.line_item_id for i in items}
    assert ebay.orders()[orders[0].external_order_id].fulfillment_status == "FULFILLED"
    order = session.get(Order, orders[0].id)
    assert order is not None and order.status == "shipped"
    (event,) = confirm_events(session, tenant.id)
    assert event.details is not None and event.details["marketplace"] == "ebay"
    assert_no_pii(json.dumps(event.details), "the confirmation's audit event")


def test_an_ebay_answer_lost_after_the_fulfillment_was_made_is_not_made_twice(
    session: Session, keys: KeyManager, tenant: Tenant, shippo: FakeShippo, ebay: FakeEbay
) -> None:
    _, orders = _ebay_orders(session, keys, tenant, ebay)
    connect_fake_shippo(session, keys, tenant.id, shippo)
    shipment = buy(session, keys, orders[0])
    now = utcnow()
    # eBay takes the fulfillment but answers after the client gave up: not retried blindly.
    ebay.inject_delay(EBAY_QUICK.read_timeout * 3, operation="createShippingFulfillment")
    summary = confirm_due(session, keys, tenant_id=tenant.id, now=now, **_ebay_options(ebay))
    assert (summary.retried, summary.errors) == (1, {"unavailable": 1})
    ebay_order = orders[0].external_order_id
    deadline = utcnow() + timedelta(seconds=5)
    while not ebay.fulfillments(ebay_order) and utcnow() < deadline:  # the slow answer lands meanwhile
        threading.Event().wait(0.05)
    assert len(ebay.fulfillments(ebay_order)) == 1
    # A 5xx on the next look is retried too; the one after finds the fulfillment and makes none.
    ebay.inject(status=503, count=EBAY_QUICK.attempts, operation="getShippingFulfillments")
    row = row_of(session, shipment)
    assert row.next_attempt_at is not None
    assert confirm_due(session, keys, tenant_id=tenant.id, now=row.next_attempt_at, **_ebay_options(ebay)).retried == 1
    row = row_of(session, shipment)
    assert row.next_attempt_at is not None
    assert (
        confirm_due(session, keys, tenant_id=tenant.id, now=row.next_attempt_at, **_ebay_options(ebay)).confirmed == 1
    )
    assert len(ebay.fulfillments(ebay_order)) == 1 and ebay.calls["createShippingFulfillment"] == 1


def test_the_fake_ebay_refuses_a_fulfillment_its_document_does_not_allow(
    session: Session, keys: KeyManager, tenant: Tenant, ebay: FakeEbay
) -> None:
    account, orders = _ebay_orders(session, keys, tenant, ebay, n=1)
    connector = make_ebay_connector(session, keys, account, ebay)
    client = connector.client
    path = f"/sell/fulfillment/v1/order/{orders[0].external_order_id}/shipping_fulfillment"
    item = ebay.orders()[orders[0].external_order_id].items[0].line_item_id
    try:
        for bad in (
            {"lineItems": [{"lineItemId": item}], "trackingNumber": "1Z999"},  # no carrier with the tracking
            {"lineItems": [{"lineItemId": item}], "shippingCarrierCode": "UPS", "trackingNumber": "1Z 999"},
            {"lineItems": [{"lineItemId": "nope"}], "shippingCarrierCode": "UPS", "trackingNumber": "1Z999"},
            {"lineItems": [{"lineItemId": item}], "carrier": "UPS"},  # a field eBay doesn't define
        ):
            with pytest.raises(RequestRefused) as refused:
                client.post("createShippingFulfillment", path, bad)
            assert refused.value.status == 400
        assert ebay.fulfillments(orders[0].external_order_id) == []
    finally:
        connector.close()
