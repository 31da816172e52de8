"""Idempotency-Key on the label API: a retry gets the same labels, audited as a redelivery, issued once."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.support.servers import Database
from tests.support.world import World, assert_matches_openapi, assert_no_pii, build_world
from vault.audit import verify_chain
from vault.keys import KeyManager
from vault.labels import shred_label
from vault.models import AuditEvent, LabelDelivery, Order, utcnow

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

LABEL_PATH = "/v1/labels/{marketplace}/{order_id}"
BATCH = "/v1/labels/batch"


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=3)


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url)


def keyed(world: World, key: str, **extra: str) -> dict[str, str]:
    return {**world.auth(), "Idempotency-Key": key, **extra}


def issued(world: World) -> list[int]:
    with world.session() as s:
        return [s.get_one(Order, o.id).labels_issued for o in world.orders]


def events(world: World) -> list[AuditEvent]:
    with world.session() as s:
        chain = f"tenant:{world.tenant.id}"
        assert verify_chain(s, chain=chain).ok
        return list(s.scalars(select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)))


def label_events(world: World) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.outcome, e.purpose) for e in events(world) if e.action.startswith("label.")]


def test_a_retried_label_is_the_same_label_audited_as_a_redelivery(app: Any, world: World) -> None:
    client = app.test_client()
    first = client.get(world.url(0, format="zpl"), headers=keyed(world, "retry-1"))
    again = client.get(world.url(0, format="zpl"), headers=keyed(world, "retry-1"))
    assert first.status_code == again.status_code == 200
    assert again.data == first.data  # re-rendered from the sealed record, with the first print time
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["Cache-Control"] == "no-store"
    assert_matches_openapi(again, LABEL_PATH)
    assert issued(world) == [1, 0, 0]
    assert label_events(world) == [
        ("label.release", "released", "shipping-label"),
        ("label.redeliver", "redelivered", "logistics"),
    ]
    assert events(world)[-1].details == {"issue": 1, "format": "zpl", "fields": events(world)[-2].details["fields"]}  # type: ignore[index]
    # a new key is a new request: a new issue
    assert client.get(world.url(0, format="zpl"), headers=keyed(world, "retry-2")).status_code == 200
    assert issued(world) == [2, 0, 0]


def test_the_stored_entry_holds_no_buyer_data(app: Any, world: World) -> None:
    assert app.test_client().get(world.url(0), headers=keyed(world, "my-secret-key")).status_code == 200
    with world.session() as s:
        row = s.scalars(select(LabelDelivery).where(LabelDelivery.tenant_id == world.tenant.id)).one()
        stored = json.dumps([row.key_hash, row.request_hash, row.format, row.options, row.orders])
    assert_no_pii(stored, "label_deliveries")
    assert "my-secret-key" not in stored
    assert row.orders == [["amazon", world.order_ids[0], 1]]
    assert row.expires_at - row.printed_at == timedelta(hours=24)


@pytest.mark.parametrize("change", ["order", "format", "dpi"])
def test_the_same_key_for_a_different_request_is_a_422(app: Any, world: World, change: str) -> None:
    client = app.test_client()
    assert client.get(world.url(0, format="zpl"), headers=keyed(world, "k")).status_code == 200
    url = {"order": world.url(1, format="zpl"), "format": world.url(0), "dpi": world.url(0, format="zpl", dpi="300")}
    resp = client.get(url[change], headers=keyed(world, "k"))
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["type"].endswith("/idempotency-key-reused")
    assert_matches_openapi(resp, LABEL_PATH)
    assert issued(world) == [1, 0, 0]


def test_keys_are_scoped_per_client(app: Any, world: World, keys: KeyManager) -> None:
    _, other = world.add_client(keys)
    client = app.test_client()
    assert client.get(world.url(0), headers=keyed(world, "shared")).status_code == 200
    assert client.get(world.url(0), headers={**world.auth(other), "Idempotency-Key": "shared"}).status_code == 200
    assert issued(world) == [2, 0, 0]


def test_a_key_is_remembered_only_within_its_window(app: Any, world: World) -> None:
    client = app.test_client()
    assert client.get(world.url(0), headers=keyed(world, "old")).status_code == 200
    with world.session() as s:
        s.execute(update(LabelDelivery).values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert client.get(world.url(0), headers=keyed(world, "old")).status_code == 200
    assert issued(world) == [2, 0, 0]  # the key was free again: a new issue
    with world.session() as s:  # the expired entry made way for the new one
        assert len(s.scalars(select(LabelDelivery).where(LabelDelivery.tenant_id == world.tenant.id)).all()) == 1


def test_a_redelivery_of_an_order_erased_meanwhile_is_refused(app: Any, world: World) -> None:
    client = app.test_client()
    assert client.get(world.url(0), headers=keyed(world, "k")).status_code == 200
    with world.session() as s:
        shred_label(s, order=s.get_one(Order, world.orders[0].id))
        s.commit()
    resp = client.get(world.url(0), headers=keyed(world, "k"))
    assert resp.status_code == 409 and resp.get_json()["reason"] == "erased"


@pytest.mark.parametrize("key", ["", "a" * 256, "spaces are not allowed", "ключ"])
def test_a_malformed_key_is_a_400(app: Any, world: World, key: str) -> None:
    resp = app.test_client().get(world.url(0), headers={**world.auth(), "Idempotency-Key": key})
    assert resp.status_code == 400
    assert issued(world) == [0, 0, 0]


def test_a_retried_batch_is_the_same_batch_and_counts_nothing(app: Any, world: World) -> None:
    client = app.test_client()
    orders = [
        {"marketplace": "amazon", "order_id": world.order_ids[0]},
        {"marketplace": "amazon", "order_id": "no such order"},
        {"marketplace": "amazon", "order_id": world.order_ids[1]},
    ]
    first = client.post(BATCH, json={"orders": orders}, headers=keyed(world, "wave-7"))
    again = client.post(BATCH, json={"orders": orders}, headers=keyed(world, "wave-7"))
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers["Labelvault-Refused"] == first.headers["Labelvault-Refused"] == "#1=not-found"
    assert_matches_openapi(again, BATCH, "post")
    pdf = client.post(BATCH, json={"orders": orders}, headers=keyed(world, "wave-7", Accept="application/pdf"))
    assert pdf.status_code == 422  # another format asked for with the same key: a different request
    assert issued(world) == [1, 1, 0]
    assert [(a, o) for a, o, _ in label_events(world)] == [
        ("label.release", "released"),
        ("label.release", "refused:not-found"),
        ("label.release", "released"),
        ("label.redeliver", "redelivered"),  # the refused reference was audited the first time only
        ("label.redeliver", "redelivered"),
    ]
    other = client.post(BATCH, json={"orders": orders[:1]}, headers=keyed(world, "wave-7"))
    assert other.status_code == 422 and other.get_json()["type"].endswith("/idempotency-key-reused")


def test_the_reissue_cap_does_not_stop_a_redelivery(make_app: Any, shared_db: Database, world: World) -> None:
    app = make_app(shared_db.app_url, label_reissue_cap=1)
    client = app.test_client()
    assert client.get(world.url(0), headers=keyed(world, "k")).status_code == 200
    assert client.get(world.url(0), headers=keyed(world, "k")).status_code == 200
    assert client.get(world.url(0), headers=keyed(world, "k2")).status_code == 409


@pytest.mark.parametrize("route", ["label", "batch"])
def test_two_concurrent_requests_with_one_key_issue_once(
    make_app: Any, fresh_db: Database, keys: KeyManager, route: str
) -> None:
    world = build_world(fresh_db, keys, n_orders=2)
    app = make_app(fresh_db.app_url, label_reissue_cap=1)
    start = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def request(i: int) -> None:
        client = app.test_client()
        start.wait()
        if route == "label":
            answers[i] = client.get(world.url(0, format="zpl"), headers=keyed(world, "same"))
        else:
            body = {"orders": [{"marketplace": "amazon", "order_id": oid} for oid in world.order_ids]}
            answers[i] = client.post(BATCH, json=body, headers=keyed(world, "same"))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [a.status_code for a in answers] == [200, 200], [a.get_data(as_text=True) for a in answers]
    assert answers[0].data == answers[1].data
    assert sorted("Idempotent-Replayed" in a.headers for a in answers) == [False, True]
    expected = [1, 0] if route == "label" else [1, 1]
    assert issued(world) == expected
    outcomes = [(a, o) for a, o, _ in label_events(world)]
    assert outcomes.count(("label.release", "released")) == sum(expected)
    assert outcomes.count(("label.redeliver", "redelivered")) == sum(expected)


@pytest.mark.parametrize(("route", "cap"), [("label", 3), ("label", 1), ("batch", 3)])
def test_a_request_that_lost_the_race_for_its_key_redelivers_the_winners_labels(
    make_app: Any, shared_db: Database, world: World, monkeypatch: pytest.MonkeyPatch, route: str, cap: int
) -> None:
    """The look-up before the release missed the winner (not committed yet); the claim (or, the cap being
    used up by the winner, the eligibility check) finds it, and the loser rolls back and redelivers."""
    import app.api.labels

    app_ = make_app(shared_db.app_url, label_reissue_cap=cap)
    client = app_.test_client()

    def send() -> Any:
        if route == "label":
            return client.get(world.url(0), headers=keyed(world, "race"))
        return client.post(
            BATCH,
            json={"orders": [{"marketplace": "amazon", "order_id": world.order_ids[0]}]},
            headers=keyed(world, "race"),
        )

    first = send()
    real = app.api.labels.find_delivery
    calls: list[int] = []

    def missed_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(app.api.labels, "find_delivery", missed_once)
    again = send()
    assert len(calls) == 2  # the first look-up missed; the second found the winner's delivery
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.data == first.data
    assert issued(world) == [1, 0, 0]
    assert [(a, o) for a, o, _ in label_events(world)] == [
        ("label.release", "released"),
        ("label.redeliver", "redelivered"),
    ]
