"""People's rights handled by the seller: access, correction and erasure, each in the audit chain with its purpose."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.buyers import sample_label
from tests.support.vault import T0, make_orders
from vault import retention, rights
from vault.audit import canonical_event, chain_for, verify_chain
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import AuditEvent, LabelRecordRow, MarketplaceAccount, Order, Tenant

REQUEST = rights.RightsRequest(actor="operator:alice", request_id="ticket-4711", verified_by="owner Wang Fang")


def rights_events(session: Session, tenant: Tenant) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action.like("rights.%"))
            .order_by(AuditEvent.seq)
        )
    )


def assert_no_pii(event: AuditEvent) -> None:
    blob = canonical_event({c: getattr(event, c) for c in ("actor", "action", "outcome", "order_ref", "details")})
    for value in ("山田", "千代田", "1234-", "100-0001", "Kintetsu", "Osaka"):
        assert value.encode("unicode_escape") not in blob and value.encode() not in blob


def ref(order: Order) -> dict[str, str]:
    return {"marketplace": order.marketplace, "external_order_id": order.external_order_id}


def test_access_exports_the_order_data_as_json_and_is_audited(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    export = rights.export_order_data(session, keys=keys, tenant_id=tenant.id, **ref(order), request=REQUEST)
    decoded = json.loads(json.dumps(export, ensure_ascii=False))
    assert decoded["format"] == rights.EXPORT_FORMAT and decoded["request_id"] == "ticket-4711"
    assert decoded["order"]["order_id"] == order.external_order_id
    label = sample_label(0)
    assert decoded["shipping_label_data"] == {k: v for k, v in label.as_dict().items() if v is not None}
    assert decoded["erase_after"] == order.retention_until.isoformat() if order.retention_until else False
    (event,) = rights_events(session, tenant)
    assert (event.action, event.purpose, event.outcome) == ("rights.access", rights.ACCESS, "exported")
    assert event.actor == "operator:alice" and event.order_ref == f"amazon:{order.external_order_id}"
    assert event.details == {"request_id": "ticket-4711", "identity_verified_by": "owner Wang Fang"}
    assert_no_pii(event)


def test_access_to_another_tenants_order_is_not_found(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    from vault.tenants import create_tenant

    (order,) = make_orders(session, keys, account, 1)
    other = create_tenant(session, keys=keys, slug="rights-other", name="Other", actor="test")
    with pytest.raises(NotFound):
        rights.export_order_data(session, keys=keys, tenant_id=other.id, **ref(order), request=REQUEST)


def test_correction_seals_a_new_version_and_shreds_the_old(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    old_envelope = order.label.envelope
    corrected = dataclasses.replace(sample_label(0), address_line1="大阪市北区梅田3-1-1", city="Osaka")
    version = rights.correct_address(
        session, keys=keys, tenant_id=tenant.id, **ref(order), label=corrected, request=REQUEST
    )
    assert version == 2
    assert unseal_label(session, keys=keys, order=order) == corrected
    envelopes = session.scalars(select(LabelRecordRow.envelope).where(LabelRecordRow.order_id == order.id)).all()
    assert envelopes == [order.label.envelope] and old_envelope not in envelopes  # the old version is gone
    (event,) = rights_events(session, tenant)
    assert (event.action, event.purpose, event.outcome) == ("rights.correction", rights.CORRECTION, "corrected")
    assert event.details and (event.details["replaced_version"], event.details["record_version"]) == (1, 2)
    assert_no_pii(event)


def test_correction_of_an_erased_order_is_refused(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    rights.erase_order(session, tenant_id=tenant.id, **ref(order), request=REQUEST)
    with pytest.raises(rights.RightsError, match="nothing to correct"):
        rights.correct_address(
            session, keys=keys, tenant_id=tenant.id, **ref(order), label=sample_label(1), request=REQUEST
        )
    assert order.label is None


def test_erasure_shreds_now_whatever_the_retention_rule_says(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    (order, other) = make_orders(session, keys, account, 2)
    assert order.retention_until is not None and order.retention_until > T0 + timedelta(days=30)
    outcome = rights.erase_order(session, tenant_id=tenant.id, **ref(order), request=REQUEST, now=T0)
    assert outcome.erased and order.erased_at == T0 and order.label is None
    with pytest.raises(NotFound):
        unseal_label(session, keys=keys, order=order)
    assert unseal_label(session, keys=keys, order=other) == sample_label(1)  # only that order
    again = rights.erase_order(session, tenant_id=tenant.id, **ref(order), request=REQUEST)
    assert again.already_erased and not again.erased
    first, second = rights_events(session, tenant)
    assert (first.action, first.purpose, first.outcome) == ("rights.erasure", rights.ERASURE, "erased")
    assert second.outcome == "already-erased"


def test_erasure_under_a_legal_hold_is_refused_and_says_so(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    hold = retention.place_hold(
        session, tenant_id=tenant.id, order=order, reason="Court order 2026-Zi-88", owner="Legal: Chen Jing",
        ends_at=T0 + timedelta(days=200), actor="user:owner", now=T0,
    )  # fmt: skip
    outcome = rights.erase_order(
        session, tenant_id=tenant.id, **ref(order), request=REQUEST, now=T0 + timedelta(days=1)
    )
    assert not outcome.erased and outcome.hold_ids == (hold.id,)
    assert "Court order 2026-Zi-88" in outcome.hold_summary and "Legal: Chen Jing" in outcome.hold_summary
    assert unseal_label(session, keys=keys, order=order) == sample_label(0)
    (event,) = rights_events(session, tenant)
    assert event.outcome == "refused:legal-hold" and event.details and event.details["hold_ids"] == [hold.id]
    # once the hold ends, the same request goes through
    later = rights.erase_order(
        session, tenant_id=tenant.id, **ref(order), request=REQUEST, now=T0 + timedelta(days=201)
    )
    assert later.erased


def test_every_rights_request_is_in_the_verified_audit_chain_with_its_purpose(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    (order,) = make_orders(session, keys, account, 1)
    rights.export_order_data(session, keys=keys, tenant_id=tenant.id, **ref(order), request=REQUEST)
    rights.correct_address(
        session, keys=keys, tenant_id=tenant.id, **ref(order), label=sample_label(5), request=REQUEST
    )
    rights.erase_order(session, tenant_id=tenant.id, **ref(order), request=REQUEST)
    session.commit()
    assert [(e.action, e.purpose) for e in rights_events(session, tenant)] == [
        ("rights.access", "rights:access"),
        ("rights.correction", "rights:correction"),
        ("rights.erasure", "rights:erasure"),
    ]
    assert verify_chain(session, chain=chain_for(tenant.id)).ok


@pytest.mark.parametrize(("request_id", "verified_by"), [("", "owner"), ("t-1", " ")])
def test_a_request_needs_a_reference_and_an_identity_check(request_id: str, verified_by: str) -> None:
    with pytest.raises(rights.RightsError):
        rights.RightsRequest(actor="operator:alice", request_id=request_id, verified_by=verified_by)
