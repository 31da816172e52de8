"""The fake Amazon marketplace behaves like SP-API where a connector can tell, and only serves schema-valid bodies."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.fake_amazon import (
    FULFILLMENT_STATUSES,
    FakeAmazon,
    FakeAmazonError,
    FakeClock,
    Seller,
    TokenBucket,
    operation_names,
)
from connectors.fake_amazon import render as fake_render
from connectors.fake_amazon.models import MARKETPLACE_APIS, all_examples, operations, schema_errors

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SEARCH = "/orders/2026-01-01/orders"
GET_ORDERS_V0 = "/orders/v0/orders"
RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"
ALL_DATA = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES,TAX"
LONG_AGO = "2020-01-01T00:00:00Z"
US, JP = "ATVPDKIKX0DER", "A1VC38T7YXB528"
ALL_MARKETPLACES = ",".join(FakeAmazon.DEFAULT_SELLER.marketplace_ids)
LABEL_KEYS = {
    "name": "name",
    "companyName": "company",
    "addressLine1": "address_line1",
    "addressLine2": "address_line2",
    "addressLine3": "address_line3",
    "city": "city",
    "districtOrCounty": "district_or_county",
    "stateOrRegion": "state_or_region",
    "municipality": "municipality",
    "postalCode": "postal_code",
    "countryCode": "country_code",
    "phone": "phone",
    "addressType": "address_type",
}
# Amazon's own sandbox examples that break Amazon's own schema: (operation, status, index) -> why.
# Empty at models commit 34dc93fe; test_amazon_examples_validate keeps this list honest both ways.
KNOWN_UPSTREAM_INVALID: dict[tuple[str, int, int], str] = {}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def _started(fake: FakeAmazon) -> Iterator[FakeAmazon]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.validation_errors == []
    assert fake.server_errors == []


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeAmazon]:
    yield from _started(FakeAmazon(seed=7, clock=clock))


@pytest.fixture
def client(fake: FakeAmazon) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as c:
        yield c


def lwa(client: httpx.Client, fake: FakeAmazon, seller: Seller | None = None) -> str:
    seller = seller or fake.DEFAULT_SELLER
    form = {
        "grant_type": "refresh_token",
        "refresh_token": seller.refresh_token,
        "client_id": seller.client_id,
        "client_secret": seller.client_secret,
    }
    response = client.post(fake.lwa_url, data=form)
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


def rdt(client: httpx.Client, token: str, path: str, elements: list[str] | None = None) -> str:
    resource: dict[str, Any] = {"method": "GET", "path": path}
    if elements is not None:
        resource["dataElements"] = elements
    response = client.post(RDT_PATH, json={"restrictedResources": [resource]}, headers={"x-amz-access-token": token})
    assert response.status_code == 200, response.text
    value: str = response.json()["restrictedDataToken"]
    assert value.startswith("Atz.sprdt|")
    return value


def search_all(client: httpx.Client, token: str, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every order of a v2026 search, following nextToken; and the page bodies."""
    orders, pages = [], []
    query = dict(params)
    while True:
        response = client.get(SEARCH, params=query, headers={"x-amz-access-token": token})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body)
        orders.extend(body["orders"])
        next_token = body.get("pagination", {}).get("nextToken")
        if not next_token:
            return orders, pages
        query = {**params, "paginationToken": next_token}


def label_from_v2026(address: dict[str, Any] | None) -> dict[str, str | None]:
    label: dict[str, str | None] = dict.fromkeys(LABEL_KEYS.values())
    for key, value in (address or {}).items():
        label[LABEL_KEYS[key]] = value or None
    return label


# --- Login with Amazon --------------------------------------------------------------------------------------


