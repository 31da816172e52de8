"""Data as marketplaces really serve it: unsealable text, delivery reported in packages, cancellations,
page tokens that expire mid-run, and token expiry reported in an error's ``details``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.sync import sync_account
from tests.support.amazon import SPEEDUP, add_amazon_account, expected_state, make_connector, stored_state
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import AuditEvent, Order, Tenant
from vault.records import repair_text
from vault.retention import AMAZON_DAYS_AFTER_DELIVERY, SYNC_ACTOR, place_hold, verify_receipt


@pytest.mark.parametrize(
    ("served", "stored"),
    [
        ("Ana \ud83d", "Ana \ufffd"),  # half an emoji: the seller sees where a character was lost
        ("Main\x00 St\x7f", "Main St"),
        ("Flat 2\r\nBlock\tB", "Flat 2 Block B"),
        ("Zoë 漢字 a\u00a0b", "Zoë 漢字 a\u00a0b"),  # printable text is left as served
    ],
)
def test_repair_text(served: str, stored: str) -> None:
    assert repair_text(served) == stored
    repair_text(served).encode()  # sealable


@pytest.mark.parametrize("api_version", ["2026-01-01", "v0"])
def test_one_unsealable_name_does_not_block_the_account(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock, api_version: str
) -> None:
    ids = fake.generate_orders(30, statuses=["UNSHIPPED"])
    fake.edit_ship_to(ids[7], name="Ana \ud83d", address_line1="Main\x00 St")
    clock.advance(minutes=3)  # past the two-minute rule: the edit is in the window
    account = add_amazon_account(session, keys, tenant, fake, api_version=api_version)
    connector = make_connector(session, keys, account, fake, page_size=10)
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    assert summary.orders_new == 30
    session.refresh(account)
    assert account.sync_cursor is not None and account.last_sync and account.last_sync["ok"]
    mine = select(Order).where(Order.account_id == account.id, Order.external_order_id == ids[7])
    order = session.scalars(mine).one()
    label = unseal_label(session, keys=keys, order=order)
    assert (label.name, label.address_line1) == ("Ana \ufffd", "Main St")
    # The seller is told: the order is marked, and an alarm (counts only) is in the audit chain, once.
    repaired = session.scalars(
        select(Order.external_order_id).where(Order.account_id == account.id, Order.text_repaired.is_(True))
    ).all()
    assert repaired == [ids[7]]
    alarms = select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == "alarm.text_repaired")
    (alarm,) = session.scalars(alarms).all()
    assert alarm.details == {"subject": f"account:{account.id}", "count": 1, "threshold": 1, "window_seconds": 0}
    clock.advance(minutes=3)
    sync_account(session, keys=keys, account=account, connector=connector)  # the overlap serves it again
    assert len(session.scalars(alarms).all()) == 1


@pytest.fixture
def short_paging(clock: FakeClock) -> Iterator[FakeAmazon]:
    """A fake whose page tokens live five minutes, and which says a token expired in the error's details."""
    with FakeAmazon(
        speedup=SPEEDUP, seed=0, clock=clock, pagination_token_lifetime=timedelta(minutes=5), expiry_in_details=True
    ) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


def test_the_fake_expires_page_tokens_on_its_clock_and_reports_expiry_in_details(
    short_paging: FakeAmazon, clock: FakeClock
) -> None:
    fake = short_paging
    fake.generate_orders(5)
    s = fake.seller()
    form = {"grant_type": "refresh_token", "refresh_token": s.refresh_token}
    with httpx.Client(base_url=fake.base_url) as client:
        token = client.post(fake.lwa_url, data={**form, "client_id": s.client_id, "client_secret": s.client_secret})
        headers = {"x-amz-access-token": token.json()["access_token"]}
        search = "/orders/2026-01-01/orders"
        first = client.get(
            search, params={"createdAfter": "2020-01-01T00:00:00Z", "maxResultsPerPage": 2}, headers=headers
        )
        next_token = first.json()["pagination"]["nextToken"]
        clock.advance(minutes=4)
        assert client.get(search, params={"paginationToken": next_token}, headers=headers).status_code == 200
        clock.advance(minutes=1, seconds=1)
        expired = client.get(search, params={"paginationToken": next_token}, headers=headers)
        assert expired.status_code == 400
        fake.expire_tokens()
        refused = client.get(search, params={"createdAfter": "2020-01-01T00:00:00Z"}, headers=headers)
    assert refused.status_code == 403
    assert refused.json() == {
        "errors": [
            {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": "The access token you provided has expired.",
            }
        ]
    }


