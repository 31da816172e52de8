"""The Shopify connector against the fake Shopify: mapping, paging, pacing, redaction, refusals, logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeClock
from connectors.fake_shopify import LEVEL_1, NO_ACCESS, FakeShopify, ProtectedAccess, legacy_id
from connectors.interfaces import AuthRefused, Connector, ConnectorError, MarketplaceUnavailable, SyncCursor
from connectors.registry import PLATFORMS
from connectors.shopify.client import ShopifyClient, shared_http
from connectors.shopify.connector import NOTICE_PHONE_WITHHELD, NOTICE_REDACTED
from connectors.shopify.mapping import STATUSES, status_of
from connectors.shopify.pacing import CostPacer
from connectors.shopify.query import MAX_PAGE_SIZE, requested_cost
from connectors.shopify.tokens import ShopifyToken
from connectors.sync import sync_account
from tests.support.shopify import (
    FAST_RETRY,
    SPEEDUP,
    add_shopify_account,
    expected_record,
    expected_state,
    make_connector,
    stored_state,
)
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, Tenant
from vault.records import WITHHELD_REDACTED, OrderStatus


@pytest.fixture
def clock() -> FakeClock:
    """The platform's clock, shared by the fake and the connector (tests move it by hand)."""
    return FakeClock()


@pytest.fixture
def shopify(clock: FakeClock) -> Iterator[FakeShopify]:
    """A running fake Shopify with no orders yet; every answer it served must match the query's shape."""
    with FakeShopify(speedup=SPEEDUP, seed=0, clock=clock) as fake:
        yield fake
        assert fake.validation_errors == []
        assert fake.server_errors == []
        assert not fake.unserved_fields


def _sync(session: Session, keys: KeyManager, account: MarketplaceAccount, fake: FakeShopify, **options: object):  # type: ignore[no-untyped-def]
    connector = make_connector(session, keys, account, fake, **options)
    try:
        return sync_account(session, keys=keys, account=account, connector=connector)
    finally:
        connector.close()


def test_shopify_is_registered() -> None:
    platform = PLATFORMS["shopify"]
    assert platform.name == "Shopify"
    assert [c.name for c in platform.credentials] == ["access_token"]
    assert platform.order_id.fullmatch("5123456789012") and not platform.order_id.fullmatch("gid://shopify/Order/1")


def test_the_page_size_is_the_largest_shopify_accepts_in_one_query() -> None:
    assert requested_cost(MAX_PAGE_SIZE) <= 1000 < requested_cost(MAX_PAGE_SIZE + 1)


def test_connector_conforms_to_the_protocol(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify
) -> None:
    connector = make_connector(session, keys, add_shopify_account(session, keys, tenant, shopify), shopify)
    assert isinstance(connector, Connector)
    connector.close()


