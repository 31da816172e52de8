"""The Amazon connector against the fake marketplace: mapping, API versions, retries, refusals, logs."""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.amazon import API_V0, AmazonConnector, RetryPolicy
from connectors.amazon.client import LwaCredentials, SpApiClient, shared_http
from connectors.amazon.endpoints import USAGE_PLANS, endpoints_for
from connectors.amazon.mapping import from_v0, from_v2026
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.fake_amazon.models import operations
from connectors.interfaces import AuthRefused, BadResponse, Connector, SyncCursor, ThrottledOut
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from tests.support.amazon import (
    FAST_RETRY,
    SPEEDUP,
    add_amazon_account,
    expected_state,
    make_connector,
    stored_state,
)
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import LabelRecordRow, MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import LabelRecord, OrderStatus

DESIGN_FIELDS = {
    "name",
    "company",
    "address_line1",
    "address_line2",
    "address_line3",
    "city",
    "district_or_county",
    "state_or_region",
    "municipality",
    "postal_code",
    "country_code",
    "phone",
    "address_type",
}


def test_design_fields_are_the_label_record() -> None:
    assert {f.name for f in fields(LabelRecord)} == DESIGN_FIELDS


def test_connector_conforms_to_the_protocol(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    connector = make_connector(session, keys, add_amazon_account(session, keys, tenant, fake), fake)
    assert isinstance(connector, Connector)
    connector.close()


def test_accounts_share_the_process_connection_pool_and_closing_one_leaves_it_open(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(3)
    one = make_connector(session, keys, add_amazon_account(session, keys, tenant, fake, name="one"), fake)
    other = fake.add_seller("A2LVSECONDSELLER")
    two_account = add_amazon_account(session, keys, tenant, fake, name="two", seller=other.selling_partner_id)
    two = make_connector(session, keys, two_account, fake)
    assert isinstance(one, AmazonConnector) and isinstance(two, AmazonConnector)
    pool = shared_http(FAST_RETRY)
    assert one.client._http is pool and two.client._http is pool
    one.close()
    assert not pool.is_closed  # the other account's connector still calls through it
    assert sync_account(session, keys=keys, account=two_account, connector=two).calls == 2  # LWA + one page
    two.close()
    assert not pool.is_closed
    # A client of its own (no shared pool) closes its own.
    own = SpApiClient(
        credentials=LwaCredentials("a", "b", "c"),
        base_url=fake.base_url,
        lwa_url=fake.lwa_url,
        limiter=RateLimiter(USAGE_PLANS),
        scope="own",
    )
    own.close()
    assert own._http.is_closed
    with pytest.raises(ValueError, match="not both"):
        SpApiClient(
            credentials=LwaCredentials("a", "b", "c"),
            base_url=fake.base_url,
            lwa_url=fake.lwa_url,
            limiter=RateLimiter(USAGE_PLANS),
            scope="own",
            http=pool,
            transport=httpx.MockTransport(lambda request: httpx.Response(500)),
        )


def test_sync_stores_exactly_the_fakes_orders_sealed(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(120)
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=50)
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    assert (summary.orders_new, summary.orders_updated, summary.pages) == (120, 0, 3)
    assert summary.calls == 4  # one LWA exchange, three pages
    assert stored_state(session, keys, account) == expected_state(fake)
    # Facts come across too (dates are the fake's, to the second).
    for order in session.scalars(select(Order).where(Order.account_id == account.id)):
        truth = fake.orders()[order.external_order_id]
        assert (order.purchased_at, order.last_updated_at) == (truth.created, truth.last_updated)
        assert order.latest_delivery_at == truth.latest_delivery and order.ship_by == truth.latest_ship
        assert order.fulfillment_channel == truth.fulfillment_channel
    # Only sealed bytes hold PII: no buyer string appears in any row of the label table.
    blobs = b"".join(session.scalars(select(LabelRecordRow.envelope)))
    for value in list(fake.buyer_pii_strings())[:200]:
        assert value.encode() not in blobs


def test_v0_with_rdt_and_v2026_give_the_same_records(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(80)
    new = add_amazon_account(session, keys, tenant, fake, name="v2026")
    old = add_amazon_account(session, keys, tenant, fake, name="v0", api_version=API_V0)
    sync_account(session, keys=keys, account=new, connector=make_connector(session, keys, new, fake, page_size=50))
    v0 = make_connector(session, keys, old, fake, page_size=50)
    sync_account(session, keys=keys, account=old, connector=v0)
    assert stored_state(session, keys, old) == stored_state(session, keys, new) == expected_state(fake)
    # One RDT served every page of the v0 search.
    assert fake.calls["createRestrictedDataToken"] == 1 and v0.stats().per_operation["getOrders"] == 2

    def facts(account: MarketplaceAccount) -> dict[str, tuple[Any, ...]]:
        rows = session.scalars(select(Order).where(Order.account_id == account.id))
        return {
            o.external_order_id: (o.status, o.marketplace_id, o.purchased_at, o.last_updated_at, o.ship_by)
            for o in rows
        }

    assert facts(old) == facts(new)


def test_sandbox_examples_round_trip_into_sealed_records(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    """Amazon's own static examples, served over HTTP by the fake in sandbox mode, through client and mapping."""
    with FakeAmazon(sandbox=True) as sandbox:
        s = sandbox.DEFAULT_SELLER
        account = add_amazon_account(session, keys, tenant, sandbox)
        client = SpApiClient(
            credentials=LwaCredentials(s.client_id, s.client_secret, s.refresh_token),
            base_url=sandbox.base_url,
            lwa_url=sandbox.lwa_url,
            limiter=RateLimiter(USAGE_PLANS, speedup=SPEEDUP),
            scope="sandbox",
            retry=FAST_RETRY,
        )
        served: list[tuple[dict[str, Any], tuple[Any, LabelRecord | None]]] = []
        for name, path, mapper in (
            ("searchOrders", "/orders/2026-01-01/orders", from_v2026),
            ("getOrder", "/orders/2026-01-01/orders/{orderId}", from_v2026),
            ("getOrders", "/orders/v0/orders", from_v0),
            ("getOrderV0", "/orders/v0/orders/{orderId}", from_v0),
        ):
            for example in operations()[name].examples:
                if example.status != 200:
                    continue
                params = dict(example.parameters)
                order_id = params.pop("orderId", None)
                real_path = path.replace("{orderId}", order_id or "")
                # Amazon's sandbox answers its static examples to a plain LWA token (its RDT examples are
                # for other paths), so no RDT here; the v0 RDT flow is tested against the full fake.
                body = client.call(name, "GET", real_path, params=params)
                raw = (
                    body.get("orders")
                    or ([body["order"]] if "order" in body else None)
                    or body["payload"].get("Orders")
                    or [body["payload"]]
                )
                served += [(o, mapper(o)) for o in raw]
        # Every 400 example is a BadResponse at once (no retry).
        with pytest.raises(BadResponse):
            client.call("searchOrders", "GET", "/orders/2026-01-01/orders", params={"createdAfter": "TEST_CASE_400"})
        assert sandbox.calls["searchOrders"] == 4
        assert sandbox.validation_errors == []
        client.close()

    assert len(served) >= 8
    labelled = 0
    for raw, (facts, label) in served:
        result = store_order(session, keys=keys, account=account, facts=facts, label=label)
        if label is None:
            continue
        labelled += 1
        record = unseal_label(session, keys=keys, order=result.order)
        assert record == label and set(record.as_dict()) == DESIGN_FIELDS
        # Buyer e-mail, buyer tax data, items and prices are not in the record nor in the order's facts.
        text = json.dumps(record.as_dict(), ensure_ascii=False) + repr(vars(result.order))
        buyer = raw.get("buyer") or raw.get("BuyerInfo") or {}
        for secret in (buyer.get("buyerEmail"), buyer.get("BuyerEmail")):
            assert not secret or secret not in text
        for key in ("tax", "BuyerTaxInfo", "orderItems", "proceeds", "OrderTotal"):
            value = raw.get(key)
            if isinstance(value, dict):
                for v in value.values():
                    assert not isinstance(v, str) or v not in text
        address = (raw.get("recipient") or {}).get("deliveryAddress") or raw.get("ShippingAddress") or {}
        assert record.name == (address.get("name") or address.get("Name"))
        assert record.city == (address.get("city") or address.get("City"))
    assert labelled >= 3


def test_status_changes_and_deliveries_update_existing_orders(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock
) -> None:
    ids = fake.generate_orders(40, statuses=["UNSHIPPED"], countries=["US", "JP"])
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake)
    sync_account(session, keys=keys, account=account, connector=connector)
    fake.update_order(ids[0], status="SHIPPED")
    fake.update_order(ids[1], status="CANCELLED")
    fake.update_order(ids[2], delivered=True)
    clock.advance(minutes=3)
    summary = sync_account(session, keys=keys, account=account, connector=connector)
    assert summary.orders_new == 0 and summary.orders_updated == 3
    state = stored_state(session, keys, account)
    assert state == expected_state(fake)
    assert state[ids[0]][0] == "shipped" and state[ids[1]][0] == "cancelled"
    assert state[ids[2]][1]["phone"] is None  # suppressed once delivered: the reseal drops it


def test_two_minute_rule(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, clock: FakeClock
) -> None:
    ids = fake.generate_orders(5, statuses=["UNSHIPPED"])
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake)
    assert connector.window_end() <= fake.now() - timedelta(minutes=2)
    sync_account(session, keys=keys, account=account, connector=connector)
    fake.update_order(ids[0], status="SHIPPED")
    clock.advance(seconds=60)  # the change is a minute old: Amazon won't list it before two
    assert sync_account(session, keys=keys, account=account, connector=connector).orders_updated == 0
    clock.advance(seconds=70)
    assert sync_account(session, keys=keys, account=account, connector=connector).orders_updated == 1
    assert fake.validation_errors == []
    assert "at least two minutes" not in json.dumps(fake.stats())


@pytest.mark.parametrize(("status", "error"), [(400, BadResponse), (403, AuthRefused), (404, BadResponse)])
def test_no_retry_on_other_4xx(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, status: int, error: type[Exception]
) -> None:
    fake.generate_orders(5)
    account = add_amazon_account(session, keys, tenant, fake)
    fake.inject(status=status, operation="searchOrders")
    with pytest.raises(error):
        sync_account(session, keys=keys, account=account, connector=make_connector(session, keys, account, fake))
    assert fake.calls["searchOrders"] == 1
    session.refresh(account)
    assert account.sync_cursor is None and account.last_sync and account.last_sync["ok"] is False


def test_retries_429_5xx_timeouts_and_token_expiry(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(150)
    account = add_amazon_account(session, keys, tenant, fake, api_version=API_V0)
    retry = RetryPolicy(attempts=6, base_delay=1.0, read_timeout=0.5, connect_timeout=1.0)
    connector = make_connector(session, keys, account, fake, retry=retry, page_size=25)
    fake.inject(status=429, count=2, operation="getOrders")
    fake.inject(status=500, operation="getOrders")
    fake.inject(status=503, operation="createRestrictedDataToken")
    fake.inject(status=500, operation="lwaToken")
    fake.inject_delay(2.0, operation="getOrders")  # longer than the read timeout: a retry, not a hang

    def chaos(progress: Any) -> None:
        if progress.pages == 2:
            fake.expire_tokens()

    summary = sync_account(session, keys=keys, account=account, connector=connector, progress=chaos)
    assert summary.orders_new == 150 and summary.throttled == 2 and summary.retries >= 6
    # 500 then a token; after the expiry: the RDT is refused, a new one is refused (stale LWA token), renew both.
    assert fake.calls["lwaToken"] == 3 and fake.calls["createRestrictedDataToken"] == 4
    assert stored_state(session, keys, account) == expected_state(fake)


def test_throttled_out_after_bounded_retries(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(5)
    account = add_amazon_account(session, keys, tenant, fake)
    fake.inject(status=429, count=50, operation="searchOrders")
    with pytest.raises(ThrottledOut):
        sync_account(session, keys=keys, account=account, connector=make_connector(session, keys, account, fake))
    assert fake.calls["searchOrders"] == FAST_RETRY.attempts


def test_refused_refresh_token_is_auth_refused_without_the_secret(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    account = add_amazon_account(session, keys, tenant, fake)
    from vault.marketplace_accounts import seal_credentials

    bad = LwaCredentials("amzn1.application-oa2-client.x", "amzn1.oa2-cs.v1.y", "Atzr|not-a-real-refresh-token")
    seal_credentials(session, keys=keys, account=account, secrets=bad.as_secrets())
    with pytest.raises(AuthRefused) as caught:
        sync_account(session, keys=keys, account=account, connector=make_connector(session, keys, account, fake))
    assert "Atzr|" not in str(caught.value) and "oa2-cs" not in str(caught.value)
    assert "oa2-cs" not in repr(bad) and "Atzr" not in repr(bad)
    assert fake.calls["lwaToken"] == 1


def test_a_whole_sync_logs_no_pii_and_no_token(
    session: Session,
    keys: KeyManager,
    tenant: Tenant,
    fake: FakeAmazon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.generate_orders(60)
    old = add_amazon_account(session, keys, tenant, fake, name="v0", api_version=API_V0)
    new = add_amazon_account(session, keys, tenant, fake, name="v2026")
    fake.inject(status=429, operation="getOrders")
    fake.inject(status=500, operation="searchOrders")
    for name in ("", "httpx", "httpcore", "connectors", "vault", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    for account in (old, new):
        connector = make_connector(session, keys, account, fake)
        sync_account(session, keys=keys, account=account, connector=connector, progress=lambda _: fake.expire_tokens())
    assert "HTTP Request" in caplog.text  # httpx's own lines were captured too
    pii = fake.buyer_pii_strings()
    leaked = sorted(value for value in pii if value in caplog.text)
    assert leaked == []
    s = fake.DEFAULT_SELLER
    for secret in ("Atza|", "Atz.sprdt|", s.refresh_token, s.client_secret):
        assert secret not in caplog.text


def test_endpoints_by_region_sandbox_and_override() -> None:
    assert endpoints_for("eu").sp_api == "https://sellingpartnerapi-eu.amazon.com"
    assert endpoints_for("fe", sandbox=True).sp_api == "https://sandbox.sellingpartnerapi-fe.amazon.com"
    assert endpoints_for("na").lwa == "https://api.amazon.com/auth/o2/token"
    custom = endpoints_for("na", sp_api_endpoint="http://127.0.0.1:9/", lwa_endpoint="http://127.0.0.1:9/t")
    assert (custom.sp_api, custom.lwa) == ("http://127.0.0.1:9", "http://127.0.0.1:9/t")


def test_empty_strings_are_absent_and_address_types_agree() -> None:
    facts, label = from_v0(
        {
            "AmazonOrderId": "202-1234567-1234567",
            "PurchaseDate": "2026-11-01T10:00:00Z",
            "LastUpdateDate": "2026-11-01T11:00:00Z",
            "OrderStatus": "Unshipped",
            "ShippingAddress": {
                "Name": "Zoë O'Neill",
                "AddressLine1": "1 High Street",
                "AddressLine2": "",
                "City": "London",
                "County": "Greater London",
                "PostalCode": "SW1A 1AA",
                "CountryCode": "GB",
                "AddressType": "Residential",
            },
        }
    )
    assert facts.status is OrderStatus.UNSHIPPED and label is not None
    assert label.address_line2 is None and label.district_or_county == "Greater London"
    assert label.address_type == "RESIDENTIAL"


def test_resume_mid_window_uses_the_page_token(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(100)
    account = add_amazon_account(session, keys, tenant, fake)
    connector = make_connector(session, keys, account, fake, page_size=20)
    pages = connector.pull(SyncCursor())
    first = next(pages)
    assert first.cursor.mid_window and not first.last
    resumed = list(connector.pull(first.cursor))
    # The rest of the window (4 pages), then a fresh window up to now (1 page, empty here).
    assert len(resumed) == 5 and [p.last for p in resumed] == [False] * 4 + [True]
    assert resumed[-1].cursor.updated_after is not None and not resumed[-1].cursor.mid_window
    seen = {f.external_order_id for f, _ in first.orders} | {f.external_order_id for p in resumed for f, _ in p.orders}
    assert seen == set(fake.orders())
    # An expired token restarts the window instead of failing.
    stale = SyncCursor(window_end=first.cursor.window_end, page_token="expired-token")
    assert {f.external_order_id for p in connector.pull(stale) for f, _ in p.orders} == set(fake.orders())