def test_lwa_exchanges_a_refresh_token_for_an_hour_long_bearer_token(fake: FakeAmazon, client: httpx.Client) -> None:
    seller = fake.DEFAULT_SELLER
    response = client.post(
        fake.lwa_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": seller.refresh_token,
            "client_id": seller.client_id,
            "client_secret": seller.client_secret,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] == seller.refresh_token
    assert fake.calls["lwaToken"] == 1
    assert "secret" not in repr(seller) and seller.refresh_token not in repr(seller)


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"grant_type": "authorization_code"}, 400, "unsupported_grant_type"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"refresh_token": "Atzr|unknown"}, 400, "invalid_grant"),
    ],
)
def test_lwa_refuses_bad_credentials(
    fake: FakeAmazon, client: httpx.Client, change: dict[str, str], status: int, error: str
) -> None:
    seller = fake.DEFAULT_SELLER
    form = {
        "grant_type": "refresh_token",
        "refresh_token": seller.refresh_token,
        "client_id": seller.client_id,
        "client_secret": seller.client_secret,
        **change,
    }
    response = client.post(fake.lwa_url, data=form)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_access_tokens_expire_after_an_hour_and_on_demand(
    fake: FakeAmazon, client: httpx.Client, clock: FakeClock
) -> None:
    params = {"lastUpdatedAfter": LONG_AGO}
    token = lwa(client, fake)
    assert client.get(SEARCH, params=params, headers={"x-amz-access-token": token}).status_code == 200

    clock.advance(seconds=3600)
    expired = client.get(SEARCH, params=params, headers={"x-amz-access-token": token})
    assert expired.status_code == 403
    assert expired.json() == {
        "errors": [{"code": "Unauthorized", "message": "The access token you provided has expired."}]
    }

    fresh = lwa(client, fake)
    assert client.get(SEARCH, params=params, headers={"x-amz-access-token": fresh}).status_code == 200
    fake.expire_tokens()
    assert client.get(SEARCH, params=params, headers={"x-amz-access-token": fresh}).status_code == 403
    assert client.get(SEARCH, params=params, headers={"x-amz-access-token": lwa(client, fake)}).status_code == 200

    for headers in ({}, {"x-amz-access-token": "Atza|forged"}):
        denied = client.get(SEARCH, params=params, headers=headers)
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["message"] == "Access to requested resource is denied."


# --- Orders v0 and Restricted Data Tokens -------------------------------------------------------------------


def test_v0_get_orders_without_rdt_serves_no_pii(fake: FakeAmazon, client: httpx.Client) -> None:
    fake.generate_orders(40)
    token = lwa(client, fake)
    response = client.get(
        GET_ORDERS_V0,
        params={"CreatedAfter": LONG_AGO, "MarketplaceIds": ALL_MARKETPLACES},
        headers={"x-amz-access-token": token},
    )
    assert response.status_code == 200
    orders = response.json()["payload"]["Orders"]
    assert len(orders) == 40
    with_address = [o for o in orders if "ShippingAddress" in o]
    assert with_address
    for order in with_address:
        assert set(order["ShippingAddress"]) <= {
            "City",
            "County",
            "District",
            "StateOrRegion",
            "PostalCode",
            "CountryCode",
        }
        assert "BuyerInfo" not in order
    assert not [pii for pii in fake.buyer_pii_strings() if pii in response.text]


def test_v0_rdt_reveals_exactly_the_data_elements_it_grants(fake: FakeAmazon, client: httpx.Client) -> None:
    fake.generate_orders(40)
    token = lwa(client, fake)
    params = {"CreatedAfter": LONG_AGO, "MarketplaceIds": ALL_MARKETPLACES}

    address_only = rdt(client, token, GET_ORDERS_V0, ["shippingAddress"])
    orders = client.get(GET_ORDERS_V0, params=params, headers={"x-amz-access-token": address_only}).json()
    for order in orders["payload"]["Orders"]:
        assert "BuyerInfo" not in order
        expected = fake.expected_label(order["AmazonOrderId"])
        if expected["name"] is None:
            assert "ShippingAddress" not in order
            continue
        address = order["ShippingAddress"]
        assert address["Name"] == expected["name"]
        assert address["AddressLine1"] == expected["address_line1"]
        assert (address.get("AddressLine3") or None) == expected["address_line3"]
        assert address.get("Phone") == expected["phone"]
        assert address["AddressType"] == str(expected["address_type"]).title()

    both = rdt(client, token, GET_ORDERS_V0, ["shippingAddress", "buyerInfo"])
    orders = client.get(GET_ORDERS_V0, params=params, headers={"x-amz-access-token": both}).json()
    truth = fake.orders()
    for order in orders["payload"]["Orders"]:
        assert order["BuyerInfo"]["BuyerEmail"] == truth[order["AmazonOrderId"]].buyer_email
    taxed = [o for o in orders["payload"]["Orders"] if "BuyerTaxInfo" in o["BuyerInfo"]]
    assert taxed, "business buyers carry tax data a connector must drop"


