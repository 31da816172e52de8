"""Rights requests as a workflow: a person found across marketplaces and accounts, confirmed, and acted on
exactly as confirmed, each step audited with its purpose and without the person's data."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.people import WANG_SPELLINGS, person_world
from tests.support.vault import T0
from vault import retention
from vault import rights_requests as rr
from vault.audit import chain_for, verify_chain
from vault.blind_index import PersonValues
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import AuditEvent, LabelRecordRow, Order, Tenant, utcnow

WANG = PersonValues(name="ＷＡＮＧ ＸＩＡＯＭＩＮＧ", phone="138 0013 8000", phone_region="CN")
PII = ("wang", "xiaoming", "138", "13800138000", "200120", "世纪大道", "Ｗ")


def open_wang(session: Session, keys: KeyManager, tenant: Tenant, kind: str = rr.ERASURE, **kw: object) -> int:
    row = rr.open_request(
        session, keys=keys, tenant_id=tenant.id, kind=kind, person=WANG, reference="REQ-19",
        verified_by="owner:li", verification="passport seen on video call", actor="owner:li",
        jurisdiction="eu", received_at=T0, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return row.id


def events(session: Session, tenant: Tenant) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action.like("rights.%"))
            .order_by(AuditEvent.seq)
        )
    )


def assert_no_pii(session: Session, tenant: Tenant) -> None:
    for event in events(session, tenant):
        blob = json.dumps([event.actor, event.outcome, event.order_ref, event.details], ensure_ascii=False).lower()
        assert not any(value.lower() in blob for value in PII), blob


def test_erasure_finds_the_person_everywhere_and_erases_exactly_the_confirmed_set(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    request_id = open_wang(session, keys, tenant)
    found = rr.find_matches(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    assert {m.order_id for m in found} == {o.id for o in world.wang}  # the namesake has another phone
    assert {m.marketplace for m in found} == {"amazon", "shopify", "tiktok"}
    assert {m.account for m in found} == {"JP store", "CN store", "shop.example", "TikTok CN"}
    assert all("xiaoming" not in m.masked.lower() and m.masked.startswith(("W*", "w*", "Ｗ*")) for m in found)
    confirmed = {o.id for o in world.wang[:3]}  # the seller leaves one out (say, a gift to someone else)
    assert rr.confirm(session, tenant_id=tenant.id, request_id=request_id, order_ids=confirmed, actor="owner:li") == 3
    outcome = rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    assert len(outcome.done) == 3 and not outcome.held
    still_sealed = set(session.scalars(select(LabelRecordRow.order_id).where(LabelRecordRow.tenant_id == tenant.id)))
    everyone = {o.id for o in (*world.wang, world.namesake, *world.others)}
    assert still_sealed == everyone - confirmed
    row = rr.get_request(session, tenant_id=tenant.id, request_id=request_id)
    assert row.state == rr.COMPLETED and row.values_envelope is None and row.outcome == {
        "counts": {"erased": 3}, "hold_ids": []
    }  # fmt: skip
    steps = [e.action for e in events(session, tenant)]
    assert steps == ["rights.request.open", "rights.request.match", "rights.request.confirm",
                     *["rights.erasure"] * 3, "rights.request.complete"]  # fmt: skip
    assert all(e.purpose == "rights:erasure" for e in events(session, tenant))
    assert_no_pii(session, tenant)
    assert verify_chain(session, chain=chain_for(tenant.id)).ok


def test_a_legal_hold_wins_and_the_outcome_names_it(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    world = person_world(session, keys, tenant)
    hold = retention.place_hold(
        session, tenant_id=tenant.id, reason="case 2026-114 (tax audit)", owner="legal:chen",
        ends_at=utcnow() + timedelta(days=90), actor="owner:li", order=world.wang[1],
    )  # fmt: skip
    request_id = open_wang(session, keys, tenant)
    found = rr.find_matches(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    rr.confirm(session, tenant_id=tenant.id, request_id=request_id, order_ids=[m.order_id for m in found], actor="x")
    outcome = rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    held_order = world.wang[1]
    assert list(outcome.held) == [f"{held_order.marketplace}:{held_order.external_order_id}"]
    assert f"hold {hold.id}" in next(iter(outcome.held.values()))
    row = rr.get_request(session, tenant_id=tenant.id, request_id=request_id)
    assert row.outcome == {"counts": {"erased": 3, "held": 1}, "hold_ids": [hold.id]}
    session.refresh(held_order)
    assert held_order.label is not None


def test_access_exports_every_confirmed_order_as_json(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    world = person_world(session, keys, tenant)
    request_id = open_wang(session, keys, tenant, kind=rr.ACCESS)
    found = rr.find_matches(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    rr.confirm(session, tenant_id=tenant.id, request_id=request_id, order_ids=[m.order_id for m in found], actor="x")
    outcome = rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    export = json.loads(json.dumps(outcome.export, ensure_ascii=False))
    assert export["format"] == rr.REQUEST_FORMAT and export["request_reference"] == "REQ-19"
    assert sorted(o["order"]["order_id"] for o in export["orders"]) == sorted(o.external_order_id for o in world.wang)
    assert {o["shipping_label_data"]["postal_code"] for o in export["orders"]} == {"200120"}
    assert_no_pii(session, tenant)


def test_a_correction_changes_the_confirmed_records_and_the_index_follows(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    request_id = open_wang(session, keys, tenant, kind=rr.CORRECTION, correction={"phone": "+86 139 1111 2222"})
    found = rr.find_matches(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    rr.confirm(session, tenant_id=tenant.id, request_id=request_id, order_ids=[m.order_id for m in found], actor="x")
    rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="owner:li")
    for order in world.wang:
        session.refresh(order)
        assert unseal_label(session, keys=keys, order=order).phone == "+86 139 1111 2222"
    again = open_wang(session, keys, tenant, kind=rr.ACCESS)
    assert rr.find_matches(session, keys=keys, tenant_id=tenant.id, request_id=again, actor="x") == []


def test_a_marketplace_notice_confirms_the_orders_it_names_and_finds_the_rest_for_confirmation(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    shopify_order = world.wang[2]
    row = rr.open_request_from_marketplace(
        session, keys=keys, tenant_id=tenant.id, marketplace="shopify", kind=rr.ERASURE,
        reference="shopify:customers/redact:991", actor="marketplace:shopify",
        order_ids=[shopify_order.external_order_id, "unknown-1"], values=PersonValues(phone="+8613800138000"),
    )  # fmt: skip
    assert row.verified_by == "marketplace:shopify" and row.source == "marketplace:shopify"
    found = {m.order_id: m for m in rr.matches_of(session, keys=keys, tenant_id=tenant.id, request_id=row.id)}
    assert set(found) == {o.id for o in world.wang}
    assert [m.order_id for m in found.values() if m.confirmed] == [shopify_order.id]
    rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=row.id, actor="marketplace:shopify")
    erased = set(session.scalars(select(Order.id).where(Order.tenant_id == tenant.id, Order.erased_at.is_not(None))))
    assert erased == {shopify_order.id}


def test_due_dates_follow_the_jurisdiction_and_overdue_requests_show(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    eu = open_wang(session, keys, tenant, kind=rr.ACCESS)
    ca = open_wang(session, keys, tenant, kind=rr.ACCESS, due_days=rr.parse_due_days("us-ca=45,default=10"))
    due = {d.id: d for d in rr.open_requests(session, tenant_id=tenant.id, now=T0 + timedelta(days=20))}
    assert due[eu].due_at == T0 + timedelta(days=30) and not due[eu].overdue
    assert due[ca].due_at == T0 + timedelta(days=10) and due[ca].overdue  # "eu" not in that table: its default


@pytest.mark.parametrize(
    ("text", "message"),
    [("eu=30", "needs a default"), ("eu=thirty,default=30", "code=days"), ("default=0", "days ≥ 1")],
)
def test_a_bad_due_date_table_is_a_one_line_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rr.parse_due_days(text)


def test_only_found_orders_can_be_confirmed_and_a_completed_request_is_closed(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    request_id = open_wang(session, keys, tenant)
    rr.find_matches(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="x")
    with pytest.raises(rr.RightsRequestError, match="only orders the request found"):
        rr.confirm(session, tenant_id=tenant.id, request_id=request_id, order_ids=[world.namesake.id], actor="x")
    rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="x")  # nothing confirmed
    assert session.scalar(select(LabelRecordRow).where(LabelRecordRow.order_id == world.wang[0].id)) is not None
    with pytest.raises(rr.RightsRequestError, match="completed"):
        rr.carry_out(session, keys=keys, tenant_id=tenant.id, request_id=request_id, actor="x")


def test_a_marketplace_access_request_carried_out_unattended_seals_its_export_for_the_owner(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    world = person_world(session, keys, tenant)
    order = world.wang[2]  # Shopify's
    row = rr.open_request_from_marketplace(
        session, keys=keys, tenant_id=tenant.id, marketplace="shopify", kind=rr.ACCESS,
        reference="shopify:data_request:7", actor="shopify-webhook", order_ids=[order.external_order_id],
    )  # fmt: skip
    assert rr.awaiting_confirmation(session, tenant_id=tenant.id, request_id=row.id) == 0
    outcome = rr.carry_out_sealed(
        session, keys=keys, tenant_id=tenant.id, request_id=row.id, actor="shopify-webhook",
        account_id=order.account_id, source="shopify:customers/data_request",
    )  # fmt: skip
    assert outcome.export is None and outcome.sealed_export is not None  # nothing handed out, all kept sealed
    assert rr.export_id_of(row) == outcome.sealed_export
    (done,) = rr.completed_requests(session, tenant_id=tenant.id).items
    assert (done.id, done.source, done.export_id, done.export_fetched) == (
        row.id, "marketplace:shopify", outcome.sealed_export, False
    )  # fmt: skip
    export = rr.fetch_request_export(session, keys=keys, tenant_id=tenant.id, request_id=row.id, actor="owner:li")
    assert [o["shipping_label_data"]["name"] for o in export["orders"]] == [WANG_SPELLINGS[2]]
    assert export["request_reference"] == "shopify:data_request:7"
    assert rr.completed_requests(session, tenant_id=tenant.id).items[0].export_fetched
    steps = [e.action for e in events(session, tenant)]
    assert steps == ["rights.request.open", "rights.request.named", "rights.access", "rights.request.complete",
                     "rights.request.export-sealed", "rights.export-fetched"]  # fmt: skip
    assert {e.purpose for e in events(session, tenant)} == {"rights:access"}
    assert_no_pii(session, tenant)
    with pytest.raises(NotFound):  # another tenant's request, and a request that sealed nothing
        rr.fetch_request_export(session, keys=keys, tenant_id=tenant.id + 1, request_id=row.id, actor="x")
    erasure = rr.open_request_from_marketplace(
        session, keys=keys, tenant_id=tenant.id, marketplace="shopify", kind=rr.ERASURE,
        reference="shopify:customers/redact:1", actor="shopify-webhook", order_ids=[order.external_order_id],
    )  # fmt: skip
    rr.carry_out_sealed(
        session, keys=keys, tenant_id=tenant.id, request_id=erasure.id, actor="shopify-webhook",
        account_id=order.account_id, source="shopify:customers/redact",
    )  # fmt: skip
    assert rr.export_id_of(erasure) is None
    with pytest.raises(NotFound):
        rr.fetch_request_export(session, keys=keys, tenant_id=tenant.id, request_id=erasure.id, actor="x")


def test_a_notice_entered_by_the_seller_is_dated_by_it(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    world = person_world(session, keys, tenant)
    ids = [world.wang[0].external_order_id, world.wang[1].external_order_id, "503-0000000-0000404"]
    row, named = rr.open_notice(
        session, keys=keys, tenant_id=tenant.id, marketplace="amazon", kind=rr.ERASURE, notice_id="AMZ-DEL-1",
        notice_date=T0, order_ids=ids, actor="owner:li", jurisdiction="br",
    )  # fmt: skip
    assert named == 2 and (row.received_at, row.due_at) == (T0, T0 + timedelta(days=15))
    assert (row.reference, row.source, row.created_by) == ("AMZ-DEL-1", "marketplace:amazon", "owner:li")
    assert [d.id for d in rr.open_requests(session, tenant_id=tenant.id, now=T0)] == [row.id]
    with pytest.raises(rr.RightsRequestError, match="in the future"):
        rr.open_notice(
            session, keys=keys, tenant_id=tenant.id, marketplace="amazon", kind=rr.ERASURE, notice_id="AMZ-DEL-2",
            notice_date=utcnow() + timedelta(days=2), order_ids=ids, actor="owner:li",
        )  # fmt: skip


def test_a_notice_may_name_more_orders_than_one_query_binds(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    world = person_world(session, keys, tenant)
    ids = [f"X-{i}" for i in range(70_000)] + [world.wang[0].external_order_id]  # above both drivers' limits
    row = rr.open_request_from_marketplace(
        session, keys=keys, tenant_id=tenant.id, marketplace="amazon", kind=rr.ERASURE, reference="shop:all",
        actor="test", order_ids=ids,
    )  # fmt: skip
    found = rr.matches_of(session, keys=keys, tenant_id=tenant.id, request_id=row.id)
    assert [m.order_id for m in found] == [world.wang[0].id]
    named = [e for e in events(session, tenant) if e.action == "rights.request.named"]
    assert named[-1].details["unknown_order_ids"] == 70_000