def test_accounts_share_the_process_connection_pool_and_closing_one_leaves_it_open(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    one = make_connector(session, keys, add_shopify_account(session, keys, tenant, shopify, name="one"), shopify)
    other = shopify.add_shop("second-shop.myshopify.com")
    shopify.generate_orders(3, shop=other.domain)
    clock.advance(minutes=1)
    two_account = add_shopify_account(
        session, keys, tenant, shopify, name="two", shop=other.domain, token=shopify.custom_app_token(other.domain)
    )
    two = make_connector(session, keys, two_account, shopify)
    pool = shared_http(FAST_RETRY)
    assert one.client._http is pool and two.client._http is pool
    one.close()
    assert not pool.is_closed  # the other account's connector still calls through it
    summary = sync_account(session, keys=keys, account=two_account, connector=two)
    assert (summary.orders_new, summary.calls) == (3, 1)
    two.close()
    assert not pool.is_closed
    # A client of its own (no shared pool) closes its own.
    own = ShopifyClient(token=ShopifyToken("shpat_x"), base_url=shopify.base_url, bucket=CostPacer().bucket("own"))
    own.close()
    assert own._http.is_closed
    with pytest.raises(ValueError, match="not both"):
        ShopifyClient(
            token=ShopifyToken("shpat_x"),
            base_url=shopify.base_url,
            bucket=CostPacer().bucket("own"),
            http=pool,
            transport=httpx.MockTransport(lambda request: httpx.Response(500)),
        )


def test_sync_stores_exactly_the_shops_orders_sealed(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(130)
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    summary = _sync(session, keys, account, shopify, page_size=50)
    assert (summary.orders_new, summary.pages, summary.calls, summary.throttled) == (130, 3, 3, 0)
    assert stored_state(session, keys, account) == expected_state(shopify)
    for order in session.scalars(select(Order).where(Order.account_id == account.id)):
        truth = shopify.orders()[f"gid://shopify/Order/{order.external_order_id}"]
        assert (order.purchased_at, order.last_updated_at) == (truth.created, truth.updated)


def test_incremental_sync_takes_fulfilments_cancellations_holds_and_closings(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    gids = shopify.generate_orders(40, statuses=["UNFULFILLED"])
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    _sync(session, keys, account, shopify)
    clock.advance(minutes=10)
    shopify.update_order(gids[0], fulfill=True)
    shopify.update_order(gids[1], partially_fulfill=True)
    shopify.update_order(gids[2], cancel=True)
    shopify.update_order(gids[3], hold=True)
    shopify.update_order(gids[4], close=True)
    shopify.edit_shipping_address(gids[5], address1="1 New Street")
    clock.advance(minutes=1)
    summary = _sync(session, keys, account, shopify)
    assert summary.orders_updated == 6
    state = stored_state(session, keys, account)
    assert state == expected_state(shopify)
    ids = [str(legacy_id(g)) for g in gids[:6]]
    assert [state[i][0] for i in ids] == [
        "shipped",
        "partially_shipped",
        "cancelled",
        "pending",
        "pending",
        "unshipped",
    ]
    assert state[ids[2]][1]["name"] is None  # the cancelled order's label data is gone
    assert state[ids[5]][1]["address_line1"] == "1 New Street"


def test_a_crash_mid_window_resumes_on_the_next_page(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(90)
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    first = make_connector(session, keys, account, shopify, page_size=30)
    pages = list(islice(first.pull(SyncCursor()), 2))
    first.close()
    resumed = pages[-1].cursor
    assert resumed.mid_window and resumed.page_token
    second = make_connector(session, keys, account, shopify, page_size=30)
    rest = list(second.pull(resumed))
    second.close()
    seen = [f.external_order_id for p in pages + rest for f, _ in p.orders]
    assert sorted(set(seen)) == sorted(str(legacy_id(g)) for g in shopify.orders())
    assert len(seen) == 90  # the resumed run started on page three: nothing twice
    assert rest[-1].last and not rest[-1].cursor.mid_window


def test_a_cursor_shopify_no_longer_takes_restarts_the_window(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(20)
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    connector = make_connector(session, keys, account, shopify)
    window_end = connector.window_end()
    pages = list(connector.pull(SyncCursor(window_end=window_end, page_token="not-a-cursor")))
    connector.close()
    assert len({f.external_order_id for p in pages for f, _ in p.orders}) == 20


def test_orders_changed_while_a_sync_pages_are_neither_lost_nor_doubled(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(120, statuses=["UNFULFILLED"])
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    shopify.mutate_while_paging(True)
    _sync(session, keys, account, shopify, page_size=25)
    shopify.mutate_while_paging(False)
    assert shopify.mutations  # the fake fulfilled and cancelled orders while the sync paged
    clock.advance(minutes=1)
    _sync(session, keys, account, shopify)
    assert stored_state(session, keys, account) == expected_state(shopify)
    assert session.query(Order).filter(Order.account_id == account.id).count() == 120


def test_redacted_addresses_are_stored_as_withheld_and_reported(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(15, statuses=["UNFULFILLED"])
    clock.advance(minutes=1)
    token = shopify.custom_app_token(access=LEVEL_1)
    account = add_shopify_account(session, keys, tenant, shopify, token=token)
    summary = _sync(session, keys, account, shopify)
    assert summary.notices == (NOTICE_REDACTED,)
    orders = list(session.scalars(select(Order).where(Order.account_id == account.id)))
    assert len(orders) == 15
    assert all(o.label is None and o.label_withheld == WITHHELD_REDACTED for o in orders)
    session.refresh(account)
    assert account.last_sync is not None and account.last_sync["notices"] == [NOTICE_REDACTED]


def test_a_withheld_phone_leaves_the_label_without_one(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(15, statuses=["UNFULFILLED"])
    clock.advance(minutes=1)
    access = ProtectedAccess(2, frozenset({"name", "address"}))
    token = shopify.custom_app_token(access=access)
    account = add_shopify_account(session, keys, tenant, shopify, token=token)
    summary = _sync(session, keys, account, shopify)
    assert summary.notices == (NOTICE_PHONE_WITHHELD,)
    state = stored_state(session, keys, account)
    assert state == expected_state(shopify, access=access)
    assert all(label["phone"] is None and label["name"] for _, label in state.values())


def test_an_app_not_approved_for_orders_is_refused(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(3)
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify, token=shopify.custom_app_token(access=NO_ACCESS))
    with pytest.raises(AuthRefused, match="ACCESS_DENIED"):
        _sync(session, keys, account, shopify)


def test_a_revoked_token_is_refused_without_retrying(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(3)
    clock.advance(minutes=1)
    token = shopify.custom_app_token()
    account = add_shopify_account(session, keys, tenant, shopify, token=token)
    shopify.revoke_token(token)
    connector = make_connector(session, keys, account, shopify)
    with pytest.raises(AuthRefused, match="HTTP 401"):
        list(connector.pull(SyncCursor()))
    assert connector.stats().calls == 1
    connector.close()


def test_throttled_answers_are_retried_after_the_bucket_refills(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(60)
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    shopify.inject_throttle(2)
    summary = _sync(session, keys, account, shopify, page_size=30)
    assert summary.throttled == 2 and summary.orders_new == 60
    assert stored_state(session, keys, account) == expected_state(shopify)


def test_pacing_waits_for_the_bucket_instead_of_being_throttled(
    session: Session, keys: KeyManager, tenant: Tenant, clock: FakeClock
) -> None:
    # At 20x Shopify's pace a 992-point query needs half a second of restore once the bucket is spent:
    # the connector waits for it from the bucket each answer reports, so Shopify never says THROTTLED.
    with FakeShopify(speedup=20, seed=0, clock=clock) as fake:
        fake.generate_orders(MAX_PAGE_SIZE * 5, statuses=["UNFULFILLED"])
        clock.advance(minutes=1)
        account = add_shopify_account(session, keys, tenant, fake)
        summary = _sync(session, keys, account, fake)
        assert summary.orders_new == MAX_PAGE_SIZE * 5
        assert summary.throttled == 0 and fake.throttled["graphql"] == 0
        assert fake.validation_errors == []


def test_a_drained_bucket_costs_at_most_one_throttled_answer(
    session: Session, keys: KeyManager, tenant: Tenant, clock: FakeClock
) -> None:
    with FakeShopify(speedup=50, seed=0, clock=clock) as fake:
        fake.generate_orders(100)
        clock.advance(minutes=1)
        account = add_shopify_account(session, keys, tenant, fake)
        fake.drain_bucket(fake.DEFAULT_TOKEN)  # another process of the same app spent it all
        summary = _sync(session, keys, account, fake)
        assert summary.orders_new == 100 and summary.throttled <= 1


def test_server_errors_are_retried_then_reported(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(10)
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    shopify.inject(status=503, count=2)
    summary = _sync(session, keys, account, shopify)
    assert (summary.orders_new, summary.retries) == (10, 2)
    shopify.inject(status=502, count=50)
    clock.advance(minutes=5)
    with pytest.raises(MarketplaceUnavailable):
        _sync(session, keys, account, shopify)


def test_a_bad_order_is_repaired_and_never_blocks_its_account(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, clock: FakeClock
) -> None:
    shopify.generate_orders(10, statuses=["UNFULFILLED"])
    bad = shopify.add_bad_order()
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    summary = _sync(session, keys, account, shopify)
    assert summary.orders_new == 11
    state = stored_state(session, keys, account)
    assert state == expected_state(shopify)
    assert any("\ufffd" in (v or "") for v in state[str(legacy_id(bad))][1].values())  # a lone surrogate, marked
    order = session.scalars(select(Order).where(Order.external_order_id == str(legacy_id(bad)))).one()
    assert order.text_repaired


def test_an_account_pointing_at_an_endpoint_the_operator_does_not_allow_sends_nothing(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify
) -> None:
    account = add_shopify_account(session, keys, tenant, shopify)
    with pytest.raises(ConnectorError, match="not allowed"):
        make_connector(session, keys, account, shopify, endpoint_overrides=frozenset())
    assert sum(shopify.calls.values()) == 0


def test_no_buyer_data_reaches_the_logs(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    shopify: FakeShopify,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shopify.generate_orders(40)
    shopify.add_bad_order()
    clock.advance(minutes=1)
    account = add_shopify_account(session, keys, tenant, shopify)
    shopify.inject(status=503, count=1)
    shopify.inject_throttle(1)
    with caplog.at_level(logging.DEBUG):
        _sync(session, keys, account, shopify)
    logged = caplog.text
    assert logged  # the retries were logged
    for pii in shopify.buyer_pii_strings():
        assert pii not in logged
    assert shopify.DEFAULT_TOKEN not in logged


@pytest.mark.parametrize(
    ("display", "cancelled", "closed", "fulfillment_orders", "expected"),
    [
        ("UNFULFILLED", False, False, ("OPEN",), OrderStatus.UNSHIPPED),
        ("UNFULFILLED", True, False, ("CANCELLED",), OrderStatus.CANCELLED),
        ("FULFILLED", False, True, ("CLOSED",), OrderStatus.SHIPPED),
        ("PARTIALLY_FULFILLED", False, False, ("CLOSED", "OPEN"), OrderStatus.PARTIALLY_SHIPPED),
        ("PARTIALLY_FULFILLED", False, False, ("CLOSED", "ON_HOLD"), OrderStatus.PENDING),
        ("UNFULFILLED", False, False, ("CANCELLED",), OrderStatus.CANCELLED),
        ("UNFULFILLED", False, False, ("CLOSED",), OrderStatus.SHIPPED),
        ("ON_HOLD", False, False, ("ON_HOLD",), OrderStatus.PENDING),
        ("SCHEDULED", False, False, ("SCHEDULED",), OrderStatus.PENDING),
        ("UNFULFILLED", False, True, ("OPEN",), OrderStatus.PENDING),
        ("RESTOCKED", False, False, (), OrderStatus.CANCELLED),
    ],
)
def test_statuses(
    display: str, cancelled: bool, closed: bool, fulfillment_orders: tuple[str, ...], expected: OrderStatus
) -> None:
    assert status_of(display, cancelled=cancelled, closed=closed, fulfillment_orders=fulfillment_orders) is expected


def test_the_platforms_status_table_covers_every_display_status() -> None:
    from graphql import GraphQLEnumType

    from connectors.fake_shopify import schema

    kind = schema().get_type("OrderDisplayFulfillmentStatus")
    assert isinstance(kind, GraphQLEnumType)
    assert set(kind.values) <= set(STATUSES)


def test_expected_record_helper_matches_the_label_fields(shopify: FakeShopify) -> None:
    gid = shopify.generate_orders(1)[0]
    assert expected_record(shopify, gid)["country_code"]
