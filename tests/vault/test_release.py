"""The label preview goes through the release path: looked up inside the tenant, eligible, unsealed, cut to a
profile, audited as a preview with its purpose, and never counted as an issue."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.buyers import sample_label
from tests.support.vault import sample_facts
from vault.audit import chain_for, verify_chain
from vault.clients import ALL_FIELDS, LabelProfile
from vault.errors import NotEligible, NotFound
from vault.keys import KeyManager
from vault.labels import shred_label
from vault.models import AuditEvent, MarketplaceAccount, Order, Tenant, utcnow
from vault.orders import store_order
from vault.records import OrderStatus
from vault.release import LABEL_PREVIEW, PREVIEW_ACTION, PreviewedLabel, preview_label
from vault.tenants import create_tenant


def _order(
    session: Session, keys: KeyManager, account: MarketplaceAccount, i: int, status: OrderStatus = OrderStatus.UNSHIPPED
) -> Order:
    facts = sample_facts(i, status)
    return store_order(session, keys=keys, account=account, facts=facts, label=sample_label(i)).order


def _preview(session: Session, keys: KeyManager, tenant: Tenant, order_id: str, **kw: Any) -> PreviewedLabel:
    return preview_label(
        session, keys=keys, tenant_id=tenant.id, actor="user:3", marketplace="amazon", order_id=order_id,
        ip="198.51.100.4", **kw,
    )  # fmt: skip


def _previews(session: Session, tenant: Tenant) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == PREVIEW_ACTION)
    return list(session.scalars(query.order_by(AuditEvent.seq)).all())


def test_a_preview_shows_the_default_profile_and_is_audited_not_counted(
    session: Session, keys: KeyManager, account: MarketplaceAccount, tenant: Tenant
) -> None:
    order = _order(session, keys, account, 1)
    shown = preview_label(
        session, keys=keys, tenant_id=tenant.id, actor="user:3", marketplace="amazon",
        order_id=order.external_order_id, ip="198.51.100.4",
    )  # fmt: skip
    assert shown.label.name == sample_label(1).name and shown.label.phone is None  # phone withheld by default
    assert "phone" not in shown.released_fields and "name" in shown.released_fields
    (event,) = _previews(session, tenant)
    assert (event.actor, event.outcome, event.ip, event.purpose) == ("user:3", "shown", "198.51.100.4", LABEL_PREVIEW)
    assert event.order_ref == f"amazon:{order.external_order_id}" and event.seq == shown.audit_seq
    assert event.details == {"format": "png", "profile": "default", "fields": list(shown.released_fields)}
    session.refresh(order)
    assert order.labels_issued == 0  # a preview is not an issue
    text = repr([(e.actor, e.outcome, e.order_ref, e.details) for e in _previews(session, tenant)])
    assert sample_label(1).name not in text and "千代田" not in text  # no PII in the chain
    assert verify_chain(session, chain=chain_for(tenant.id)).ok


def test_the_reissue_cap_neither_limits_nor_counts_previews(
    session: Session, keys: KeyManager, account: MarketplaceAccount, tenant: Tenant
) -> None:
    order = _order(session, keys, account, 2)
    order.labels_issued = 1_000
    session.flush()
    _preview(session, keys, tenant, order.external_order_id)
    _preview(session, keys, tenant, order.external_order_id)
    session.refresh(order)
    assert order.labels_issued == 1_000 and [e.outcome for e in _previews(session, tenant)] == ["shown", "shown"]


def test_a_profile_decides_what_the_preview_shows(
    session: Session, keys: KeyManager, account: MarketplaceAccount, tenant: Tenant
) -> None:
    order = _order(session, keys, account, 3)
    everything = LabelProfile(ALL_FIELDS)
    shown = preview_label(
        session, keys=keys, tenant_id=tenant.id, actor="user:3", marketplace="amazon",
        order_id=order.external_order_id, ip=None, profile=everything, fmt="pdf",
    )  # fmt: skip
    assert shown.label == sample_label(3) and "phone" in shown.released_fields
    assert _previews(session, tenant)[0].details == {
        "format": "pdf",
        "profile": "custom",
        "fields": list(shown.released_fields),
    }


@pytest.mark.parametrize(
    ("status", "reason"),
    [(OrderStatus.CANCELLED, "cancelled"), (OrderStatus.SHIPPED, "status"), (OrderStatus.PENDING, "status")],
)
def test_an_order_not_eligible_for_a_label_is_refused_and_the_refusal_audited(
    session: Session, keys: KeyManager, account: MarketplaceAccount, tenant: Tenant, status: OrderStatus, reason: str
) -> None:
    order = _order(session, keys, account, 4, status=status)
    with pytest.raises(NotEligible) as refused:
        _preview(session, keys, tenant, order.external_order_id)
    assert refused.value.reason == reason
    (event,) = _previews(session, tenant)
    assert (event.outcome, event.order_ref, event.purpose) == (
        f"refused:{reason}",
        f"amazon:{order.external_order_id}",
        LABEL_PREVIEW,
    )


def test_erased_and_expired_orders_are_refused(
    session: Session, keys: KeyManager, account: MarketplaceAccount, tenant: Tenant
) -> None:
    erased, expired = _order(session, keys, account, 5), _order(session, keys, account, 6)
    shred_label(session, order=erased)
    with pytest.raises(NotEligible, match="erased"):
        _preview(session, keys, tenant, erased.external_order_id)
    later = (expired.retention_until or utcnow()) + timedelta(days=1)
    with pytest.raises(NotEligible, match="retention-expired"):
        _preview(session, keys, tenant, expired.external_order_id, now=later)
    assert [e.outcome for e in _previews(session, tenant)] == ["refused:erased", "refused:retention-expired"]


def test_another_tenants_order_is_not_found_and_named_in_no_event(
    session: Session, keys: KeyManager, account: MarketplaceAccount, tenant: Tenant
) -> None:
    order = _order(session, keys, account, 7)
    other = create_tenant(session, keys=keys, slug=f"other-{uuid.uuid4().hex[:6]}", name="Other Seller", actor="test")
    for order_id in (order.external_order_id, "no-such-order", "Jane Buyer, 1 Pike Street"):
        with pytest.raises(NotFound):
            _preview(session, keys, other, order_id)
    assert [(e.outcome, e.order_ref) for e in _previews(session, other)] == [("refused:not-found", None)] * 3
    assert _previews(session, tenant) == []  # the order's own tenant saw nothing
