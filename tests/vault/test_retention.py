"""Retention rules, deadlines, tenant policies, legal holds and the purge, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tests.support.buyers import sample_label
from tests.support.vault import T0, make_account, sample_facts
from vault import retention
from vault.audit import chain_for, verify_chain
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import AuditEvent, LabelRecordRow, LegalHold, MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus
from vault.retention import RetentionError, RetentionRule, RetentionRules

DAY = timedelta(days=1)


def facts(i: int, **changes: object) -> OrderFacts:
    return dataclasses.replace(sample_facts(i), **changes)  # type: ignore[arg-type]


def store(session: Session, keys: KeyManager, account: MarketplaceAccount, f: OrderFacts) -> Order:
    return store_order(session, keys=keys, account=account, facts=f, label=sample_label(1)).order


def events(session: Session, tenant: Tenant, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.seq)
        )
    )


# -- rules --------------------------------------------------------------------------------------------


def test_amazon_default_is_30_days_after_the_reported_delivery(
    session: Session, keys: KeyManager, account: MarketplaceAccount
) -> None:
    order = store(session, keys, account, facts(1, status=OrderStatus.SHIPPED, delivered_at=T0 + 5 * DAY))
    assert order.retention_until == T0 + 35 * DAY


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"latest_delivery_at": T0 + 7 * DAY}, T0 + 37 * DAY, id="latest-delivery-date"),
        pytest.param({"latest_delivery_at": None}, T0 + 2 * DAY + 14 * DAY + 30 * DAY, id="ship-by-plus-allowance"),
        pytest.param(
            {"latest_delivery_at": None, "ship_by": None}, T0 + 14 * DAY + 30 * DAY, id="purchase-plus-allowance"
        ),
    ],
)
def test_without_a_reported_delivery_the_deadline_falls_back(
    session: Session, keys: KeyManager, account: MarketplaceAccount, changes: dict[str, object], expected: datetime
) -> None:
    order = store(session, keys, account, facts(2, **changes))
    assert order.retention_until == expected


@pytest.mark.parametrize("status", [OrderStatus.CANCELLED, OrderStatus.UNFULFILLABLE])
def test_cancelled_and_unfulfillable_orders_are_due_at_once(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount, status: OrderStatus
) -> None:
    order = store(session, keys, account, facts(3))
    update_time = T0 + 3 * DAY
    store(session, keys, account, facts(3, status=status, last_updated_at=update_time))
    assert order.retention_until == update_time
    result = retention.purge_due(session, tenant_id=tenant.id, now=update_time + timedelta(minutes=5))
    assert result.erased == 1 and order.erased_at is not None and order.label is None


def test_a_status_change_re_dates_the_order(session: Session, keys: KeyManager, account: MarketplaceAccount) -> None:
    order = store(session, keys, account, facts(4))
    assert order.retention_until == T0 + 37 * DAY
    store(session, keys, account, facts(4, status=OrderStatus.SHIPPED, delivered_at=T0 + 3 * DAY))
    assert order.retention_until == T0 + 33 * DAY


def test_delivery_allowance_is_configurable() -> None:
    rules = RetentionRules().with_delivery_allowance(3)
    order = facts(5, latest_delivery_at=None)
    assert rules.for_marketplace("amazon").deadline(order) == T0 + 2 * DAY + 3 * DAY + 30 * DAY
    assert rules.for_marketplace("other-marketplace").delivery_allowance_days == 3
    with pytest.raises(RetentionError):
        retention.configure(delivery_allowance_days=90)


def test_a_rule_only_ever_shortens() -> None:
    rule = RetentionRule("amazon")
    order = facts(6, delivered_at=T0)
    assert rule.deadline(order, days_after_delivery=10) == T0 + 10 * DAY
    assert rule.deadline(order, days_after_delivery=400) == T0 + 30 * DAY


def test_tenant_may_shorten_never_lengthen(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    order = store(session, keys, account, facts(7, delivered_at=T0))
    redated = retention.set_tenant_policy(
        session, tenant_id=tenant.id, marketplace="amazon", days_after_delivery=10, actor="user:owner"
    )
    assert redated == 1 and order.retention_until == T0 + 10 * DAY
    assert store(session, keys, account, facts(8, delivered_at=T0)).retention_until == T0 + 10 * DAY
    with pytest.raises(RetentionError, match="never lengthen"):
        retention.set_tenant_policy(
            session, tenant_id=tenant.id, marketplace="amazon", days_after_delivery=31, actor="user:owner"
        )
    retention.set_tenant_policy(
        session, tenant_id=tenant.id, marketplace="amazon", days_after_delivery=None, actor="user:owner"
    )
    assert order.retention_until == T0 + 30 * DAY
    (first, _second) = events(session, tenant, "retention.policy")
    assert first.details == {"marketplace": "amazon", "days_after_delivery": 10, "orders_redated": 1}


# -- purge with a controlled clock --------------------------------------------------------------------


def test_orders_age_past_their_deadlines_and_nothing_is_left_to_unseal(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    orders = [store(session, keys, account, facts(10 + i, latest_delivery_at=T0 + i * DAY)) for i in range(5)]
    deadlines = [o.retention_until for o in orders]
    assert deadlines == [T0 + (30 + i) * DAY for i in range(5)]

    assert retention.purge_due(session, tenant_id=tenant.id, now=T0 + 29 * DAY).erased == 0
    result = retention.purge_due(session, tenant_id=tenant.id, now=T0 + 32 * DAY)  # the first three are due
    assert result.erased == 3
    for order in orders[:3]:
        assert order.erased_at is not None and order.label is None
        with pytest.raises(NotFound):
            unseal_label(session, keys=keys, order=order)
    assert (
        session.scalar(
            select(func.count())
            .select_from(LabelRecordRow)
            .where(LabelRecordRow.order_id.in_([o.id for o in orders[:3]]))
        )
        == 0
    )
    for order in orders[3:]:  # not yet due: still there and readable
        assert order.erased_at is None and unseal_label(session, keys=keys, order=order) == sample_label(1)
    # the stub stays, PII-free, with its erased-at time
    stub = session.get(Order, orders[0].id)
    assert stub is not None and stub.external_order_id == orders[0].external_order_id

    assert retention.purge_due(session, tenant_id=tenant.id, now=T0 + 40 * DAY).erased == 2
    assert (
        session.scalar(select(func.count()).select_from(LabelRecordRow).where(LabelRecordRow.tenant_id == tenant.id))
        == 0
    )


def test_purge_is_idempotent(session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount) -> None:
    for i in range(3):
        store(session, keys, account, facts(20 + i))
    now = T0 + 60 * DAY
    assert retention.purge_due(session, tenant_id=tenant.id, now=now).erased == 3
    again = retention.purge_due(session, tenant_id=tenant.id, now=now + DAY)
    assert (again.erased, again.batches) == (0, 0)
    assert len(events(session, tenant, retention.PURGE_ACTION)) == 1


def test_each_batch_writes_one_verifiable_shred_receipt(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    orders = [store(session, keys, account, facts(30 + i)) for i in range(5)]
    result = retention.purge_due(session, tenant_id=tenant.id, now=T0 + 60 * DAY, batch_size=2)
    assert (result.erased, result.batches) == (5, 3)
    receipts = events(session, tenant, retention.PURGE_ACTION)
    assert [e.details["count"] for e in receipts if e.details] == [2, 2, 1]
    for event in receipts:
        assert event.actor == "system:purge" and event.purpose == "retention" and event.outcome == "erased"
        assert retention.verify_receipt(session, event=event)
    # an auditor can recompute a receipt from the order references alone
    refs = [retention.order_ref(o.marketplace, o.external_order_id) for o in orders]
    all_digests = {e.details["digest"] for e in receipts if e.details}
    assert retention.receipt_digest(refs[:2]) in all_digests or retention.receipt_digest(refs[-2:]) in all_digests
    assert verify_chain(session, chain=chain_for(tenant.id)).ok
    # receipts hold counts and digests, never the buyer's data
    for event in receipts:
        assert "山田" not in str(event.details) and "千代田" not in str(event.details)


def test_a_tampered_receipt_does_not_verify(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    store(session, keys, account, facts(40))
    store(session, keys, account, facts(41))
    retention.purge_due(session, tenant_id=tenant.id, now=T0 + 60 * DAY)
    (event,) = events(session, tenant, retention.PURGE_ACTION)
    event.details = {**(event.details or {}), "count": 1}
    assert not retention.verify_receipt(session, event=event)


def test_orders_without_a_deadline_get_one_before_the_purge(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    order = store(session, keys, account, facts(50))
    session.execute(update(Order).where(Order.id == order.id).values(retention_until=None))
    session.expire(order)
    result = retention.purge_due(session, tenant_id=tenant.id, now=T0 + 60 * DAY)
    assert result.backfilled == 1 and result.erased == 1 and order.erased_at is not None


def test_dry_run_summary_counts_due_and_held(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    orders = [store(session, keys, account, facts(60 + i)) for i in range(3)]
    retention.place_hold(
        session, tenant_id=tenant.id, order=orders[0], reason="Case 2026-114", owner="Legal, Li Wei",
        ends_at=T0 + 90 * DAY, actor="user:owner", now=T0,
    )  # fmt: skip
    (summary,) = retention.due_summary(session, tenant_id=tenant.id, now=T0 + 60 * DAY)
    assert (summary.tenant_id, summary.due, summary.held) == (tenant.id, 2, 1)
    assert all(o.erased_at is None for o in orders)  # a dry run changes nothing


# -- legal holds --------------------------------------------------------------------------------------


def test_a_legal_hold_stops_erasure_until_its_end_date(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    held, free = store(session, keys, account, facts(70)), store(session, keys, account, facts(71))
    deadline = held.retention_until
    assert deadline is not None
    hold_end = deadline + 20 * DAY
    retention.place_hold(
        session, tenant_id=tenant.id, order=held, reason="Chargeback dispute 88-1", owner="Finance lead",
        ends_at=hold_end, actor="user:owner", now=T0,
    )  # fmt: skip
    assert retention.purge_due(session, tenant_id=tenant.id, now=deadline + DAY).erased == 1
    assert free.erased_at is not None
    assert held.erased_at is None and unseal_label(session, keys=keys, order=held) == sample_label(1)
    assert retention.purge_due(session, tenant_id=tenant.id, now=hold_end - timedelta(seconds=1)).erased == 0
    assert retention.purge_due(session, tenant_id=tenant.id, now=hold_end).erased == 1  # the hold has ended
    assert held.erased_at is not None and held.label is None


def test_a_tenant_wide_hold_covers_every_order_until_released(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    orders = [store(session, keys, account, facts(80 + i)) for i in range(3)]
    hold = retention.place_hold(
        session, tenant_id=tenant.id, reason="Tax audit 2026", owner="CFO", ends_at=T0 + 365 * DAY,
        actor="user:owner", now=T0,
    )  # fmt: skip
    assert retention.purge_due(session, tenant_id=tenant.id, now=T0 + 60 * DAY).erased == 0
    retention.release_hold(session, tenant_id=tenant.id, hold_id=hold.id, actor="user:owner", now=T0 + 61 * DAY)
    assert retention.purge_due(session, tenant_id=tenant.id, now=T0 + 62 * DAY).erased == 3
    assert all(o.erased_at is not None for o in orders)
    placed, released = events(session, tenant, "hold.place"), events(session, tenant, "hold.release")
    assert placed[0].details == {
        "hold_id": hold.id,
        "scope": "tenant",
        "reason": "Tax audit 2026",
        "owner": "CFO",
        "ends_at": (T0 + 365 * DAY).isoformat(),
    }
    assert placed[0].purpose == "legal-hold" and released[0].details == {"hold_id": hold.id}


def test_another_tenants_hold_does_not_apply(
    session: Session, keys: KeyManager, tenant: Tenant, account: MarketplaceAccount
) -> None:
    from vault.tenants import create_tenant

    other = create_tenant(session, keys=keys, slug="hold-other", name="Other", actor="test")
    retention.place_hold(
        session, tenant_id=other.id, reason="Other matter", owner="Them", ends_at=T0 + 365 * DAY, actor="x", now=T0
    )
    mine = store(session, keys, account, facts(90))
    other_order = store(session, keys, make_account(session, other, "o"), facts(91))
    # (scoped to this test's tenants: the shared test database holds other tests' committed data)
    for tenant_id in (tenant.id, other.id):
        retention.purge_due(session, tenant_id=tenant_id, now=T0 + 60 * DAY)
    assert mine.erased_at is not None and other_order.erased_at is None


@pytest.mark.parametrize(
    ("reason", "owner", "ends_at", "message"),
    [
        ("", "Legal", T0 + DAY, "reason"),
        ("Case 1", " ", T0 + DAY, "owner"),
        ("Case 1", "Legal", T0 - DAY, "end date"),
        ("Case 1", "Legal", datetime(2027, 1, 1), "end date"),  # naive on purpose
    ],
)
def test_a_legal_hold_needs_reason_owner_and_future_end(
    session: Session, tenant: Tenant, reason: str, owner: str, ends_at: datetime, message: str
) -> None:
    with pytest.raises(RetentionError, match=message):
        retention.place_hold(
            session, tenant_id=tenant.id, reason=reason, owner=owner, ends_at=ends_at, actor="x", now=T0
        )
    assert session.scalar(select(func.count()).select_from(LegalHold).where(LegalHold.tenant_id == tenant.id)) == 0


def test_controlled_clock_times_are_utc() -> None:
    assert T0.tzinfo is UTC
