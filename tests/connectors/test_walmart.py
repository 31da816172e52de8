"""The Walmart connector syncs a seller's purchase orders from the fake Walmart into the vault, minimised."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from connectors import registry
from connectors.fake_amazon import FakeClock
from connectors.fake_walmart import TRICKY, FakeWalmart
from connectors.interfaces import AuthRefused, BadResponse, ConnectorError, SyncCursor, ThrottledOut
from connectors.sync import sync_account
from connectors.walmart import WalmartCredentials
from connectors.walmart.accounts import connect_walmart_account
from connectors.walmart.connector import WalmartConnector
from connectors.walmart.mapping import from_order, order_status
from tests.support.walmart import SPEEDUP, add_walmart_account, expected_state, make_connector, stored_state
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import parse_endpoint_overrides
from vault.models import Order, Tenant
from vault.records import OrderStatus


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWalmart]:
    with FakeWalmart(speedup=SPEEDUP, seed=5, clock=clock) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


def _sync(session: Session, keys: KeyManager, connector: WalmartConnector, account: Any) -> Any:
    return sync_account(session, keys=keys, account=account, connector=connector)


# --- statuses -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "status"),
    [
        ([("Created", 1)], OrderStatus.UNSHIPPED),
        ([("Acknowledged", 2)], OrderStatus.UNSHIPPED),
        ([("Shipped", 1), ("Delivered", 1)], OrderStatus.SHIPPED),
        ([("Shipped", 1), ("Created", 1)], OrderStatus.PARTIALLY_SHIPPED),
        ([("Delivered", 1), ("Acknowledged", 1), ("Cancelled", 3)], OrderStatus.PARTIALLY_SHIPPED),
        ([("Cancelled", 1), ("Created", 1)], OrderStatus.UNSHIPPED),
        ([("Cancelled", 1), ("Shipped", 1)], OrderStatus.SHIPPED),
        ([("Cancelled", 2), ("Refund", 1)], OrderStatus.CANCELLED),
    ],
)
def test_an_orders_status_combines_its_lines_statuses_cancelled_units_aside(
    entries: list[tuple[str, float]], status: OrderStatus
) -> None:
    assert order_status(entries) is status


def test_an_unknown_line_status_is_a_bad_response_naming_it() -> None:
    with pytest.raises(BadResponse, match="Lost"):
        order_status([("Lost", 1)])


def test_mapping_reads_the_ship_to_and_never_the_customer_email(fake: FakeWalmart) -> None:
    from connectors.fake_walmart import render_order

    order_id = fake.generate_orders(1, statuses=["Created"])[0]
    served = render_order(fake.orders()[order_id])
    facts, label = from_order(served)
    assert label is not None
    assert (facts.status, facts.marketplace_id, label.country_code) == (OrderStatus.UNSHIPPED, "WALMART_US", "US")
    assert served["customerEmailId"] not in repr(label.as_dict()) + repr(facts)
    # Nothing else of the order is looked at: an order without its e-mail maps the same.
    assert from_order({k: v for k, v in served.items() if k != "customerEmailId"}) == (facts, label)


def test_a_fully_cancelled_order_is_stored_without_its_address(fake: FakeWalmart) -> None:
    from connectors.fake_walmart import render_order

    order_id = fake.generate_orders(1, statuses=["Cancelled"])[0]
    facts, label = from_order(render_order(fake.orders()[order_id]))
    assert (facts.status, label) == (OrderStatus.CANCELLED, None)


def test_the_registry_knows_walmart_with_its_statuses_and_order_ids() -> None:
    platform = registry.get("walmart")
    assert platform.name == "Walmart"
    assert platform.statuses["Delivered"] is OrderStatus.SHIPPED
    assert registry.is_order_ref("walmart", "1796277083022")
    assert not registry.is_order_ref("walmart", "503-1234567-1234567")


# --- syncing ------------------------------------------------------------------------------------------------


def test_a_full_then_an_incremental_sync_store_every_order_as_walmart_has_it(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(450)
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=200)
    summary = _sync(session, keys, connector, account)
    assert (summary.orders_new, summary.pages) == (450, 3)
    assert fake.calls["getAllOrders"] == 3 and fake.calls["tokenAPI"] == 1
    assert stored_state(session, keys, account) == expected_state(fake)

    changed = list(fake.orders())[:5]
    for order_id in changed[:3]:
        fake.update_order(order_id, status="Shipped")
    fake.update_order(changed[3], status="Cancelled")
    fake.update_order(changed[4], status="Delivered", lines=["1"])
    clock.advance(minutes=1)
    summary = _sync(session, keys, connector, account)
    assert summary.orders_new == 0 and summary.orders_updated >= 5
    assert stored_state(session, keys, account) == expected_state(fake)


def test_orders_changed_while_a_window_is_paged_are_neither_lost_nor_left_stale(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(120, statuses=["Created", "Acknowledged"])
    clock.advance(minutes=1)
    fake.mutate_while_paging()
    account = add_walmart_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=25)
    _sync(session, keys, connector, account)
    assert len(fake.mutations) == 2
    fake.mutate_while_paging(False)
    clock.advance(minutes=1)
    _sync(session, keys, connector, account)
    assert stored_state(session, keys, account) == expected_state(fake)


def test_a_sync_killed_mid_window_resumes_on_the_next_page(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(100)
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=20)
    pages = connector.pull(SyncCursor())
    second = [next(pages), next(pages)][1]
    pages.close()
    assert second.cursor.mid_window and second.cursor.page_token is not None
    before = fake.calls["getAllOrders"]
    rest = list(make_connector(session, keys, account, fake, page_size=20).pull(second.cursor))
    assert fake.calls["getAllOrders"] - before == 3 + 1  # pages 3 to 5, then the (empty) fresh window
    assert sum(len(p.orders) for p in rest[:3]) == 60  # the fresh window's overlap repeats a few more


def test_an_expired_token_is_renewed_and_a_token_is_reused_for_its_900_seconds(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(10)
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake)
    _sync(session, keys, connector, account)
    clock.advance(seconds=600)
    _sync(session, keys, connector, account)
    assert fake.calls["tokenAPI"] == 1
    clock.advance(seconds=250)  # within a minute of the end: renewed before Walmart would refuse it
    _sync(session, keys, connector, account)
    assert fake.calls["tokenAPI"] == 2
    fake.expire_tokens()
    fake.update_order(next(iter(fake.orders())), status="Shipped")
    clock.advance(minutes=1)
    _sync(session, keys, connector, account)
    assert fake.calls["tokenAPI"] == 3
    assert stored_state(session, keys, account) == expected_state(fake)


def test_429_5xx_and_dropped_connections_are_retried_and_the_limits_kept(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(60)
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=20)
    fake.inject(status=429, count=2, operation="getAllOrders")
    fake.inject(status=503, operation="getAllOrders")
    fake.inject_drop(operation="getAllOrders")
    summary = _sync(session, keys, connector, account)
    assert summary.throttled == 2 and summary.retries == 4
    assert stored_state(session, keys, account) == expected_state(fake)


def test_a_real_429_from_an_empty_bucket_waits_and_succeeds(
    session: Session, keys: KeyManager, tenant: Tenant, clock: FakeClock
) -> None:
    # 10 calls a minute, refilled ten times faster: a 10-call bucket, a call every 0.6 s after it.
    with FakeWalmart(speedup=10, seed=2, clock=clock, rate_limits={"getAllOrders": 10}) as fake:
        fake.generate_orders(15)
        clock.advance(minutes=1)
        account = add_walmart_account(session, keys, tenant, fake)
        # The connector believes the documented 5000 a minute; the fake allows 10: Walmart says 429.
        connector = make_connector(session, keys, account, fake, page_size=1)
        _sync(session, keys, connector, account)
        assert fake.throttled["getAllOrders"] >= 1
        assert stored_state(session, keys, account) == expected_state(fake)


def test_throttling_that_never_ends_is_throttled_out_with_nothing_half_stored(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(5)
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    fake.inject(status=429, count=50, operation="getAllOrders")
    with pytest.raises(ThrottledOut):
        _sync(session, keys, make_connector(session, keys, account, fake), account)
    assert session.scalars(select(Order).where(Order.account_id == account.id)).all() == []


def test_tricky_recipients_are_repaired_and_never_block_the_sync(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    fake.generate_orders(7 * len(TRICKY), statuses=["Created"])
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    summary = _sync(session, keys, make_connector(session, keys, account, fake), account)
    assert summary.orders_new == 7 * len(TRICKY)
    stored = stored_state(session, keys, account)
    assert stored == expected_state(fake)
    names = {label["name"] for _, label in stored.values()}
    assert "Broken \ufffd Emoji" in names and "Ann Marie O'Neil" in names


def test_no_buyer_data_or_relay_email_reaches_the_logs_or_the_clear_columns(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    fake: FakeWalmart,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.generate_orders(40)
    clock.advance(minutes=1)
    account = add_walmart_account(session, keys, tenant, fake)
    fake.inject(status=503, operation="getAllOrders")
    with caplog.at_level(logging.DEBUG):
        _sync(session, keys, make_connector(session, keys, account, fake, page_size=10), account)
    pii = fake.buyer_pii_strings()
    assert not [p for p in pii if p in caplog.text]
    rows = session.execute(text("SELECT * FROM orders")).all()
    dumped = repr(rows)
    assert not [p for p in pii if p in dumped]
    assert "relay.walmart.com" not in dumped


def test_a_refused_api_key_is_auth_refused_without_the_secret(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart, clock: FakeClock
) -> None:
    account = add_walmart_account(session, keys, tenant, fake)
    fake.inject(status=401, operation="tokenAPI")
    with pytest.raises(AuthRefused) as refused:
        _sync(session, keys, make_connector(session, keys, account, fake), account)
    assert fake.DEFAULT_SELLER.client_secret not in str(refused.value)


def test_an_account_pointing_elsewhere_than_walmart_is_refused_before_anything_is_sent(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart
) -> None:
    account = add_walmart_account(session, keys, tenant, fake)
    with pytest.raises(ConnectorError, match="not allowed"):
        make_connector(session, keys, account, fake, endpoint_overrides=frozenset())
    assert fake.calls["tokenAPI"] == 0


# --- connecting ---------------------------------------------------------------------------------------------


def test_connecting_checks_the_key_once_and_stores_a_us_account(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart
) -> None:
    seller = fake.DEFAULT_SELLER
    account = connect_walmart_account(
        session,
        keys=keys,
        tenant_id=tenant.id,
        name="Walmart US",
        credentials=WalmartCredentials(seller.client_id, seller.client_secret),
        api_endpoint=fake.base_url,
        endpoint_overrides=parse_endpoint_overrides(fake.base_url),
        actor="owner@example.com",
    )
    session.commit()
    assert (account.marketplace, account.region, account.marketplace_ids) == ("walmart", "us", ["WALMART_US"])
    assert account.token_endpoint is None and fake.calls["tokenAPI"] == 1


def test_connecting_with_a_wrong_key_stores_nothing_and_says_why_in_one_line(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart
) -> None:
    with pytest.raises(AccountSetupError, match="does not work") as refused:
        connect_walmart_account(
            session,
            keys=keys,
            tenant_id=tenant.id,
            name="Walmart US",
            credentials=WalmartCredentials(fake.DEFAULT_SELLER.client_id, "wrong-secret"),
            api_endpoint=fake.base_url,
            endpoint_overrides=parse_endpoint_overrides(fake.base_url),
            actor="owner@example.com",
        )
    assert "\n" not in str(refused.value) and "wrong-secret" not in str(refused.value)


def test_connecting_to_a_host_the_operator_did_not_allow_is_refused(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeWalmart
) -> None:
    with pytest.raises(AccountSetupError, match="not allowed"):
        connect_walmart_account(
            session,
            keys=keys,
            tenant_id=tenant.id,
            name="Walmart US",
            credentials=WalmartCredentials("id", "secret"),
            api_endpoint=fake.base_url,
            actor="owner@example.com",
        )
    assert fake.calls["tokenAPI"] == 0


def test_the_first_sync_looks_back_at_most_walmarts_180_days() -> None:
    with pytest.raises(ConnectorError, match="180 days"):
        WalmartConnector(client=None, initial_lookback=timedelta(days=181))  # type: ignore[arg-type]
