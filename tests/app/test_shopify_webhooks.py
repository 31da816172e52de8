"""Shopify's privacy webhooks through the real app over HTTP, delivered and signed by the fake Shopify:
verified, idempotent, and each a rights request (vault/rights_requests.py) opened with the orders Shopify
names, carried out with its audit events (a data request's export sealed for the owner, or left open when
the customer's phone finds orders Shopify didn't name)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.services import services
from connectors.fake_shopify import FakeClock, FakeShopify, legacy_id, webhook_hmac
from connectors.sync import sync_account
from tests.support.buyers import SHANGHAI
from tests.support.people import add_account, add_order
from tests.support.servers import Database
from tests.support.shopify import add_shopify_account, installed_token, make_connector
from vault import rights_requests as rr
from vault.models import (
    AuditEvent,
    LabelRecordRow,
    MarketplaceAccount,
    Order,
    PrivacyExport,
    RightsRequestOrder,
    RightsRequestRow,
    ShopifyWebhook,
    Tenant,
)
from vault.privacy_exports import fetch_export
from vault.records import OrderStatus
from vault.retention import place_hold
from vault.tenants import create_tenant


@dataclass
class World:
    fake: FakeShopify
    app: Any
    url: str
    account_id: int
    tenant_id: int
    gids: list[str]


@pytest.fixture
def world(make_app: Any, fresh_db: Database) -> Iterator[World]:
    """A tenant whose Shopify shop is synced, and the app serving /webhooks/shopify on loopback."""
    clock = FakeClock()
    with FakeShopify(speedup=500, seed=1, clock=clock) as fake:
        gids = fake.generate_orders(12, statuses=["UNFULFILLED"])
        clock.advance(minutes=1)
        app = make_app(
            fresh_db.app_url,
            shopify_client_id=fake.DEFAULT_APP.client_id,
            shopify_client_secret=fake.DEFAULT_APP.client_secret,
            marketplace_endpoint_overrides=fake.base_url,
        )
        svc = services(app)
        with svc.sessions() as s:
            tenant = create_tenant(s, keys=svc.keys, slug="hooks", name="Hooks", actor="test")
            s.commit()
            account = add_shopify_account(s, svc.keys, tenant, fake, token=installed_token(fake))
            connector = make_connector(s, svc.keys, account, fake)
            sync_account(s, keys=svc.keys, account=account, connector=connector)
            connector.close()
            ids = (account.id, tenant.id)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield World(fake, app, f"http://127.0.0.1:{server.server_port}/webhooks/shopify", *ids, gids)
        finally:
            server.shutdown()
            thread.join(timeout=5)
        assert fake.validation_errors == []


def _count(w: World, model: Any, *where: Any) -> int:
    with services(w.app).sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _labels_of(w: World, gid: str) -> int:
    oid = str(legacy_id(gid))
    with services(w.app).sessions() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == oid)).one()
        return int(s.scalar(select(func.count()).where(LabelRecordRow.order_id == order.id)) or 0)


def _customers_orders(w: World, gid: str) -> set[str]:
    return {str(i) for i in w.fake.webhook_body("customers/redact", customer_of=gid)["orders_to_redact"]}


def test_customers_redact_erases_that_customers_label_data_once(world: World) -> None:
    gid = world.gids[0]
    theirs = _customers_orders(world, gid)
    assert _labels_of(world, gid) == 1
    first, again = world.fake.deliver_webhook(world.url, "customers/redact", customer_of=gid, duplicate=True)
    assert (first.status, again.status) == (200, 200)
    assert _labels_of(world, gid) == 0
    for other in world.gids[1:]:
        if str(legacy_id(other)) not in theirs:
            assert _labels_of(world, other) == 1  # nobody else's data is touched
    erased = _count(world, AuditEvent, AuditEvent.action == "rights.erasure", AuditEvent.outcome == "erased")
    assert erased == len(theirs)  # once per order, the repeat did nothing
    assert _count(world, AuditEvent, AuditEvent.action == "shopify.webhook") == 1
    assert _count(world, ShopifyWebhook) == 1


def test_a_legal_hold_wins_over_customers_redact(world: World) -> None:
    gid = world.gids[1]
    svc = services(world.app)
    with svc.sessions() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == str(legacy_id(gid)))).one()
        place_hold(
            s,
            tenant_id=world.tenant_id,
            reason="chargeback dispute",
            owner="legal",
            ends_at=order.created_at + timedelta(days=400),
            actor="test",
            order=order,
        )
        s.commit()
    (delivery,) = world.fake.deliver_webhook(world.url, "customers/redact", customer_of=gid)
    assert delivery.status == 200
    assert _labels_of(world, gid) == 1
    refused = _count(
        world, AuditEvent, AuditEvent.action == "rights.erasure", AuditEvent.outcome == "refused:legal-hold"
    )
    assert refused == 1


def test_customers_data_request_stores_a_sealed_export_for_the_seller(world: World) -> None:
    gid = world.gids[2]
    theirs = _customers_orders(world, gid)
    (delivery,) = world.fake.deliver_webhook(world.url, "customers/data_request", customer_of=gid)
    assert delivery.status == 200
    assert _count(world, PrivacyExport) == 1
    svc = services(world.app)
    with svc.sessions() as s:
        export = s.scalars(select(PrivacyExport)).one()
        assert export.envelope is not None and set(export.orders) == theirs
        content = fetch_export(s, keys=svc.keys, tenant_id=world.tenant_id, export_id=export.id, actor="test")
        s.commit()
    assert {o["order"]["order_id"] for o in content["orders"]} == theirs
    assert all(o["shipping_label_data"]["name"] for o in content["orders"])
    assert _count(world, AuditEvent, AuditEvent.action == "rights.access") == len(theirs)
    assert _count(world, AuditEvent, AuditEvent.action == "rights.export-fetched") == 1


def test_the_webhook_answer_and_logs_carry_no_buyer_data(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    gid = world.gids[3]
    body = json.dumps(world.fake.webhook_body("customers/data_request", customer_of=gid)).encode()
    headers = {
        "X-Shopify-Topic": "customers/data_request",
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, world.fake.DEFAULT_APP.client_secret),
        "X-Shopify-Shop-Domain": world.fake.DEFAULT_SHOP.domain,
        "X-Shopify-Webhook-Id": "b2c0c7f2-0000-4000-8000-000000000001",
        "Content-Type": "application/json",
    }
    answer = httpx.post(world.url, content=body, headers=headers, timeout=10)
    assert answer.status_code == 200
    assert "shopify webhook customers/data_request handled: 1 tenants, 1 requests" in caplog.text
    for pii in world.fake.buyer_pii_strings():
        if len(pii) >= 4:
            assert pii not in answer.text and pii not in caplog.text


def test_shop_redact_erases_the_whole_shop_and_removes_its_account(world: World) -> None:
    (delivery,) = world.fake.deliver_webhook(world.url, "shop/redact")
    assert delivery.status == 200
    assert _count(world, LabelRecordRow) == 0
    with services(world.app).sessions() as s:
        account = s.get(MarketplaceAccount, world.account_id)
        assert account is not None and account.removed_at is not None and account.credentials_envelope is None
        statuses = set(s.scalars(select(Order.status)))
    assert statuses <= {str(OrderStatus.UNSHIPPED)}
    assert _count(world, AuditEvent, AuditEvent.action == "rights.erasure") == len(world.gids)
    assert _count(world, AuditEvent, AuditEvent.action == "account.remove") == 1


def test_a_bad_signature_is_401_and_changes_nothing(world: World) -> None:
    gid = world.gids[4]
    (delivery,) = world.fake.deliver_webhook(world.url, "customers/redact", customer_of=gid, bad_signature=True)
    assert delivery.status == 401
    assert _labels_of(world, gid) == 1
    assert _count(world, ShopifyWebhook) == 0


def test_webhooks_are_refused_when_the_app_is_not_configured(make_app: Any, fresh_db: Database) -> None:
    app = make_app(fresh_db.app_url)
    answer = app.test_client().post("/webhooks/shopify", data=b"{}", headers={"X-Shopify-Hmac-Sha256": "x"})
    assert answer.status_code == 503


def _requests(w: World) -> list[RightsRequestRow]:
    with services(w.app).sessions() as s:
        return list(s.scalars(select(RightsRequestRow).order_by(RightsRequestRow.id)))


def _assert_no_pii_in_audit(w: World) -> None:
    with services(w.app).sessions() as s:
        blob = json.dumps(
            [[e.actor, e.outcome, e.order_ref, e.details] for e in s.scalars(select(AuditEvent))], ensure_ascii=False
        )
    for pii in w.fake.buyer_pii_strings():
        if len(pii) >= 4:
            assert pii not in blob


def test_a_data_request_is_a_rights_request_carried_out_to_a_sealed_export(world: World) -> None:
    gid = world.gids[2]
    body = world.fake.webhook_body("customers/data_request", customer_of=gid)
    world.fake.deliver_webhook(world.url, "customers/data_request", customer_of=gid, duplicate=True)
    (row,) = _requests(world)  # the repeat opened nothing
    assert row.kind == rr.ACCESS and row.state == rr.COMPLETED and row.source == "marketplace:shopify"
    assert row.reference.startswith("shopify:data_request:") and row.verified_by == "marketplace:shopify"
    assert row.due_at == row.received_at + timedelta(days=30)  # Shopify's 30 days
    assert row.values_envelope is None  # the phone it gave is shredded with the completion
    with services(world.app).sessions() as s:
        export = s.scalars(select(PrivacyExport)).one()
        named = s.scalars(select(RightsRequestOrder).where(RightsRequestOrder.request_id == row.id)).all()
    assert rr.export_id_of(row) == export.id and export.reference == row.reference
    assert len(named) == len(body["orders_requested"]) and all(r.named and r.outcome == "exported" for r in named)
    with services(world.app).sessions() as s:
        steps = list(
            s.scalars(
                select(AuditEvent.action).where(AuditEvent.action.like("rights.request.%")).order_by(AuditEvent.seq)
            )
        )
        purposes = set(s.scalars(select(AuditEvent.purpose).where(AuditEvent.action.like("rights.%"))))
    assert steps[:2] == ["rights.request.open", "rights.request.named"]
    assert steps[-2:] == ["rights.request.complete", "rights.request.export-sealed"]
    assert purposes == {"rights:access"}
    _assert_no_pii_in_audit(world)


def test_a_data_request_whose_phone_finds_more_waits_for_the_owner(world: World) -> None:
    gid = next(g for g in world.gids if world.fake.webhook_body("customers/redact", customer_of=g)["customer"]["phone"])
    phone = world.fake.webhook_body("customers/redact", customer_of=gid)["customer"]["phone"]
    svc = services(world.app)
    with svc.sessions() as s:  # the same person bought on Amazon too, with the phone Shopify has
        tenant = s.get_one(Tenant, world.tenant_id)
        amazon = add_account(s, tenant, "amazon", "JP store")
        elsewhere = add_order(s, svc.keys, amazon, "503-0000000-0000001", replace(SHANGHAI, phone=phone))
        s.commit()
    (delivery,) = world.fake.deliver_webhook(world.url, "customers/data_request", customer_of=gid)
    assert delivery.status == 200
    (row,) = _requests(world)
    assert row.state == rr.OPEN and _count(world, PrivacyExport) == 0
    with svc.sessions() as s:
        due = rr.open_requests(s, tenant_id=world.tenant_id)
        found = {m.order_id: m for m in rr.matches_of(s, keys=svc.keys, tenant_id=world.tenant_id, request_id=row.id)}
    assert [(d.id, d.source, d.due_at) for d in due] == [(row.id, "marketplace:shopify", row.due_at)]
    assert found[elsewhere.id].confirmed is False and found[elsewhere.id].marketplace == "amazon"
    assert all(m.confirmed and m.named for i, m in found.items() if i != elsewhere.id)
    with svc.sessions() as s:  # the owner confirms the Amazon order too and carries it out
        rr.confirm(s, tenant_id=world.tenant_id, request_id=row.id, order_ids=[elsewhere.id], actor="user:1")
        outcome = rr.carry_out(s, keys=svc.keys, tenant_id=world.tenant_id, request_id=row.id, actor="user:1")
        s.commit()
    assert outcome.export is not None and len(outcome.export["orders"]) == len(found)
    _assert_no_pii_in_audit(world)


def test_customers_redact_is_an_erasure_request_whose_outcome_names_the_hold(world: World) -> None:
    gid = world.gids[1]
    svc = services(world.app)
    with svc.sessions() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == str(legacy_id(gid)))).one()
        hold = place_hold(
            s, tenant_id=world.tenant_id, reason="chargeback dispute", owner="legal",
            ends_at=order.created_at + timedelta(days=400), actor="test", order=order,
        )  # fmt: skip
        s.commit()
    theirs = _customers_orders(world, gid)
    world.fake.deliver_webhook(world.url, "customers/redact", customer_of=gid)
    (row,) = _requests(world)
    assert row.kind == rr.ERASURE and row.state == rr.COMPLETED and row.source == "marketplace:shopify"
    assert row.outcome is not None and row.outcome["hold_ids"] == [hold.id]
    assert row.outcome["counts"] == {"held": 1, **({"erased": len(theirs) - 1} if len(theirs) > 1 else {})}
    _assert_no_pii_in_audit(world)


def test_a_hold_keeps_the_shop_account_through_shop_redact(world: World) -> None:
    svc = services(world.app)
    with svc.sessions() as s:
        order = s.scalars(select(Order).where(Order.external_order_id == str(legacy_id(world.gids[0])))).one()
        place_hold(
            s, tenant_id=world.tenant_id, reason="tax audit", owner="legal",
            ends_at=order.created_at + timedelta(days=400), actor="test", order=order,
        )  # fmt: skip
        s.commit()
    world.fake.deliver_webhook(world.url, "shop/redact")
    (row,) = _requests(world)
    assert row.outcome is not None and row.outcome["counts"] == {"erased": len(world.gids) - 1, "held": 1}
    assert _count(world, LabelRecordRow) == 1
    with svc.sessions() as s:
        account = s.get_one(MarketplaceAccount, world.account_id)
        assert account.removed_at is None  # kept while the hold keeps its order


def test_each_tenant_holding_the_shop_gets_its_own_request(world: World) -> None:
    svc = services(world.app)
    with svc.sessions() as s:  # a second seller (say, the shop's fulfilment partner) connected the same shop
        other = create_tenant(s, keys=svc.keys, slug="partner", name="Partner", actor="test")
        s.commit()
        account = add_shopify_account(s, svc.keys, other, world.fake, token=installed_token(world.fake))
        connector = make_connector(s, svc.keys, account, world.fake)
        sync_account(s, keys=svc.keys, account=account, connector=connector)
        connector.close()
        other_id = other.id
    gid = world.gids[5]
    theirs = _customers_orders(world, gid)
    (delivery,) = world.fake.deliver_webhook(world.url, "customers/redact", customer_of=gid)
    assert delivery.status == 200
    rows = _requests(world)
    assert sorted(r.tenant_id for r in rows) == sorted([world.tenant_id, other_id])
    erased = {"counts": {"erased": len(theirs)}, "hold_ids": []}
    assert all(r.state == rr.COMPLETED and r.outcome == erased for r in rows)
    with svc.sessions() as s:
        summaries = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "shopify.webhook")))
    assert sorted(e.tenant_id for e in summaries) == sorted([world.tenant_id, other_id])
    assert {e.details["rights_request"] for e in summaries} == {r.id for r in rows}