@pytest.mark.parametrize("api_version", ["2026-01-01", "v0"])
@pytest.mark.parametrize("prefetch", [False, True])
def test_a_page_token_that_expires_mid_run_restarts_the_window_in_the_same_run(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    short_paging: FakeAmazon,
    clock: FakeClock,
    api_version: str,
    prefetch: bool,
) -> None:
    fake = short_paging
    fake.generate_orders(100)
    account = add_amazon_account(session, keys, tenant, fake, api_version=api_version)
    connector = make_connector(session, keys, account, fake, page_size=20, prefetch=prefetch)

    def slow_store(progress: Any) -> None:
        if progress.pages == 2:
            clock.advance(minutes=6)  # the page token in hand (and any prefetched one) dies

    summary = sync_account(session, keys=keys, account=account, connector=connector, progress=slow_store)
    assert summary.orders_new == 100 and summary.orders_unchanged >= 40  # the window, from its first page again
    assert stored_state(session, keys, account) == expected_state(fake)
    session.refresh(account)
    assert account.last_sync and account.last_sync["ok"] and account.sync_cursor is not None


@pytest.mark.parametrize("api_version", ["2026-01-01", "v0"])
def test_a_403_saying_expired_in_its_details_renews_the_tokens(
    session: Session, keys: KeyManager, tenant: Tenant, short_paging: FakeAmazon, api_version: str
) -> None:
    fake = short_paging
    fake.generate_orders(60)
    account = add_amazon_account(session, keys, tenant, fake, api_version=api_version)
    connector = make_connector(session, keys, account, fake, page_size=20)

    def expire(progress: Any) -> None:
        if progress.pages == 1:
            fake.expire_tokens()

    summary = sync_account(session, keys=keys, account=account, connector=connector, progress=expire)
    assert summary.orders_new == 60
    assert fake.calls["lwaToken"] == 2  # renewed once
    assert stored_state(session, keys, account) == expected_state(fake)


def _order(session: Session, order_id: str) -> Order:
    session.expire_all()
    return session.scalars(select(Order).where(Order.external_order_id == order_id)).one()


def test_retention_counts_from_the_delivery_amazon_reports(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock
) -> None:
    ids = fake.generate_orders(20, statuses=["UNSHIPPED"])
    merchant = [oid for oid, o in fake.orders().items() if o.fulfilled_by == "MERCHANT"]
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake)
    sync_account(session, keys=keys, account=account, connector=connector)
    assert _order(session, merchant[0]).delivered_at is None

    clock.advance(days=2)
    fake.update_order(merchant[0], delivered=True)
    delivered = fake.orders()[merchant[0]].delivered_at
    assert delivered is not None
    clock.advance(minutes=3)
    sync_account(session, keys=keys, account=account, connector=connector)
    order = _order(session, merchant[0])
    assert order.delivered_at == delivered.replace(microsecond=0)
    assert order.retention_until == order.delivered_at + timedelta(days=AMAZON_DAYS_AFTER_DELIVERY)
    assert order.latest_delivery_at is not None and order.retention_until != order.latest_delivery_at + timedelta(
        days=AMAZON_DAYS_AFTER_DELIVERY
    )
    # A later change of the order doesn't postpone the erasure: the first reported delivery stands.
    clock.advance(days=3)
    fake.update_order(merchant[0])
    clock.advance(minutes=3)
    sync_account(session, keys=keys, account=account, connector=connector)
    assert _order(session, merchant[0]).delivered_at == delivered.replace(microsecond=0)
    # Orders not reported delivered keep the promised date.
    other = _order(session, next(oid for oid in ids if oid != merchant[0]))
    assert other.delivered_at is None and other.latest_delivery_at is not None
    assert other.retention_until == other.latest_delivery_at + timedelta(days=AMAZON_DAYS_AFTER_DELIVERY)


@pytest.mark.parametrize("api_version", ["2026-01-01", "v0"])
def test_an_order_seen_cancelled_is_erased_by_that_sync_and_audited_like_a_purge(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock, api_version: str
) -> None:
    ids = fake.generate_orders(10, statuses=["UNSHIPPED"])
    account = add_amazon_account(session, keys, tenant, fake, api_version=api_version)
    connector = make_connector(session, keys, account, fake)
    sync_account(session, keys=keys, account=account, connector=connector)
    assert all(_order(session, oid).label is not None for oid in ids)
    held = _order(session, ids[2])
    place_hold(
        session, tenant_id=tenant.id, reason="case 2026-17", owner="legal", ends_at=clock() + timedelta(days=9),
        actor="user:1", order=held,
    )  # fmt: skip
    session.commit()

    for oid in ids[:3]:
        fake.update_order(oid, status="CANCELLED")
    clock.advance(minutes=3)
    sync_account(session, keys=keys, account=account, connector=connector)
    for oid in ids[:2]:
        order = _order(session, oid)
        assert order.status == "cancelled" and order.erased_at is not None and order.label is None
    kept = _order(session, ids[2])  # a legal hold keeps it, as it would from the purge
    assert kept.status == "cancelled" and kept.erased_at is None and kept.label is not None
    assert all(_order(session, oid).label is not None for oid in ids[3:])
    (event,) = session.scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.actor == SYNC_ACTOR)
    ).all()
    assert event.action == "retention.purge" and event.details and event.details["count"] == 2
    assert verify_receipt(session, event=event)
