"""The shipment API end to end through EasyPost (the fake EasyPost, the real client the registry builds), on
both databases: a label bought with an Idempotency-Key, read, printed again, voided; no PII in any answer or
in the audit chain."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pypdf
import pytest
from sqlalchemy import select

from connectors.carriers.http import CarrierPolicy
from connectors.fake_easypost import FakeEasyPost
from tests.support.carriers import connect_fake_easypost
from tests.support.servers import Database
from tests.support.world import World, assert_matches_openapi, assert_no_pii, build_world
from vault.clients import SHIPMENTS_BUY
from vault.keys import KeyManager
from vault.models import AuditEvent

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

PARCEL = {"weight_g": 850, "length_mm": 300, "width_mm": 200, "height_mm": 120}


@pytest.fixture
def fake() -> Iterator[FakeEasyPost]:
    with FakeEasyPost() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def world(shared_db: Database, keys: KeyManager, fake: FakeEasyPost) -> World:
    built = build_world(shared_db, keys, n_orders=2, scopes=(SHIPMENTS_BUY,))
    with built.session() as s:
        connect_fake_easypost(s, keys, built.tenant.id, fake)
    return built


@pytest.fixture
def app(make_app: Any, shared_db: Database, fake: FakeEasyPost) -> Any:
    return make_app(shared_db.app_url, marketplace_endpoint_overrides=fake.base_url)


def test_an_easypost_label_is_bought_read_printed_and_voided(app: Any, world: World, fake: FakeEasyPost) -> None:
    http = app.test_client()
    payload = {"marketplace": "amazon", "order_id": world.order_ids[0], "parcel": PARCEL, "service": "Priority"}
    headers = world.auth() | {"Idempotency-Key": "ep-1"}
    resp = http.post("/v1/shipments", json={**payload, "format": "pdf"}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    assert_matches_openapi(resp, "/v1/shipments", "post")
    shipment = resp.get_json()
    assert shipment["carrier"] == "easypost" and shipment["service"] == "Priority" and shipment["tracking_number"]
    assert_no_pii(resp.get_data(as_text=True), "a shipment")
    again = http.post("/v1/shipments", json={**payload, "format": "pdf"}, headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == shipment["id"]
    assert sum(fake.bought().values()) == 1 and fake.calls["BuyShipment"] == 1

    read = http.get(f"/v1/shipments/{shipment['id']}", headers=world.auth())
    assert read.status_code == 200 and read.get_json() == shipment
    label = http.get(f"/v1/shipments/{shipment['id']}/label", headers=world.auth())
    assert label.status_code == 200 and label.mimetype == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(label.data)).pages[0].extract_text()
    assert shipment["tracking_number"] in text  # EasyPost's own label, converted to the format bought

    void = http.post(f"/v1/shipments/{shipment['id']}/void", headers=world.auth())
    assert void.status_code == 200 and void.get_json()["status"] == "voided"
    assert void.get_json()["refund"] == "pending"
    with world.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == world.tenant.id)).all()
    shares = [e for e in events if e.purpose == "shipping-label"]
    assert [e.action for e in shares] == ["shipment.purchase", "shipment.label", "shipment.void"]
    assert shares[0].details is not None and shares[0].details["carrier"] == "easypost"
    assert_no_pii(json.dumps([e.details for e in events]), "the audit chain")


def test_an_easypost_outage_is_a_503_and_a_refused_address_a_clear_problem(
    app: Any, world: World, fake: FakeEasyPost
) -> None:
    http = app.test_client()
    payload = {"marketplace": "amazon", "order_id": world.order_ids[1], "parcel": PARCEL}
    fake.fail(status=503, count=CarrierPolicy().attempts, operation="CreateAddress")  # every retry of the app's client
    resp = http.post("/v1/shipments", json=payload, headers=world.auth() | {"Idempotency-Key": "ep-2"})
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    fake.reject_address()
    resp = http.post("/v1/shipments", json=payload, headers=world.auth() | {"Idempotency-Key": "ep-3"})
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert_no_pii(resp.get_data(as_text=True), "a problem")
    assert fake.bought() == {}
