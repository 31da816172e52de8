"""The eBay connector against the fake eBay, through the sync engine into the vault, on both databases."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.ebay import endpoints
from connectors.ebay.client import EbayClient, EbayCredentials, shared_http
from connectors.ebay.connector import EbayConnector, page_token, parse_page_token
from connectors.ebay.endpoints import daily_plan
from connectors.ebay.mapping import STATUSES, from_order
from connectors.fake_amazon import FakeClock
from connectors.fake_ebay import FakeEbay
from connectors.fake_ebay import marketplace as fake_ebay
from connectors.fake_ebay.marketplace import render_order
from connectors.interfaces import (
    AuthRefused,
    ConnectorError,
    ConsentExpired,
    MarketplaceUnavailable,
    OrderPage,
    SyncCursor,
    ThrottledOut,
)
from connectors.ratelimit import RateLimiter
from connectors.registry import get, is_order_ref
from connectors.sync import sync_account
from tests.support.amazon import stored_state
from tests.support.ebay import FAST_RETRY, SPEEDUP, add_ebay_account, expected_ebay_state, make_ebay_connector
from vault.keys import KeyManager
from vault.models import Order, Tenant
from vault.records import OrderStatus

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeEbay]:
    with FakeEbay(seed=3, clock=clock, speedup=SPEEDUP) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


def test_a_full_sync_stores_every_order_with_its_ship_to_and_status(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, no_pii_in_logs: None
) -> None:
    fake.generate_orders(430)
    account = add_ebay_account(session, keys, tenant, fake)
    connector = make_ebay_connector(session, keys, account, fake)
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    assert summary.orders_new == 430
    assert stored_state(session, keys, account) == expected_ebay_state(fake)
    # One token, then three pages of 200 (the most eBay allows).
    assert fake.calls == {"oauthToken": 1, "getOrders": 3}
    assert fake.throttled == {}


def test_accounts_share_the_process_connection_pool_and_closing_one_leaves_it_open(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    one = make_ebay_connector(session, keys, add_ebay_account(session, keys, tenant, fake, name="one"), fake)
    other = fake.add_seller("second_seller")
    fake.generate_orders(3, seller=other.username)
    two_account = add_ebay_account(session, keys, tenant, fake, name="two", seller=other.username)
    two = make_ebay_connector(session, keys, two_account, fake)
    pool = shared_http(FAST_RETRY)
    assert one.client._http is pool and two.client._http is pool
    one.close()
    assert not pool.is_closed  # the other account's connector still calls through it
    summary = sync_account(session, keys=keys, account=two_account, connector=two)
    assert (summary.orders_new, summary.calls) == (3, 2)  # a token, one page
    two.close()
    assert not pool.is_closed
    credentials = EbayCredentials("a", "b", "c", "d")
    # A client of its own (no shared pool) closes its own.
    own = EbayClient(credentials=credentials, api_url=fake.base_url, token_url=fake.token_url, limiter=RateLimiter({}))
    own.close()
    assert own._http.is_closed
    with pytest.raises(ValueError, match="not both"):
        EbayClient(
            credentials=credentials,
            api_url=fake.base_url,
            token_url=fake.token_url,
            limiter=RateLimiter({}),
            http=pool,
            transport=httpx.MockTransport(lambda request: httpx.Response(500)),
        )


def test_cancelled_orders_keep_no_address_and_repaired_text_is_flagged(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, clock: FakeClock
) -> None:
    ids = fake.generate_orders(10, statuses=["NOT_STARTED"])
    fake.update_order(ids[0], cancel="CANCELED")
    fake.edit_ship_to(ids[1], full_name="Jo\ud83dhn\u0000 Smith", address_line1="1 Main St\r\nApt 2")
    clock.advance(minutes=1)
    account = add_ebay_account(session, keys, tenant, fake)
    sync_account(session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake))
    rows = {o.external_order_id: o for o in session.scalars(select(Order).where(Order.account_id == account.id))}
    assert rows[ids[0]].status == "cancelled" and rows[ids[0]].label is None
    assert rows[ids[1]].text_repaired
    label = stored_state(session, keys, account)[ids[1]][1]
    assert (label["name"], label["address_line1"]) == ("Jo\ufffdhn Smith", "1 Main St Apt 2")


def test_an_incremental_sync_fetches_only_what_changed_and_stores_the_changes(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, clock: FakeClock
) -> None:
    ids = fake.generate_orders(300, statuses=["NOT_STARTED"])
    account = add_ebay_account(session, keys, tenant, fake)
    sync_account(session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake))
    clock.advance(minutes=20)
    fake.update_order(ids[0], cancel="CANCELED")
    fake.update_order(ids[1], fulfillment="FULFILLED")
    fake.update_order(ids[2], fulfillment="IN_PROGRESS")
    fake.edit_ship_to(ids[3], city="Portland")
    clock.advance(minutes=1)
    fake.calls.clear()
    summary = sync_account(
        session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake)
    )
    assert summary.orders_updated == 4
    assert fake.calls["getOrders"] == 1
    assert stored_state(session, keys, account) == expected_ebay_state(fake)


def test_orders_changed_while_paging_lose_no_other_order_and_are_caught_next_time(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, clock: FakeClock
) -> None:
    fake.generate_orders(900)
    account = add_ebay_account(session, keys, tenant, fake)
    fake.mutate_while_paging()
    connector = make_ebay_connector(session, keys, account, fake, page_size=100)
    sync_account(session, keys=keys, account=account, connector=connector)
    fake.mutate_while_paging(False)
    changed = {order_id for order_id, _, _ in fake.mutations}
    assert changed
    stored = stored_state(session, keys, account)
    expected = expected_ebay_state(fake)
    assert {k: v for k, v in stored.items() if k not in changed} == {
        k: v for k, v in expected.items() if k not in changed
    }
    clock.advance(minutes=5)
    sync_account(session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake))
    assert stored_state(session, keys, account) == expected_ebay_state(fake)


class CrashAfter:
    """Wraps a connector; raises after ``pages`` pages have been handed out (a crash between pages)."""

    marketplace = "ebay"

    def __init__(self, inner: EbayConnector, pages: int) -> None:
        self.inner, self.pages = inner, pages

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        for n, page in enumerate(self.inner.pull(cursor)):
            if n == self.pages:
                raise MarketplaceUnavailable("down")
            yield page

    def stats(self) -> Any:
        return self.inner.stats()

    def close(self) -> None:
        self.inner.close()


def test_a_crash_between_pages_resumes_on_the_stored_offset(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    fake.generate_orders(250)
    account = add_ebay_account(session, keys, tenant, fake)
    connector = make_ebay_connector(session, keys, account, fake, page_size=50)
    with pytest.raises(MarketplaceUnavailable):
        sync_account(session, keys=keys, account=account, connector=CrashAfter(connector, 2))
    assert len(stored_state(session, keys, account)) == 100
    fake.calls.clear()
    summary = sync_account(
        session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake, page_size=50)
    )
    assert (summary.orders_new, summary.orders_unchanged) == (150, 0)
    assert fake.calls["getOrders"] == 4  # offsets 100, 150, 200, then the fresh window
    assert stored_state(session, keys, account) == expected_ebay_state(fake)


def test_expired_access_tokens_are_renewed_and_an_expired_grant_is_consent_expired(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, clock: FakeClock
) -> None:
    fake.generate_orders(20)
    account = add_ebay_account(session, keys, tenant, fake)
    connector = make_ebay_connector(session, keys, account, fake)
    sync_account(session, keys=keys, account=account, connector=connector)
    fake.expire_tokens()
    clock.advance(minutes=5)
    sync_account(session, keys=keys, account=account, connector=connector)
    assert connector.stats().token_refreshes == 2
    clock.advance(hours=3)  # past the two-hour lifetime: renewed before the call, no 401 needed
    sync_account(session, keys=keys, account=account, connector=connector)
    assert connector.stats().token_refreshes == 3
    fake.expire_refresh_tokens()
    fake.expire_tokens()
    clock.advance(minutes=5)
    with pytest.raises(ConsentExpired) as raised:
        sync_account(session, keys=keys, account=account, connector=connector)
    assert isinstance(raised.value, AuthRefused)
    session.refresh(account)
    assert account.last_sync is not None and not account.last_sync["ok"]


def test_throttling_and_server_errors_are_retried_then_reported(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    fake.generate_orders(30)
    account = add_ebay_account(session, keys, tenant, fake)
    fake.inject(status=429, count=2, operation="getOrders")
    fake.inject(status=503, count=1, operation="getOrders")
    connector = make_ebay_connector(session, keys, account, fake)
    sync_account(session, keys=keys, account=account, connector=connector)
    assert (connector.stats().throttled, connector.stats().retries) == (2, 3)
    assert len(stored_state(session, keys, account)) == 30
    fake.inject(status=429, count=10, operation="getOrders")
    with pytest.raises(ThrottledOut):
        sync_account(session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake))


def test_pacing_on_the_daily_plan_never_spends_more_than_the_quota(
    session: Session, keys: KeyManager, tenant: Tenant, clock: FakeClock
) -> None:
    # A quota of 48 calls a "day" of 0.25 s: a sync of 60 pages must wait for the next days, never get a 429.
    with FakeEbay(seed=5, clock=clock, speedup=345600.0, daily_calls=48) as fake:
        fake.generate_orders(600)
        account = add_ebay_account(session, keys, tenant, fake)
        connector = make_ebay_connector(session, keys, account, fake, page_size=10)
        sync_account(session, keys=keys, account=account, connector=connector)
        assert fake.throttled == {}
        assert fake.calls["getOrders"] == 60
        assert stored_state(session, keys, account) == expected_ebay_state(fake)
        assert fake.validation_errors == []


def test_the_daily_plan_holds_an_hour_and_refills_the_rest_of_the_day() -> None:
    plan = daily_plan(100_000)
    assert plan.burst == 4166
    assert plan.burst + plan.rate * 86400 == pytest.approx(100_000)
    with pytest.raises(ValueError, match="24"):
        daily_plan(10)


def test_a_403_for_a_missing_scope_is_an_auth_refusal(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    account = add_ebay_account(session, keys, tenant, fake)
    fake.inject(status=403, operation="getOrders")
    with pytest.raises(AuthRefused, match="403"):
        sync_account(session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake))


def test_an_account_pointing_elsewhere_than_ebay_or_an_allowed_origin_gets_no_connector(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    account = add_ebay_account(session, keys, tenant, fake)
    with pytest.raises(ConnectorError, match="not allowed"):
        make_ebay_connector(session, keys, account, fake, endpoint_overrides=frozenset())


class Watched(dict[str, Any]):
    """A mapping that records every key read from it and from the mappings inside it."""

    def __init__(self, data: Mapping[str, Any], reads: set[str], path: str = "") -> None:
        super().__init__(data)
        self.reads, self.path = reads, path

    def get(self, key: str, default: Any = None) -> Any:
        self.reads.add(self.path + key)
        return _watch(super().get(key, default), self.reads, f"{self.path}{key}.")

    def __getitem__(self, key: str) -> Any:
        self.reads.add(self.path + key)
        return _watch(super().__getitem__(key), self.reads, f"{self.path}{key}.")


def _watch(value: Any, reads: set[str], path: str) -> Any:
    if isinstance(value, dict):
        return Watched(value, reads, path)
    if isinstance(value, list):
        return [_watch(v, reads, path) for v in value]
    return value


def test_mapping_never_reads_the_buyer_prices_payments_or_item_titles(fake: FakeEbay) -> None:
    fake.generate_orders(5)
    for order in fake.orders().values():
        reads: set[str] = set()
        facts, label = from_order(Watched(render_order(order), reads))
        assert facts.marketplace == "ebay" and (label is None or label.name)
        assert not any(r.startswith(("buyer", "pricingSummary", "paymentSummary")) for r in reads)
        assert not any(r.endswith((".title", ".lineItemCost", ".sku", ".email")) for r in reads)


def test_the_status_table_and_the_order_ids_are_ebay_s() -> None:
    assert STATUSES == {
        "NOT_STARTED": OrderStatus.UNSHIPPED,
        "IN_PROGRESS": OrderStatus.PARTIALLY_SHIPPED,
        "FULFILLED": OrderStatus.SHIPPED,
        "CANCELED": OrderStatus.CANCELLED,
    }
    platform = get("ebay")
    assert platform.name == "eBay"
    assert is_order_ref("ebay", "01-03955-36441")
    assert not is_order_ref("ebay", "503-1234567-1234567")
    assert [c.name for c in platform.credentials] == ["client_id", "client_secret", "ru_name", "refresh_token"]


def test_an_unknown_fulfillment_status_is_a_bad_response_naming_no_buyer() -> None:
    order = {"orderId": "01-03955-36441", "orderFulfillmentStatus": "LOST_IN_SPACE", "cancelStatus": {}}
    with pytest.raises(ConnectorError, match="LOST_IN_SPACE"):
        from_order(order)


def test_page_tokens_are_offset_and_total_and_anything_else_is_refused() -> None:
    assert parse_page_token(page_token(400, 913)) == (400, 913)
    for bad in ("", "400", "a:b", "-1:3"):
        with pytest.raises(ConnectorError):
            parse_page_token(bad)


def test_a_shrinking_window_steps_the_offset_back_by_the_orders_it_lost(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, clock: FakeClock
) -> None:
    fake.generate_orders(120)
    account = add_ebay_account(session, keys, tenant, fake)
    # No prefetch: the orders must change between the two pages' requests.
    connector = make_ebay_connector(session, keys, account, fake, page_size=50, prefetch=False)
    limiter: RateLimiter = connector.client.limiter
    assert limiter.speedup == SPEEDUP
    pages = connector.pull(SyncCursor())
    first = next(pages)
    assert first.cursor.page_token == "50:120"
    served = {facts.external_order_id for facts, _ in first.orders}
    for order_id in list(served)[:3]:
        fake.update_order(order_id, fulfillment="FULFILLED")
    clock.advance(seconds=1)
    second = next(pages)
    assert second.cursor.page_token == "47:117"
    assert second.cursor.window_end == first.cursor.window_end


def test_the_connector_paces_on_the_quotas_the_fake_enforces() -> None:
    limits = {"fulfillment": endpoints.FULFILLMENT_DAILY_CALLS, "refresh_token": endpoints.REFRESH_DAILY_CALLS}
    limits["authorization_code"] = endpoints.CODE_DAILY_CALLS
    enforced = {"fulfillment": fake_ebay.FULFILLMENT_DAILY_CALLS, **fake_ebay.TOKEN_DAILY_CALLS}
    assert {k: enforced[k] for k in limits} == limits