def test_rdt_opens_only_its_own_resources(fake: FakeAmazon, client: httpx.Client) -> None:
    order_id = fake.generate_orders(5, statuses=["UNSHIPPED"], countries=["JP"])[0]
    token = lwa(client, fake)
    address_rdt = rdt(client, token, "/orders/v0/orders/{orderId}/address")
    address_path = f"/orders/v0/orders/{order_id}/address"

    full = client.get(address_path, headers={"x-amz-access-token": address_rdt}).json()["payload"]
    label = fake.expected_label(order_id)
    assert full["ShippingAddress"]["Name"] == label["name"]
    assert full["ShippingAddress"]["StateOrRegion"] == label["state_or_region"]

    partial = client.get(address_path, headers={"x-amz-access-token": token}).json()["payload"]
    assert "Name" not in partial["ShippingAddress"] and partial["ShippingAddress"]["PostalCode"] == label["postal_code"]

    params = {"CreatedAfter": LONG_AGO, "MarketplaceIds": JP}
    assert client.get(GET_ORDERS_V0, params=params, headers={"x-amz-access-token": address_rdt}).status_code == 403
    assert (
        client.get(SEARCH, params={"createdAfter": LONG_AGO}, headers={"x-amz-access-token": address_rdt}).status_code
        == 403
    )

    for resource in (
        {"method": "GET", "path": "/orders/v1/orders/902-1845936-5435065/address"},
        {"method": "GET", "path": GET_ORDERS_V0},  # getOrders needs dataElements
        {"method": "GET", "path": GET_ORDERS_V0, "dataElements": ["creditCard"]},
        {"method": "POST", "path": "/orders/v0/orders/{orderId}/address"},
    ):
        refused = client.post(RDT_PATH, json={"restrictedResources": [resource]}, headers={"x-amz-access-token": token})
        assert refused.status_code == 400, resource
    buyer = client.get(f"/orders/v0/orders/{order_id}/buyerInfo", headers={"x-amz-access-token": token})
    assert buyer.json() == {"payload": {"AmazonOrderId": order_id}}


def test_v0_get_order_and_filters(fake: FakeAmazon, client: httpx.Client) -> None:
    ids = fake.generate_orders(30)
    other = fake.add_seller("A2OTHERSELLER1", marketplace_ids=[US])
    foreign = fake.generate_orders(3, seller=other.selling_partner_id)[0]
    token = lwa(client, fake)
    headers = {"x-amz-access-token": token}
    order = client.get(f"/orders/v0/orders/{ids[0]}", headers=headers)
    assert order.json()["payload"]["AmazonOrderId"] == ids[0]
    assert client.get(f"/orders/v0/orders/{foreign}", headers=headers).status_code == 404
    assert fake.calls["getOrderV0"] == 2

    params = {
        "CreatedAfter": LONG_AGO,
        "MarketplaceIds": ALL_MARKETPLACES,
        "OrderStatuses": "Unshipped,PartiallyShipped",
    }
    listed = client.get(GET_ORDERS_V0, params=params, headers=headers).json()["payload"]["Orders"]
    truth = fake.orders()
    assert {o["AmazonOrderId"] for o in listed} == {
        i for i, o in truth.items() if o.status in ("UNSHIPPED", "PARTIALLY_SHIPPED")
    }
    assert client.get(GET_ORDERS_V0, params={"CreatedAfter": LONG_AGO}, headers=headers).status_code == 400
    bad_status = {**params, "OrderStatuses": "Lost"}
    assert client.get(GET_ORDERS_V0, params=bad_status, headers=headers).status_code == 400


# --- Orders v2026-01-01 -------------------------------------------------------------------------------------


