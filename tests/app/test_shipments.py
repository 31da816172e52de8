"""The shipment API end to end against the fake Shippo, on both databases: a label bought with an
Idempotency-Key, read, printed again under the cap and voided, all behind the scope; a carrier-label-only
client gets carrier labels and no address by any route."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pypdf
import pytest
from sqlalchemy import select

from connectors.carriers.shippo.client import ShippoPolicy
from connectors.fake_shippo import FakeShippo
from tests.support.buyers import MARKED_BUYERS
from tests.support.carriers import connect_fake_shippo
from tests.support.servers import Database
from tests.support.world import World, assert_matches_openapi, assert_no_pii, build_world
from vault.clients import CARRIER_ONLY_PROFILE, LABELS_ISSUE, SHIPMENTS_BUY, LabelProfile
from vault.keys import KeyManager
from vault.models import ApiClient, AuditEvent, Shipment

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

PARCEL = {"weight_g": 850, "length_mm": 300, "width_mm": 200, "height_mm": 120}


@pytest.fixture
def fake() -> Iterator[FakeShippo]:
    with FakeShippo() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def world(shared_db: Database, keys: KeyManager, fake: FakeShippo) -> World:
    built = build_world(shared_db, keys, n_orders=3, scopes=(SHIPMENTS_BUY,))
    with built.session() as s:
        connect_fake_shippo(s, keys, built.tenant.id, fake)
    return built


@pytest.fixture
def app(make_app: Any, shared_db: Database, fake: FakeShippo) -> Any:
    return make_app(shared_db.app_url, marketplace_endpoint_overrides=fake.base_url)


def _post(app: Any, world: World, i: int = 0, key: str | None = "key-1", auth: str | None = None, **body: Any) -> Any:
    payload = {"marketplace": "amazon", "order_id": world.order_ids[i], "parcel": PARCEL, **body}
    headers = world.auth(auth) | ({"Idempotency-Key": key} if key else {})
    return app.test_client().post("/v1/shipments", json=payload, headers=headers)


def test_a_label_is_bought_read_printed_and_voided(app: Any, world: World, fake: FakeShippo) -> None:
    resp = _post(app, world, format="pdf")
    assert resp.status_code == 201, resp.get_json()
    assert_matches_openapi(resp, "/v1/shipments", "post")
    shipment = resp.get_json()
    assert shipment["status"] == "bought" and shipment["carrier"] == "shippo" and shipment["tracking_number"]
    assert_no_pii(resp.get_data(as_text=True), "a shipment")
    again = _post(app, world, format="pdf")  # a retry: the same shipment, nothing bought
    assert again.status_code == 201 and again.get_json()["id"] == shipment["id"]
    assert sum(fake.purchases_by_metadata().values()) == 1

    client = app.test_client()
    read = client.get(f"/v1/shipments/{shipment['id']}", headers=world.auth())
    assert read.status_code == 200 and read.get_json() == shipment
    assert_matches_openapi(read, "/v1/shipments/{shipment_id}")
    label = client.get(f"/v1/shipments/{shipment['id']}/label", headers=world.auth())
    assert label.status_code == 200 and label.mimetype == "application/pdf"
    assert label.headers["Cache-Control"] == "no-store"
    text = pypdf.PdfReader(io.BytesIO(label.data)).pages[0].extract_text()
    assert shipment["tracking_number"] in text  # the carrier's own label
    assert client.get(f"/v1/shipments/{shipment['id']}/label?format=zpl", headers=world.auth()).status_code == 406

    void = client.post(f"/v1/shipments/{shipment['id']}/void", headers=world.auth())
    assert void.status_code == 200 and void.get_json()["status"] == "voided"
    assert client.get(f"/v1/shipments/{shipment['id']}/label", headers=world.auth()).status_code == 409

    with world.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == world.tenant.id)).all()
    shares = [e for e in events if e.purpose == "shipping-label"]
    assert [e.action for e in shares] == ["shipment.purchase", "shipment.label", "shipment.void"]
    assert_no_pii(json.dumps([e.details for e in events]), "the audit chain")


def test_the_reprint_cap_holds_for_carrier_labels(
    make_app: Any, shared_db: Database, world: World, fake: FakeShippo
) -> None:
    app = make_app(shared_db.app_url, marketplace_endpoint_overrides=fake.base_url, label_reissue_cap=1)
    shipment = _post(app, world, format="zpl").get_json()
    client = app.test_client()
    assert client.get(f"/v1/shipments/{shipment['id']}/label", headers=world.auth()).status_code == 200
    capped = client.get(f"/v1/shipments/{shipment['id']}/label", headers=world.auth())
    assert capped.status_code == 409 and capped.get_json()["reason"] == "reissue-cap"


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        ({}, None, 400),  # no Idempotency-Key
        ({"parcel": {"weight_g": 0, "length_mm": 1, "width_mm": 1, "height_mm": 1}}, "k", 400),
        ({"format": "gif"}, "k", 400),
        ({"service": "fedex_overnight"}, "k", 422),
    ],
)
def test_bad_requests_are_refused_with_a_clear_problem(
    app: Any, world: World, fake: FakeShippo, body: dict[str, Any], key: str | None, status: int
) -> None:
    resp = _post(app, world, key=key, **body)
    assert resp.status_code == status and resp.mimetype == "application/problem+json"
    assert sum(fake.purchases_by_metadata().values()) == 0


def test_a_key_reused_for_another_order_and_a_second_label_for_an_order_are_refused(app: Any, world: World) -> None:
    assert _post(app, world, 0).status_code == 201
    assert _post(app, world, 1).get_json()["type"].endswith("idempotency-key-reused")
    second = _post(app, world, 0, key="key-2")
    assert second.status_code == 409 and second.get_json()["type"].endswith("shipment-exists")


def test_a_carrier_outage_is_a_503_with_nothing_recorded(app: Any, world: World, fake: FakeShippo) -> None:
    fake.fail(status=503, count=10, operation="CreateShipment")
    resp = _post(app, world)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    with world.session() as s:
        assert s.scalars(select(Shipment).where(Shipment.tenant_id == world.tenant.id)).all() == []


def test_the_shipment_routes_need_the_scope_and_the_tenant(app: Any, world: World, keys: KeyManager) -> None:
    shipment = _post(app, world).get_json()
    _, label_key = world.add_client(
        keys, scopes=[LABELS_ISSUE], profile=LabelProfile(frozenset(MARKED_BUYERS[0].as_dict()))
    )
    assert _post(app, world, 1, auth=label_key).status_code == 403
    other = build_world(world.db, keys, n_orders=1, scopes=(SHIPMENTS_BUY,))
    resp = app.test_client().get(f"/v1/shipments/{shipment['id']}", headers=other.auth())
    assert resp.status_code == 404
    assert app.test_client().get("/v1/shipments/x1", headers=world.auth()).status_code == 404


def test_a_carrier_label_only_client_gets_carrier_labels_and_no_address_by_any_route(
    app: Any, world: World, keys: KeyManager
) -> None:
    client_row, key = world.add_client(keys, scopes=[LABELS_ISSUE, SHIPMENTS_BUY])
    assert client_row.profile == CARRIER_ONLY_PROFILE.to_json()  # the default once a carrier is configured
    http = app.test_client()
    for fmt in ("json", "zpl", "pdf", "png"):
        resp = http.get(world.url(0, format=fmt), headers=world.auth(key))
        assert resp.status_code == 403 and resp.get_json()["type"].endswith("carrier-label-only")
    batch = http.post(
        "/v1/labels/batch?format=zpl", json={"orders": [{"marketplace": "amazon", "order_id": world.order_ids[0]}]},
        headers=world.auth(key) | {"Idempotency-Key": "b-1"},
    )  # fmt: skip
    assert batch.status_code == 403
    for resp in (batch, *[http.get(world.url(0), headers=world.auth(key))]):
        assert_no_pii(resp.get_data(as_text=True), "a refusal")
    bought = _post(app, world, 2, auth=key)
    assert bought.status_code == 201
    label = http.get(f"/v1/shipments/{bought.get_json()['id']}/label", headers=world.auth(key))
    assert label.status_code == 200 and label.mimetype == "application/pdf"
    with world.session() as s:
        stored = s.get(ApiClient, client_row.id)
        assert stored is not None and LabelProfile.from_json(stored.profile).carrier_only


def _batch(app: Any, world: World, items: list[dict[str, Any]], key: str | None = "wave-1") -> Any:
    headers = world.auth() | ({"Idempotency-Key": key} if key else {})
    return app.test_client().post("/v1/shipments/batch", json={"shipments": items}, headers=headers)


def _item(world: World, i: int, **body: Any) -> dict[str, Any]:
    return {"marketplace": "amazon", "order_id": world.order_ids[i], "parcel": PARCEL, "format": "zpl", **body}


def test_a_batch_buys_each_order_once_and_a_retried_batch_buys_nothing_more(
    app: Any, world: World, fake: FakeShippo
) -> None:
    assert _post(app, world, 2).status_code == 201  # order 2 has its label already
    items = [_item(world, 0), _item(world, 1), _item(world, 2), _item(world, 0, order_id="503-0000000-missing")]
    first = _batch(app, world, items)
    assert first.status_code == 200, first.get_json()
    assert_matches_openapi(first, "/v1/shipments/batch", "post")
    body = first.get_json()
    assert [s["order_id"] for s in body["shipments"]] == world.order_ids[:2]
    assert all(s["status"] == "bought" and s["label_format"] == "zpl" for s in body["shipments"])
    assert [(r["order_id"], r["reason"]) for r in body["refused"]] == [
        (world.order_ids[2], "shipment-exists"),
        ("503-0000000-missing", "not-found"),
    ]
    assert first.headers["Labelvault-Refused-Count"] == "2" and first.headers["Cache-Control"] == "no-store"
    assert_no_pii(first.get_data(as_text=True), "a batch of shipments")
    assert sum(fake.purchases_by_metadata().values()) == 3

    again = _batch(app, world, items)  # the retry: the same shipments, nothing bought
    assert again.status_code == 200 and again.get_json() == body
    assert sum(fake.purchases_by_metadata().values()) == 3 and set(fake.purchases_by_metadata().values()) == {1}
    changed = _batch(app, world, [_item(world, 0, service="fastest")])  # the same key, another ask
    assert changed.get_json()["refused"] == [
        {"marketplace": "amazon", "order_id": world.order_ids[0], "reason": "idempotency-key-reused"}
    ]
    with world.session() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == world.tenant.id)).all()
    bought = [e for e in events if e.action == "shipment.purchase" and e.outcome == "ok"]
    assert len(bought) == 3 and all(e.purpose == "shipping-label" for e in bought)
    refusals = [e.outcome for e in events if e.action == "shipment.purchase" and e.outcome != "ok"]
    assert refusals == ["refused:not-found"] * 2  # each ask's refusal audited
    assert_no_pii(json.dumps([e.details for e in events]), "the audit chain")


def test_a_batch_with_a_carrier_outage_reports_it_per_order_with_nothing_recorded(
    app: Any, world: World, fake: FakeShippo
) -> None:
    fake.fail(status=503, count=ShippoPolicy().attempts, operation="CreateShipment")  # every retry of the quote
    resp = _batch(app, world, [_item(world, 0)])
    assert resp.status_code == 200
    assert resp.get_json() == {
        "shipments": [],
        "refused": [{"marketplace": "amazon", "order_id": world.order_ids[0], "reason": "carrier-unavailable"}],
    }
    with world.session() as s:
        assert s.scalars(select(Shipment).where(Shipment.tenant_id == world.tenant.id)).all() == []
    assert _batch(app, world, [_item(world, 0)]).get_json()["shipments"][0]["status"] == "bought"  # then retried


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"shipments": [{"marketplace": "amazon", "order_id": "1", "parcel": PARCEL}]}, None),  # no key
        ({"shipments": []}, "k"),
        ({"orders": []}, "k"),
        ({"shipments": [{"marketplace": "amazon", "order_id": "1", "parcel": {"weight_g": 1}}]}, "k"),
        ({"shipments": [{"marketplace": "amazon", "order_id": "1", "parcel": PARCEL}] * 2}, "k"),  # twice
        ({"shipments": [{"marketplace": "amazon", "order_id": "1", "parcel": PARCEL}] * 501}, "k"),
    ],
)
def test_bad_batches_are_refused_whole_with_a_clear_problem(
    app: Any, world: World, fake: FakeShippo, body: dict[str, Any], key: str | None
) -> None:
    headers = world.auth() | ({"Idempotency-Key": key} if key else {})
    resp = app.test_client().post("/v1/shipments/batch", json=body, headers=headers)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert sum(fake.calls.values()) == 0


def test_the_batch_needs_the_scope(app: Any, world: World, keys: KeyManager) -> None:
    _, label_key = world.add_client(
        keys, scopes=[LABELS_ISSUE], profile=LabelProfile(frozenset(MARKED_BUYERS[0].as_dict()))
    )
    resp = app.test_client().post(
        "/v1/shipments/batch", json={"shipments": [_item(world, 0)]},
        headers=world.auth(label_key) | {"Idempotency-Key": "w"},
    )  # fmt: skip
    assert resp.status_code == 403