def test_v2026_recipient_is_the_expected_label_without_an_rdt(fake: FakeAmazon, client: httpx.Client) -> None:
    fake.generate_orders(70)
    token = lwa(client, fake)
    orders, _ = search_all(client, token, lastUpdatedAfter=LONG_AGO, includedData=ALL_DATA)
    assert len(orders) == 70
    truth = fake.orders()
    for order in orders:
        fact = truth[order["orderId"]]
        assert order["fulfillment"]["fulfillmentStatus"] == fact.status
        address = order.get("recipient", {}).get("deliveryAddress")
        assert (address is not None) == (fact.status in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"))
        if address is not None:
            assert label_from_v2026(address) == fake.expected_label(fact.order_id)
        if fact.fulfilled_by == "AMAZON":
            assert address is None or "phone" not in address
            assert "buyerEmail" not in order["buyer"]
        else:
            assert order["buyer"]["buyerEmail"] == fact.buyer_email
        if fact.tax is not None:
            registration = order["tax"]["taxRegistrations"][0]
            assert registration["taxRegistrationNumber"] == fact.tax.registration_number

    bare, _ = search_all(client, token, lastUpdatedAfter=LONG_AGO)
    always = {"orderId", "orderAliases", "createdTime", "lastUpdatedTime", "programs", "salesChannel", "orderItems"}
    assert all(set(o) == always for o in bare), "sections come only with includedData"


def test_v2026_get_order(fake: FakeAmazon, client: httpx.Client) -> None:
    order_id = fake.generate_orders(3, statuses=["SHIPPED"])[0]
    headers = {"x-amz-access-token": lwa(client, fake)}
    response = client.get(f"{SEARCH}/{order_id}", params={"includedData": "RECIPIENT,FULFILLMENT"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.5"
    order = response.json()["order"]
    assert label_from_v2026(order["recipient"]["deliveryAddress"]) == fake.expected_label(order_id)
    assert client.get(f"{SEARCH}/111-0000000-0000000", headers=headers).status_code == 404
    assert fake.calls["getOrder"] == 2
    assert client.get(f"{SEARCH}/{order_id}", params={"includedData": "EVERYTHING"}, headers=headers).status_code == 400


def test_generated_orders_are_realistic_and_deterministic(clock: FakeClock) -> None:
    fake = FakeAmazon(seed=3, clock=clock)
    ids = fake.generate_orders(60)
    orders = fake.orders()
    assert {o.status for o in orders.values()} == set(FULFILLMENT_STATUSES)
    assert {o.country_code for o in orders.values()} == {"US", "GB", "DE", "FR", "JP", "CN"}
    assert {o.fulfilled_by for o in orders.values()} == {"MERCHANT", "AMAZON"}
    labels = [o.ship_to for o in orders.values()]
    assert any(s.address_line3 and s.company for s in labels)
    assert any(" ext. " in s.phone for s in labels)
    jp = next(s for s in labels if s.country_code == "JP")
    cn = next(s for s in labels if s.country_code == "CN")
    assert jp.state_or_region and jp.state_or_region.endswith(("都", "府", "道", "県"))
    assert len(jp.postal_code) == 8 and jp.postal_code[3] == "-"
    assert all("\u4e00" <= ch <= "\u9fff" for ch in cn.name)
    assert cn.district_or_county and cn.district_or_county.endswith("区")
    for order in orders.values():
        assert order.created <= order.last_updated <= NOW - timedelta(minutes=5)
        assert order.created < order.latest_ship < order.latest_delivery
        assert order.order_id.count("-") == 2
        assert (order.channel == "NON_AMAZON") == (order.status == "UNFULFILLABLE")
    cn_orders = [o for o in orders.values() if o.country_code == "CN"]
    assert {o.marketplace_id for o in cn_orders} == {US}  # cross-border from the US marketplace

    again = FakeAmazon(seed=3, clock=FakeClock(NOW))
    assert again.generate_orders(60) == ids
    assert [again.expected_label(i) for i in ids] == [fake.expected_label(i) for i in ids]
    assert FakeAmazon(seed=4, clock=FakeClock(NOW)).generate_orders(60) != ids


def test_update_order_bumps_last_updated_and_delivery_suppresses_phone(fake: FakeAmazon, clock: FakeClock) -> None:
    fake.generate_orders(4, statuses=["UNSHIPPED"], countries=["GB"])
    order_id = next(i for i, o in fake.orders().items() if o.fulfilled_by == "MERCHANT")
    assert fake.expected_label(order_id)["phone"]
    clock.advance(minutes=1)
    fake.update_order(order_id, status="Shipped")
    order = fake.orders()[order_id]
    assert (order.status, order.last_updated) == ("SHIPPED", clock())
    fake.update_order(order_id, delivered=True)
    assert fake.expected_label(order_id)["phone"] is None
    assert fake.expected_label(order_id)["name"] is not None
    fake.update_order(order_id, status="CANCELLED")
    assert set(fake.expected_label(order_id).values()) == {None}
    with pytest.raises(FakeAmazonError):
        fake.update_order(order_id, status="LOST")
    with pytest.raises(FakeAmazonError):
        fake.update_order("000-0000000-0000000")


# --- pagination and search rules ----------------------------------------------------------------------------


def test_pagination_serves_250_orders_once_each_in_last_updated_order(fake: FakeAmazon, client: httpx.Client) -> None:
    ids = fake.generate_orders(250)
    token = lwa(client, fake)
    orders, pages = search_all(client, token, lastUpdatedAfter=LONG_AGO, maxResultsPerPage=100)
    assert [len(p["orders"]) for p in pages] == [100, 100, 50]
    served = [o["orderId"] for o in orders]
    assert sorted(served) == sorted(ids)
    keys = [(o["lastUpdatedTime"], o["orderId"]) for o in orders]
    assert keys == sorted(keys)
    assert len({o["lastUpdatedTime"] for o in orders}) < 250, "ties in lastUpdated are part of the test data"
    assert {p["lastUpdatedBefore"] for p in pages} == {"2026-03-02T11:58:00Z"}

    headers = {"x-amz-access-token": token}
    v0_ids: list[str] = []
    params: dict[str, Any] = {"CreatedAfter": LONG_AGO, "MarketplaceIds": ALL_MARKETPLACES, "MaxResultsPerPage": 100}
    while True:
        payload = client.get(GET_ORDERS_V0, params=params, headers=headers).json()["payload"]
        v0_ids.extend(o["AmazonOrderId"] for o in payload["Orders"])
        if "NextToken" not in payload:
            break
        params = {**params, "NextToken": payload["NextToken"]}
    assert sorted(v0_ids) == sorted(ids) and len(v0_ids) == 250
    assert fake.calls["getOrders"] == 3


@pytest.mark.parametrize("size", ["0", "101", "ten"])
def test_page_size_is_one_to_a_hundred(fake: FakeAmazon, client: httpx.Client, size: str) -> None:
    params = {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": size}
    response = client.get(SEARCH, params=params, headers={"x-amz-access-token": lwa(client, fake)})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_before_must_be_two_minutes_old_and_exactly_one_after(
    fake: FakeAmazon, client: httpx.Client, clock: FakeClock
) -> None:
    ids = fake.generate_orders(10, statuses=["UNSHIPPED"])
    headers = {"x-amz-access-token": lwa(client, fake)}

    def search(**params: str) -> httpx.Response:
        return client.get(SEARCH, params=params, headers=headers)

    assert search(lastUpdatedAfter=LONG_AGO, lastUpdatedBefore="2026-03-02T11:59:00Z").status_code == 400
    assert search(lastUpdatedAfter=LONG_AGO, lastUpdatedBefore="2026-03-02T11:58:00Z").status_code == 200
    assert search(createdAfter=LONG_AGO, createdBefore="2026-03-02T11:58:01Z").status_code == 400
    assert search(createdAfter=LONG_AGO, lastUpdatedAfter=LONG_AGO).status_code == 400
    assert search().status_code == 400
    assert search(createdBefore="2026-03-01T00:00:00Z").status_code == 400
    assert search(lastUpdatedAfter="yesterday").status_code == 400
    assert search(lastUpdatedAfter="2026-03-02T11:00:00Z", lastUpdatedBefore="2026-03-02T10:00:00Z").status_code == 400

    fake.update_order(ids[0], status="SHIPPED")  # lastUpdated = now: not visible until it has settled
    first = search(lastUpdatedAfter="2026-03-02T11:56:00Z").json()  # generated ones settle by 11:55
    assert first["orders"] == []
    clock.advance(minutes=2)
    later = search(lastUpdatedAfter=first["lastUpdatedBefore"]).json()
    assert [o["orderId"] for o in later["orders"]] == [ids[0]]


def test_pagination_tokens_expire_after_24_hours(fake: FakeAmazon, client: httpx.Client, clock: FakeClock) -> None:
    fake.generate_orders(5)
    token = lwa(client, fake)
    first = client.get(
        SEARCH, params={"createdAfter": LONG_AGO, "maxResultsPerPage": 2}, headers={"x-amz-access-token": token}
    ).json()
    next_token = first["pagination"]["nextToken"]
    clock.advance(hours=24, seconds=1)
    headers = {"x-amz-access-token": lwa(client, fake)}
    expired = client.get(SEARCH, params={"paginationToken": next_token}, headers=headers)
    assert expired.status_code == 400
    assert client.get(SEARCH, params={"paginationToken": "forged"}, headers=headers).status_code == 400


def test_mutate_while_paging_changes_served_and_unserved_orders(
    fake: FakeAmazon, client: httpx.Client, clock: FakeClock
) -> None:
    ids = fake.generate_orders(250)
    fake.mutate_while_paging()
    token = lwa(client, fake)
    first_pass, pages = search_all(client, token, lastUpdatedAfter=LONG_AGO, includedData="FULFILLMENT")
    assert len(pages) == 3
    assert len(fake.mutations) == 4  # before page 2 and page 3: one served order, one still to come
    mutated = {order_id for order_id, _, _ in fake.mutations}
    assert any(old != new for _, old, new in fake.mutations)

    # Bumped to "now", the mutated orders fall after this search's bound, so the next incremental search
    # (from the bound Amazon returned) brings each of them with its new status; nothing is lost.
    clock.advance(minutes=3)
    fake.mutate_while_paging(False)
    second_pass, _ = search_all(
        client, token, lastUpdatedAfter=pages[-1]["lastUpdatedBefore"], includedData="FULFILLMENT"
    )
    assert {o["orderId"] for o in second_pass} == mutated
    truth = fake.orders()
    assert all(o["fulfillment"]["fulfillmentStatus"] == truth[o["orderId"]].status for o in second_pass)
    assert {o["orderId"] for o in first_pass} | mutated == set(ids)


# --- rate limits --------------------------------------------------------------------------------------------


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(0.5, 3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.9
    assert not bucket.take()
    now[0] += 0.1
    assert bucket.take()
    now[0] += 100
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_burst_exhausted_gives_429_per_seller_and_operation(fake: FakeAmazon, client: httpx.Client) -> None:
    headers = {"x-amz-access-token": lwa(client, fake)}
    params = {"lastUpdatedAfter": LONG_AGO}
    answers = [client.get(SEARCH, params=params, headers=headers) for _ in range(21)]
    assert [a.status_code for a in answers] == [200] * 20 + [429]
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "0.0056"
    assert answers[-1].json() == {
        "errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource."}]
    }
    assert fake.throttled["searchOrders"] == 1 and fake.calls["searchOrders"] == 21
    assert client.get(f"{SEARCH}/111-0000000-0000000", headers=headers).status_code == 404  # another bucket
    other = fake.add_seller("A3SECONDSELLER", marketplace_ids=[JP])
    assert (
        client.get(SEARCH, params=params, headers={"x-amz-access-token": lwa(client, fake, other)}).status_code == 200
    )
    assert fake.min_calls_and_seconds("searchOrders", 20) == 0
    assert fake.min_calls_and_seconds("searchOrders", 21) == pytest.approx(1 / 0.0056)


def test_speedup_scales_the_refill_rate(clock: FakeClock) -> None:
    # At 200x, 1.12 tokens a second: the 22 calls have ~0.9 s before the bucket refills one token, room
    # enough on a loaded machine (at 1000x a slow CI run refilled the bucket between calls).
    for fake in _started(FakeAmazon(speedup=200, clock=clock)):
        with httpx.Client(base_url=fake.base_url, timeout=5) as client:
            headers = {"x-amz-access-token": lwa(client, fake)}
            params = {"lastUpdatedAfter": LONG_AGO}
            statuses = [client.get(SEARCH, params=params, headers=headers).status_code for _ in range(22)]
            assert statuses[:20] == [200] * 20 and 429 in statuses[20:]
            time.sleep(1.0)  # one token back at 1.12 a second
            refilled = client.get(SEARCH, params=params, headers=headers)
            assert refilled.status_code == 200
            assert refilled.headers["x-amzn-RateLimit-Limit"] == "1.12"
        assert fake.min_calls_and_seconds("searchOrders", 76) == pytest.approx(50.0)
        assert fake.rate_limit("createRestrictedDataToken") == (200.0, 10)


# --- fault injection ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"), [(429, "QuotaExceeded"), (500, "InternalFailure"), (503, "ServiceUnavailable")]
)
def test_injected_faults_answer_like_amazon_then_clear(
    fake: FakeAmazon, client: httpx.Client, status: int, code: str
) -> None:
    headers = {"x-amz-access-token": lwa(client, fake)}
    params = {"lastUpdatedAfter": LONG_AGO}
    fake.inject(status=status, count=2, operation="searchOrders")
    assert client.get(f"{SEARCH}/111-0000000-0000000", headers=headers).status_code == 404  # other operation
    answers = [client.get(SEARCH, params=params, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json()["errors"][0]["code"] == code
    assert fake.throttled["searchOrders"] == (2 if status == 429 else 0)


def test_faults_without_an_operation_spare_lwa_unless_named(fake: FakeAmazon, client: httpx.Client) -> None:
    fake.inject(status=500)
    token = lwa(client, fake)
    assert (
        client.get(SEARCH, params={"createdAfter": LONG_AGO}, headers={"x-amz-access-token": token}).status_code == 500
    )
    fake.inject(status=503, operation="lwaToken")
    seller = fake.DEFAULT_SELLER
    form = {"grant_type": "refresh_token", "refresh_token": seller.refresh_token}
    failed = client.post(
        fake.lwa_url, data={**form, "client_id": seller.client_id, "client_secret": seller.client_secret}
    )
    assert failed.status_code == 503 and failed.json()["error"] == "server_error"
    with pytest.raises(FakeAmazonError):
        fake.inject(status=418)
    with pytest.raises(FakeAmazonError):
        fake.inject(status=500, operation="getOrderz")


def test_injected_delay_slows_matching_requests(fake: FakeAmazon, client: httpx.Client) -> None:
    headers = {"x-amz-access-token": lwa(client, fake)}
    fake.inject_delay(0.3, operation="getOrder")
    started = time.monotonic()
    client.get(f"{SEARCH}/111-0000000-0000000", headers=headers)
    slow = time.monotonic() - started
    started = time.monotonic()
    client.get(f"{SEARCH}/111-0000000-0000000", headers=headers)
    assert slow >= 0.3 > time.monotonic() - started


def test_latency_delays_every_call_lwa_included(clock: FakeClock) -> None:
    fake = FakeAmazon(seed=7, clock=clock, latency=0.2)
    for _ in _started(fake):
        with httpx.Client(base_url=fake.base_url, timeout=5) as client:
            started = time.monotonic()
            headers = {"x-amz-access-token": lwa(client, fake)}
            token_took = time.monotonic() - started
            started = time.monotonic()
            answer = client.get(f"{SEARCH}/111-0000000-0000000", headers=headers)
            call_took = time.monotonic() - started
            assert answer.status_code == 404  # answered as without latency, only later
            assert token_took >= 0.2 and call_took >= 0.2
            assert client.get("/_fake/stats").json()["latency"] == 0.2  # the control API is not delayed
    with pytest.raises(ValueError, match="latency"):
        FakeAmazon(latency=-1)


# --- schemas and the sandbox --------------------------------------------------------------------------------


def test_amazon_examples_validate() -> None:
    examples = all_examples(MARKETPLACE_APIS)
    assert len(examples) >= 40
    invalid = {
        (ex.operation, ex.status, ex.index) for ex in examples if schema_errors(ex.operation, ex.status, ex.response)
    }
    assert invalid == set(KNOWN_UPSTREAM_INVALID)


def _example_request(example: Any) -> tuple[str, str, dict[str, str], Any]:
    op = operations()[example.operation]
    path_params = {p.name: "TEST_CASE_400" for p in op.parameters if p.location == "path"}
    query: dict[str, str] = {}
    body = None
    for name, value in example.parameters.items():
        spec = op.parameter(name)
        if spec is not None and spec.location == "path":
            path_params[name] = value
        elif spec is not None and spec.location == "query":
            query[name] = ",".join(value) if isinstance(value, list) else str(value)
        else:
            body = value
    path = op.path
    for name, value in path_params.items():
        path = path.replace("{" + name + "}", value)
    return op.method, path, query, body


def test_sandbox_replays_every_amazon_example(clock: FakeClock) -> None:
    for fake in _started(FakeAmazon(sandbox=True, clock=clock)):
        with httpx.Client(base_url=fake.base_url, timeout=5) as client:
            token = lwa(client, fake)
            for example in all_examples(MARKETPLACE_APIS):
                method, path, query, body = _example_request(example)
                response = client.request(method, path, params=query, json=body, headers={"x-amz-access-token": token})
                assert response.status_code == example.status, (example.operation, example.index, response.text)
                if example.status == 204:
                    assert response.content == b""
                else:
                    assert response.json() == example.response, (example.operation, example.index)
            unmatched = client.get(SEARCH, params={"createdAfter": LONG_AGO}, headers={"x-amz-access-token": token})
            assert unmatched.status_code == 400
            assert "MFNIntegrationTestMerchant" in fake.buyer_pii_strings()


def test_a_response_breaking_the_schema_is_recorded_and_answered_500(
    fake: FakeAmazon, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = fake.generate_orders(1)[0]
    monkeypatch.setattr(fake_render, "order_v2026", lambda order, included, now: {"orderId": 42})
    response = client.get(f"{SEARCH}/{order_id}", headers={"x-amz-access-token": lwa(client, fake)})
    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "InternalFailure"
    assert fake.validation_errors and all("getOrder 200" in e for e in fake.validation_errors)
    assert not any(str(42) in e for e in fake.validation_errors), "messages name the rule, not the value"
    fake.validation_errors.clear()


def test_every_kind_of_order_is_served_schema_valid(fake: FakeAmazon, client: httpx.Client) -> None:
    ids = fake.generate_orders(120)
    fake.update_order(ids[0], delivered=True)
    token = lwa(client, fake)
    search_all(client, token, createdAfter=LONG_AGO, includedData=ALL_DATA + ",PAYMENT,EXPENSE")
    elements = ["shippingAddress", "buyerInfo", "buyerTaxInformation"]
    full = rdt(client, token, GET_ORDERS_V0, elements)
    params = {"CreatedAfter": LONG_AGO, "MarketplaceIds": ALL_MARKETPLACES}
    assert client.get(GET_ORDERS_V0, params=params, headers={"x-amz-access-token": full}).status_code == 200
    one = rdt(client, token, "/orders/v0/orders/{orderId}", elements)
    for order_id in ids[:12]:
        assert client.get(f"/orders/v0/orders/{order_id}", headers={"x-amz-access-token": one}).status_code == 200
    assert fake.validation_errors == []


# --- operating the fake -------------------------------------------------------------------------------------


def test_control_endpoints_drive_the_fake_from_another_process(fake: FakeAmazon, client: httpx.Client) -> None:
    created = client.post("/_fake/orders", json={"n": 5, "countries": ["DE"], "statuses": ["UNSHIPPED"]})
    assert created.status_code == 201
    ids = created.json()["order_ids"]
    assert set(fake.orders()) == set(ids)
    seller = client.get("/_fake/seller").json()
    assert seller["refresh_token"] == fake.DEFAULT_SELLER.refresh_token
    assert client.post("/_fake/orders/" + ids[0], json={"status": "SHIPPED"}).json()["status"] == "SHIPPED"
    assert client.get(f"/_fake/orders/{ids[0]}/expected-label").json() == fake.expected_label(ids[0])
    assert client.post("/_fake/inject", json={"status": 503, "operation": "searchOrders"}).status_code == 204
    assert client.post("/_fake/delay", json={"seconds": 0.01}).status_code == 204
    headers = {"x-amz-access-token": lwa(client, fake)}
    assert client.get(SEARCH, params={"createdAfter": LONG_AGO}, headers=headers).status_code == 503
    assert client.post("/_fake/expire-tokens").status_code == 204
    assert client.get(SEARCH, params={"createdAfter": LONG_AGO}, headers=headers).status_code == 403
    assert client.post("/_fake/mutate-while-paging", json={"enabled": True}).status_code == 204
    added = client.post("/_fake/sellers", json={"selling_partner_id": "A4CONTROLLED", "marketplace_ids": [US]})
    assert added.status_code == 201 and added.json()["marketplace_ids"] == [US]
    stats = client.get("/_fake/stats").json()
    assert stats["orders"] == 5 and stats["calls"]["searchOrders"] == 2 and stats["validation_errors"] == []
    assert client.post("/_fake/orders", json={"n": 1, "statuses": ["LOST"]}).status_code == 400
    assert client.get("/_fake/nothing").status_code == 404
    assert client.get("/orders/v9/nothing").status_code == 404


def test_operation_names_are_the_models_operation_ids() -> None:
    names = operation_names()
    for name in ("lwaToken", "searchOrders", "getOrder", "getOrders", "getOrderV0", "getOrderAddress"):
        assert name in names
    assert "createRestrictedDataToken" in names


def test_the_fake_logs_no_buyer_data(fake: FakeAmazon, client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.generate_orders(30)
    token = lwa(client, fake)
    search_all(client, token, createdAfter=LONG_AGO, includedData=ALL_DATA)
    pii = fake.buyer_pii_strings()
    assert len(pii) > 30
    assert not [s for s in pii if s in caplog.text]
    assert not [r for r in caplog.records if r.name == "werkzeug" and r.levelno < logging.WARNING]
    assert not [s for s in pii if s in repr(fake.orders())]


def test_standalone_server_prints_its_urls_and_stops_on_sigint() -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.fake_amazon", "--port", "0", "--orders", "20", "--speedup", "10"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        base_url = next(line.split()[-1] for line in lines if line.startswith("SP-API endpoint"))
        assert any(FakeAmazon.DEFAULT_SELLER.refresh_token in line for line in lines)
        stats = json.loads(httpx.get(f"{base_url}/_fake/stats", timeout=5).text)
        assert stats["orders"] == 20 and stats["speedup"] == 10
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
