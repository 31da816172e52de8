"""The fake Shopify answers like the Admin GraphQL API where a connector can tell, and only with schema-valid bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from graphql import parse, validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connectors.fake_shopify import (
    FULL_ACCESS,
    LABEL_ACCESS,
    LEVEL_1,
    NO_ACCESS,
    CostBucket,
    FakeShopify,
    FakeShopifyError,
    ProtectedAccess,
    oauth_hmac,
    requested_cost,
    response_schema,
    schema,
    webhook_hmac,
)
from connectors.fake_shopify.data import LONG_LAST_NAME
from connectors.fake_shopify.schema import compile_check

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
ADDRESS_FIELDS = "name firstName lastName company address1 address2 city province provinceCode zip countryCodeV2 phone"
SYNC_QUERY = f"""
query Sync($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    edges {{
      cursor
      node {{
        id name updatedAt createdAt cancelledAt closed displayFulfillmentStatus
        fulfillmentOrders(first: 5) {{ nodes {{ status }} }}
        shippingAddress {{ {ADDRESS_FIELDS} }}
      }}
    }}
  }}
}}
"""
SINCE = "updated_at:>='2020-01-01T00:00:00Z'"


class Clock:
    """The platform's "now", moved by hand."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class Monotonic:
    """A wall clock for the buckets, moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wall() -> Monotonic:
    return Monotonic()


@pytest.fixture
def fake(clock: Clock, wall: Monotonic) -> Iterator[FakeShopify]:
    with FakeShopify(seed=3, clock=clock, bucket_clock=wall) as shop:
        yield shop
        assert shop.validation_errors == []
        assert shop.server_errors == []
        assert not shop.unserved_fields


def gql(
    fake: FakeShopify, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
) -> httpx.Response:
    return httpx.post(
        fake.graphql_url,
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token or fake.DEFAULT_TOKEN},
        timeout=30,
    )


def sync_all(fake: FakeShopify, *, first: int = 50, token: str | None = None) -> list[dict[str, Any]]:
    """Page through every order updated since 2020, as a connector's full sync would."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        answer = gql(fake, SYNC_QUERY, {"first": first, "after": after, "query": SINCE}, token=token)
        assert answer.status_code == 200
        body = answer.json()
        assert "errors" not in body, body.get("errors")
        page = body["data"]["orders"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


# --- the schema and the query's shape -----------------------------------------------------------------------


def test_the_vendored_schema_builds_and_a_label_query_validates_against_it() -> None:
    assert validate(schema(), parse(SYNC_QUERY)) == []
    errors = validate(schema(), parse("{ orders(first: 1) { edges { node { shippingAdress { city } } } } }"))
    (error,) = errors
    assert error.message.startswith(
        "Cannot query field 'shippingAdress' on type 'Order'. Did you mean 'shippingAddress'"
    )


def test_a_full_sync_pages_through_every_order_once_in_updated_at_order(fake: FakeShopify) -> None:
    ids = fake.generate_orders(120)
    nodes = sync_all(fake, first=50)
    assert sorted(n["id"] for n in nodes) == sorted(ids)
    assert len(nodes) == len(ids)
    stamps = [(n["updatedAt"], int(n["id"].rsplit("/", 1)[1])) for n in nodes]
    assert stamps == sorted(stamps)
    assert fake.calls["graphql"] == 3


def test_the_answer_has_exactly_the_query_s_shape_with_aliases(fake: FakeShopify) -> None:
    (gid,) = fake.generate_orders(1, statuses=["UNFULFILLED"])
    query = "query($id: ID!) { o: order(id: $id) { id shipTo: shippingAddress { city countryCodeV2 } } }"
    body = gql(fake, query, {"id": gid}).json()
    assert set(body) == {"data", "extensions"}
    assert set(body["data"]) == {"o"}
    assert set(body["data"]["o"]) == {"id", "shipTo"}
    assert set(body["data"]["o"]["shipTo"]) == {"city", "countryCodeV2"}
    assert body["data"]["o"]["id"] == gid


def test_served_fields_match_the_expected_label(fake: FakeShopify) -> None:
    ids = fake.generate_orders(30)
    by_id = {n["id"]: n for n in sync_all(fake)}
    for gid in ids:
        expected = fake.expected_label(gid)
        assert by_id[gid]["shippingAddress"] == expected


def test_a_query_the_schema_refuses_is_answered_200_with_the_validation_error_and_no_data(fake: FakeShopify) -> None:
    answer = gql(fake, "{ orders(first: 1) { edges { node { id buyerName } } } }")
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body
    assert body["errors"][0]["message"] == "Cannot query field 'buyerName' on type 'Order'."
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert gql(fake, "{ orders(first: 1) { ").json()["errors"][0]["message"].startswith("Syntax Error")


def test_the_answer_schema_refuses_a_wrongly_typed_or_misshapen_answer() -> None:
    document = parse("{ orders(first: 1) { edges { node { id updatedAt closed displayFulfillmentStatus } } } }")
    operation = document.definitions[0]
    check = Draft202012Validator(response_schema(document, operation))  # type: ignore[arg-type]
    cost = {
        "requestedQueryCost": 3,
        "actualQueryCost": 3,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1997.0, "restoreRate": 100.0},
    }
    node = {"id": "gid://shopify/Order/1", "updatedAt": "2026-03-02T12:00:00Z", "closed": False}
    good = {"data": {"orders": {"edges": [{"node": {**node, "displayFulfillmentStatus": "FULFILLED"}}]}}}
    assert check.is_valid({**good, "extensions": {"cost": cost}})
    for bad_node in (
        {**node, "displayFulfillmentStatus": "SHIPPED"},  # not an enum value
        {**node, "displayFulfillmentStatus": "FULFILLED", "updatedAt": "2026-03-02 12:00"},  # not Shopify's DateTime
        {**node, "displayFulfillmentStatus": "FULFILLED", "closed": None},  # Boolean! is never null
        {**node, "displayFulfillmentStatus": "FULFILLED", "extra": 1},  # a field the query didn't ask for
        node,  # a field it asked for is missing
    ):
        body = {"data": {"orders": {"edges": [{"node": bad_node}]}}, "extensions": {"cost": cost}}
        assert not check.is_valid(body), bad_node


_ANSWERS: dict[str, Any] = {}


def _real_answer() -> tuple[Any, dict[str, Any]]:
    """One real answer of the fake to the sync query (orders of every kind), and its query's JSON Schema."""
    if not _ANSWERS:
        with FakeShopify(seed=11, clock=Clock()) as fake:
            fake.generate_orders(8)
            fake.add_bad_order()
            fake.remove_shipping_address(fake.generate_orders(1)[0])
            body = gql(fake, SYNC_QUERY, {"first": 20, "query": SINCE}).json()
        document = parse(SYNC_QUERY)
        _ANSWERS["body"] = body
        _ANSWERS["schema"] = response_schema(document, document.definitions[0])  # type: ignore[arg-type]
    return _ANSWERS["body"], _ANSWERS["schema"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


_REPLACEMENTS = st.sampled_from([None, "", "x", 0, 1.5, True, [], {}, "2026-03-02T12:00:00Z", "FULFILLED", "OPEN"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_fast_answer_check_agrees_with_jsonschema_on_mutated_answers(data: st.DataObject) -> None:
    body, spec = _real_answer()
    reference = Draft202012Validator(spec)
    fast = compile_check(spec)
    mutated = json.loads(json.dumps(body))
    for _ in range(data.draw(st.integers(0, 3))):
        paths = _paths(mutated)
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            continue
        parent = mutated
        for step in path[:-1]:
            parent = parent[step]
        if action == "replace":
            parent[path[-1]] = data.draw(_REPLACEMENTS)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent["unasked"] = data.draw(_REPLACEMENTS)
    assert (fast(mutated, "body") is None) == reference.is_valid(mutated)


def test_the_fast_answer_check_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="does not know the keyword oneOf"):
        compile_check({"oneOf": [{"type": "string"}]})


def test_an_unknown_order_id_answers_null_and_a_malformed_one_an_error(fake: FakeShopify) -> None:
    query = "query($id: ID!) { order(id: $id) { id } }"
    assert gql(fake, query, {"id": "gid://shopify/Order/1"}).json()["data"] == {"order": None}
    body = gql(fake, query, {"id": "gid://shopify/Product/1"}).json()
    assert body["data"] == {"order": None}
    assert body["errors"][0]["message"] == "Invalid global id 'gid://shopify/Product/1'"


def test_an_order_of_another_shop_is_invisible_to_this_shop_s_token(fake: FakeShopify) -> None:
    other = fake.add_shop("other-shop.myshopify.com")
    (theirs,) = fake.generate_orders(1, shop=other.domain)
    mine = fake.generate_orders(2)
    assert gql(fake, "query($id: ID!) { order(id: $id) { id } }", {"id": theirs}).json()["data"] == {"order": None}
    assert sorted(n["id"] for n in sync_all(fake)) == sorted(mine)
    token = fake.custom_app_token(other.domain)
    assert [n["id"] for n in sync_all(fake, token=token)] == [theirs]


# --- search and pagination ----------------------------------------------------------------------------------


def test_updated_at_search_returns_only_orders_changed_since(fake: FakeShopify, clock: Clock) -> None:
    ids = fake.generate_orders(20)
    clock.now += timedelta(hours=1)
    fake.update_order(ids[3], fulfill=True)
    fake.update_order(ids[7], cancel=True)
    since = (NOW + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    body = gql(fake, SYNC_QUERY, {"first": 50, "query": f"updated_at:>='{since}'"}).json()
    nodes = [e["node"] for e in body["data"]["orders"]["edges"]]
    assert {n["id"] for n in nodes} == {ids[3], ids[7]}
    by_id = {n["id"]: n for n in nodes}
    assert by_id[ids[3]]["displayFulfillmentStatus"] == "FULFILLED"
    assert {f["status"] for f in by_id[ids[3]]["fulfillmentOrders"]["nodes"]} == {"CLOSED"}
    assert by_id[ids[7]]["cancelledAt"] == "2026-03-02T13:00:00Z"
    assert by_id[ids[7]]["shippingAddress"] is not None  # Shopify keeps a cancelled order's address


def test_an_unknown_search_field_is_ignored_with_shopify_s_warning(fake: FakeShopify) -> None:
    fake.generate_orders(3)
    body = gql(fake, SYNC_QUERY, {"first": 10, "query": "colour:red"}).json()
    assert len(body["data"]["orders"]["edges"]) == 3
    (note,) = body["extensions"]["search"]
    assert note["path"] == ["orders"]
    assert note["warnings"] == [{"field": "colour", "message": "Invalid search field for this query."}]


def test_a_cursor_from_elsewhere_is_refused(fake: FakeShopify) -> None:
    fake.generate_orders(3)
    body = gql(fake, SYNC_QUERY, {"first": 10, "after": "not-a-cursor"}).json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "Invalid cursor for current pagination sort."


def test_page_size_is_between_0_and_250_and_first_or_last_is_required(fake: FakeShopify) -> None:
    body = gql(fake, "{ orders(first: 251) { nodes { id } } }").json()
    assert body["errors"][0]["extensions"]["code"] in ("BAD_REQUEST", "MAX_COST_EXCEEDED")
    body = gql(fake, "{ orders { nodes { id } } }").json()
    assert body["errors"][0]["message"] == "you must provide one of first or last"


def test_orders_changed_while_a_sync_pages_are_all_seen_by_the_next_incremental_pass(
    fake: FakeShopify, clock: Clock
) -> None:
    ids = fake.generate_orders(60, statuses=["UNFULFILLED"])
    clock.now += timedelta(minutes=10)
    fake.mutate_while_paging()
    first_pass = {n["id"]: n for n in sync_all(fake, first=20)}
    assert set(first_pass) == set(ids)  # a changed upcoming order moves to the end and is still served
    assert len(fake.mutations) >= 2
    changed = {gid for gid, _, _ in fake.mutations}
    fake.mutate_while_paging(False)
    since = (NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    body = gql(fake, SYNC_QUERY, {"first": 100, "query": f"updated_at:>='{since}'"}).json()
    second = {e["node"]["id"]: e["node"] for e in body["data"]["orders"]["edges"]}
    assert set(second) == changed
    final = {gid: new for gid, _, new in fake.mutations}  # an order changed twice ends in its last state
    for gid, state in final.items():
        node = second[gid]
        assert ("CANCELLED" if node["cancelledAt"] else node["displayFulfillmentStatus"]) == state
        assert node["shippingAddress"] == fake.expected_label(gid)
    edited = [g for g in changed if "(changed by the buyer)" in (fake.expected_label(g)["address2"] or "")]
    assert edited  # buyers changed addresses too


def test_without_read_all_orders_only_the_last_60_days_are_visible(fake: FakeShopify, clock: Clock) -> None:
    clock.now = NOW - timedelta(days=80)
    old = fake.generate_orders(3)  # created in the week before 80 days ago
    clock.now = NOW
    recent = fake.generate_orders(3)
    assert {n["id"] for n in sync_all(fake)} == set(recent)
    everything = fake.custom_app_token(scopes=["read_orders", "read_all_orders", "read_assigned_fulfillment_orders"])
    assert {n["id"] for n in sync_all(fake, token=everything)} == set(old) | set(recent)


# --- cost and throttling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ shop { name } }", 1),
        ("{ orders(first: 50) { edges { node { id name } } } }", 2 + 50 * 1),
        ("{ orders(first: 50) { edges { node { id shippingAddress { city } } } } }", 2 + 50 * 2),
        ("{ orders(first: 10) { nodes { id fulfillmentOrders(first: 5) { nodes { status } } } } }", 2 + 10 * (1 + 7)),
        ("{ orders(first: 50) { pageInfo { hasNextPage } edges { cursor node { id } } } }", 2 + 50),
        ("query($n: Int!) { orders(first: $n) { nodes { id } } }", 2 + 20),
    ],
)
def test_requested_cost_follows_shopify_s_rules(query: str, cost: int) -> None:
    document = parse(query)
    assert requested_cost(document, document.definitions[0], {"n": 20}) == cost  # type: ignore[arg-type]


def test_every_answer_reports_cost_and_throttle_status_and_unused_cost_is_refunded(fake: FakeShopify) -> None:
    fake.generate_orders(10)
    body = gql(fake, SYNC_QUERY, {"first": 50, "query": SINCE}).json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 50 * (1 + 1 + 7)
    fulfillment_orders = sum(len(o.fulfillment_orders) for o in fake.orders().values())
    assert cost["actualQueryCost"] == 2 + 10 * (1 + 1 + 2) + fulfillment_orders  # what came back, not what was asked
    assert cost["throttleStatus"] == {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 2000.0 - cost["actualQueryCost"],
        "restoreRate": 100.0,
    }
    assert fake.cost_spent == cost["actualQueryCost"]


def test_an_empty_bucket_answers_throttled_with_http_200_until_it_restores(fake: FakeShopify, wall: Monotonic) -> None:
    fake.generate_orders(5)
    fake.drain_bucket(fake.DEFAULT_TOKEN)
    query = "{ orders(first: 50) { nodes { id } } }"  # requested 52
    answer = gql(fake, query)
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 0.0
    wall.t += 0.5  # 50 points restored: two short
    assert gql(fake, query).json()["errors"][0]["message"] == "Throttled"
    wall.t += 0.1
    assert "errors" not in gql(fake, query).json()
    assert fake.throttled["graphql"] == 2


def test_speedup_scales_the_restore_rate_but_not_the_bucket(wall: Monotonic) -> None:
    with FakeShopify(speedup=10, bucket_clock=wall) as fake:
        fake.drain_bucket(fake.DEFAULT_TOKEN)
        wall.t += 1
        status = fake.bucket(fake.DEFAULT_TOKEN).status()
        assert (status.maximum_available, status.currently_available, status.restore_rate) == (2000, 1000, 1000)
        assert fake.min_seconds(4000) == pytest.approx(2.0)
        assert fake.validation_errors == []


def test_plus_shops_restore_ten_times_faster_with_a_bucket_of_twenty_seconds(fake: FakeShopify) -> None:
    plus = fake.add_shop("big-shop.myshopify.com", plan="plus")
    token = fake.custom_app_token(plus.domain)
    status = fake.bucket(token).status()
    assert (status.maximum_available, status.restore_rate) == (20000, 1000)


def test_a_query_requesting_more_than_1000_points_is_refused_before_it_runs(fake: FakeShopify) -> None:
    assert "errors" not in gql(fake, "{ orders(first: 250) { nodes { id shippingAddress { city } } } }").json()  # 502
    heavy = "{ orders(first: 250) { nodes { id fulfillmentOrders(first: 10) { nodes { status } } } } }"
    body = gql(fake, heavy).json()
    assert body["errors"][0]["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": 2 + 250 * 13, "maxCost": 1000}
    assert "data" not in body


def test_injected_throttles_answer_throttled_whatever_the_bucket_holds(fake: FakeShopify) -> None:
    fake.inject_throttle(2)
    query = "{ shop { name } }"
    assert [gql(fake, query).json().get("errors", [{}])[0].get("message") for _ in range(3)] == [
        "Throttled",
        "Throttled",
        None,
    ]


def test_the_bucket_never_holds_more_than_its_maximum(wall: Monotonic) -> None:
    bucket = CostBucket(100, 2000, clock=wall)
    assert bucket.take(1500)
    wall.t += 60
    assert bucket.status().currently_available == 2000
    bucket.refund(500)
    assert bucket.status().currently_available == 2000
    assert not bucket.take(2001)


# --- protected customer data and scopes ---------------------------------------------------------------------


def test_level_1_apps_get_null_names_addresses_and_phones_with_access_denied_errors(fake: FakeShopify) -> None:
    (gid,) = fake.generate_orders(1, statuses=["UNFULFILLED"], countries=["US"])
    token = fake.custom_app_token(access=LEVEL_1)
    query = f"query($id: ID!) {{ order(id: $id) {{ id shippingAddress {{ {ADDRESS_FIELDS} }} }} }}"
    body = gql(fake, query, {"id": gid}, token=token).json()
    address = body["data"]["order"]["shippingAddress"]
    truth = fake.expected_label(gid)
    for key in ("name", "firstName", "lastName", "address1", "address2", "zip", "phone"):
        assert address[key] is None
    for key in ("company", "city", "province", "provinceCode", "countryCodeV2"):
        assert address[key] == truth[key]
    assert address == fake.expected_label(gid, access=LEVEL_1)
    denied = {tuple(e["path"]) for e in body["errors"] if e["extensions"]["code"] == "ACCESS_DENIED"}
    assert ("order", "shippingAddress", "address1") in denied
    assert ("order", "shippingAddress", "city") not in denied
    message = next(e["message"] for e in body["errors"] if e["path"][-1] == "phone")
    assert message.startswith("This app is not approved to use the phone field.")


def test_level_2_serves_exactly_the_approved_kinds_of_data(fake: FakeShopify) -> None:
    (gid,) = fake.generate_orders(1, statuses=["UNFULFILLED"], countries=["JP"])
    token = fake.custom_app_token(access=ProtectedAccess(2, frozenset({"name", "address"})))
    query = "query($id: ID!) { order(id: $id) { email shippingAddress { name address1 zip phone } } }"
    body = gql(fake, query, {"id": gid}, token=token).json()
    truth = fake.expected_label(gid)
    order = body["data"]["order"]
    assert order["shippingAddress"] == {
        "name": truth["name"],
        "address1": truth["address1"],
        "zip": truth["zip"],
        "phone": None,
    }
    assert order["email"] is None
    assert sorted(e["path"][-1] for e in body["errors"]) == ["email", "phone"]


def test_a_public_app_approved_for_the_label_fields_gets_no_e_mail(fake: FakeShopify) -> None:
    assert fake.DEFAULT_APP.access == LABEL_ACCESS
    assert LABEL_ACCESS.allows("address") and not LABEL_ACCESS.allows("email")
    assert FULL_ACCESS.allows("email")


def test_an_app_without_customer_data_access_is_denied_the_order_object(fake: FakeShopify) -> None:
    fake.generate_orders(2)
    token = fake.custom_app_token(access=NO_ACCESS)
    body = gql(fake, "{ orders(first: 5) { nodes { id } } }", token=token).json()
    assert body["data"] is None  # orders is non-null, so the denial nulls the whole answer
    assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert "not approved to access the Order object" in body["errors"][0]["message"]


def test_scopes_decide_what_a_token_may_read(fake: FakeShopify) -> None:
    fake.generate_orders(2)
    no_orders = fake.custom_app_token(scopes=["read_products"])
    body = gql(fake, "{ orders(first: 5) { nodes { id } } }", token=no_orders).json()
    assert body["data"] is None
    assert body["errors"][0]["message"].startswith("Access denied for orders field. Required access: `read_orders`")
    no_fulfillment = fake.custom_app_token(scopes=["read_orders"])
    body = gql(
        fake,
        "{ orders(first: 5) { nodes { id fulfillmentOrders(first: 1) { nodes { status } } } } }",
        token=no_fulfillment,
    ).json()
    assert body["data"] is None  # fulfillmentOrders is non-null: the denial nulls its way up, as at Shopify
    assert {e["extensions"]["code"] for e in body["errors"]} == {"ACCESS_DENIED"}
    assert body["errors"][0]["path"] == ["orders", "nodes", 0, "fulfillmentOrders"]
    body = gql(fake, "{ currentAppInstallation { accessScopes { handle } } }", token=no_fulfillment).json()
    assert body["data"]["currentAppInstallation"]["accessScopes"] == [{"handle": "read_orders"}]
    with pytest.raises(FakeShopifyError, match="unknown scope"):
        fake.custom_app_token(scopes=["read_everything"])


# --- tokens and faults --------------------------------------------------------------------------------------


def test_an_unknown_or_revoked_token_is_answered_401_as_shopify_does(fake: FakeShopify) -> None:
    answer = gql(fake, "{ shop { name } }", token="shpat_nope")
    assert answer.status_code == 401
    assert answer.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    token = fake.custom_app_token()
    assert gql(fake, "{ shop { name } }", token=token).status_code == 200
    fake.revoke_token(token)
    assert gql(fake, "{ shop { name } }", token=token).status_code == 401
    assert (
        gql(fake, "{ shop { myshopifyDomain } }").json()["data"]["shop"]["myshopifyDomain"] == fake.DEFAULT_SHOP.domain
    )
    fake.expire_tokens()
    assert gql(fake, "{ shop { name } }").status_code == 401


def test_a_token_only_opens_its_own_shop_s_host(fake: FakeShopify) -> None:
    fake.add_shop("elsewhere.myshopify.com")
    answer = httpx.post(
        fake.graphql_url,
        json={"query": "{ shop { name } }"},
        headers={"X-Shopify-Access-Token": fake.DEFAULT_TOKEN, "Host": "elsewhere.myshopify.com"},
    )
    assert answer.status_code == 401


def test_injected_faults_answer_once_each_then_the_api_answers_again(fake: FakeShopify) -> None:
    fake.inject(status=503, count=2)
    fake.inject(status=500, operation="access_token")
    statuses = [gql(fake, "{ shop { name } }").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    with pytest.raises(FakeShopifyError):
        fake.inject(status=418)


# --- OAuth install flow -------------------------------------------------------------------------------------


def test_the_install_flow_redirects_with_a_signed_code_that_buys_one_offline_token(fake: FakeShopify) -> None:
    fake.generate_orders(2)
    app = fake.DEFAULT_APP
    url = fake.authorize_url(
        scopes=["read_orders", "read_merchant_managed_fulfillment_orders"],
        redirect_uri="https://labelvault.example/shopify/callback",
        state="nonce-123",
    )
    answer = httpx.get(url)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://labelvault.example/shopify/callback"
    params = dict(parse_qsl(location.query))
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["state"] == "nonce-123"
    assert params["shop"] == fake.DEFAULT_SHOP.domain
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
    assert params["hmac"] == hmac.new(app.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert oauth_hmac(params, app.client_secret) == params["hmac"]

    exchange = {"client_id": app.client_id, "client_secret": app.client_secret, "code": params["code"]}
    granted = httpx.post(f"{fake.base_url}/admin/oauth/access_token", json=exchange)
    assert granted.status_code == 200
    token = granted.json()
    assert token["scope"] == "read_merchant_managed_fulfillment_orders,read_orders"
    assert token["access_token"].startswith("shpua_")
    assert len(sync_all(fake, token=token["access_token"])) == 2
    again = httpx.post(f"{fake.base_url}/admin/oauth/access_token", json=exchange)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"


def test_the_code_exchange_refuses_a_wrong_secret_and_accepts_a_form_body(fake: FakeShopify) -> None:
    app = fake.DEFAULT_APP
    location = httpx.get(fake.authorize_url(redirect_uri="https://x.example/cb", state="s")).headers["Location"]
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    wrong = httpx.post(
        f"{fake.base_url}/admin/oauth/access_token",
        json={"client_id": app.client_id, "client_secret": "shpss_wrong", "code": code},
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_client"
    right = httpx.post(
        f"{fake.base_url}/admin/oauth/access_token",
        data={"client_id": app.client_id, "client_secret": app.client_secret, "code": code},
    )
    assert right.status_code == 200


def test_authorize_refuses_unknown_apps_scopes_and_unlisted_redirects(fake: FakeShopify) -> None:
    strict = fake.add_app("strict", redirect_urls=["https://ok.example/cb"])
    base = {"redirect_uri": "https://ok.example/cb", "state": "s"}
    assert httpx.get(fake.authorize_url(client_id="nope", **base)).status_code == 400
    assert httpx.get(fake.authorize_url(client_id=strict.client_id, scopes=["read_minds"], **base)).status_code == 400
    assert httpx.get(fake.authorize_url(client_id=strict.client_id, **base)).status_code == 302
    elsewhere = {"redirect_uri": "https://evil.example/cb", "state": "s"}
    assert httpx.get(fake.authorize_url(client_id=strict.client_id, **elsewhere)).status_code == 400
    custom = fake.CUSTOM_APP.client_id  # custom apps have no install flow
    assert httpx.get(fake.authorize_url(client_id=custom, **base)).status_code == 400


# --- webhooks -----------------------------------------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    """The receiver's own access log would be the only log line of a webhook test: silence it."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A real HTTP endpoint recording what it is sent."""
    received: list[tuple[dict[str, str], bytes]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        received.append((dict(request.headers), request.get_data()))
        return Response("", status=200)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks", received
    finally:
        server.shutdown()
        server.server_close()


def test_privacy_webhooks_are_signed_with_the_app_secret_and_carry_shopify_s_bodies(
    fake: FakeShopify, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    ids = fake.generate_orders(12)
    order = fake.orders()[ids[0]]
    assert order.customer is not None
    for topic in ("customers/data_request", "customers/redact", "shop/redact"):
        (made,) = fake.deliver_webhook(url, topic, customer_of=None if topic == "shop/redact" else ids[0])
        assert made.status == 200
    secret = fake.DEFAULT_APP.client_secret.encode()
    bodies = {}
    for headers, raw in received:
        expected = base64.b64encode(hmac.new(secret, raw, hashlib.sha256).digest()).decode()
        assert headers["X-Shopify-Hmac-Sha256"] == expected == webhook_hmac(raw, fake.DEFAULT_APP.client_secret)
        assert headers["X-Shopify-Shop-Domain"] == fake.DEFAULT_SHOP.domain
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Shopify-Webhook-Id"]
        bodies[headers["X-Shopify-Topic"]] = json.loads(raw)
    theirs = sorted(o.legacy_id for o in fake.orders().values() if o.customer == order.customer)
    shop = {"shop_id": fake.DEFAULT_SHOP.shop_id, "shop_domain": fake.DEFAULT_SHOP.domain}
    customer = {"id": order.customer.legacy_id, "email": order.customer.email, "phone": order.customer.phone}
    assert bodies["shop/redact"] == shop
    assert bodies["customers/redact"] == {**shop, "customer": customer, "orders_to_redact": theirs}
    request = bodies["customers/data_request"]
    assert set(request) == {"shop_id", "shop_domain", "customer", "orders_requested", "data_request"}
    assert request["orders_requested"] == theirs
    assert isinstance(request["data_request"]["id"], int)


def test_duplicate_deliveries_repeat_the_webhook_id_and_bad_signatures_fail_verification(
    fake: FakeShopify, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    ids = fake.generate_orders(2)
    twice = fake.deliver_webhook(url, "customers/redact", customer_of=ids[1], duplicate=True)
    assert len(twice) == 2 and twice[0].webhook_id == twice[1].webhook_id
    assert received[0] == received[1]
    (forged,) = fake.deliver_webhook(url, "shop/redact", bad_signature=True)
    assert not forged.signed_correctly
    headers, raw = received[2]
    assert headers["X-Shopify-Hmac-Sha256"] != webhook_hmac(raw, fake.DEFAULT_APP.client_secret)
    with pytest.raises(FakeShopifyError, match="needs customer_of"):
        fake.deliver_webhook(url, "customers/redact")


def test_a_webhook_to_an_unreachable_url_is_recorded_with_status_0(fake: FakeShopify) -> None:
    (made,) = fake.deliver_webhook("http://127.0.0.1:9/none", "shop/redact", timeout=2)
    assert made.status == 0
    assert fake.webhook_deliveries == [made]


# --- recipients ---------------------------------------------------------------------------------------------


def test_generated_recipients_include_cjk_arabic_long_names_and_missing_phones(fake: FakeShopify) -> None:
    fake.generate_orders(60)
    addresses = [o.shipping_address for o in fake.orders().values() if o.shipping_address]
    names = [a.name for a in addresses]
    assert any("\u0600" <= ch <= "\u06ff" for n in names for ch in n)  # Arabic
    assert any("\u4e00" <= ch <= "\u9fff" for n in names for ch in n)  # CJK ideographs
    assert any("\uac00" <= ch <= "\ud7a3" for n in names for ch in n)  # Hangul
    assert any(LONG_LAST_NAME in n for n in names)
    assert any(a.phone is None for a in addresses)
    assert any(a.company for a in addresses)
    assert any(a.zip is None for a in addresses)  # the UAE has no postcodes


def test_a_bad_order_s_lone_surrogate_and_control_characters_are_served_as_json_escapes(fake: FakeShopify) -> None:
    gid = fake.add_bad_order()
    query = "query($id: ID!) { order(id: $id) { shippingAddress { name address1 lastName } } }"
    answer = gql(fake, query, {"id": gid})
    assert answer.status_code == 200
    assert b"\\ud83d" in answer.content and b"\\u0000" in answer.content
    address = json.loads(answer.content)["data"]["order"]["shippingAddress"]
    assert address == {"name": "Ana \ud83d Bug", "address1": "Main\x00 St\x07 12", "lastName": "\ud83d Bug"}


def test_buyer_pii_strings_cover_every_name_street_and_phone_served(fake: FakeShopify) -> None:
    fake.generate_orders(25)
    pii = fake.buyer_pii_strings()
    for node in sync_all(fake):
        address = node["shippingAddress"]
        for key in ("name", "address1", "phone"):
            if address[key]:
                assert address[key] in pii


def test_the_fake_logs_nothing_per_request_nor_per_webhook(
    fake: FakeShopify, caplog: pytest.LogCaptureFixture, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    ids = fake.generate_orders(5)
    with caplog.at_level(logging.DEBUG):
        gql(fake, "{ shop { name } }", token="shpat_wrong")
        started = len(caplog.records)  # the test's own client (httpx) logs its requests; the fake must not
        fake.deliver_webhook(receiver[0], "customers/data_request", customer_of=ids[0])
        fake.deliver_webhook(receiver[0], "customers/redact", customer_of=ids[0], bad_signature=True)
        assert caplog.records[started:] == []
        sync_all(fake)
    pii = fake.buyer_pii_strings()
    assert [r for r in caplog.records if r.name.startswith(("werkzeug", "connectors"))] == []
    assert not any(p in r.getMessage() for r in caplog.records for p in pii)


def test_a_field_the_fake_does_not_serve_is_an_error_it_counts(clock: Clock) -> None:
    with FakeShopify(clock=clock) as fake:
        fake.generate_orders(1)
        body = gql(fake, "{ orders(first: 1) { nodes { id totalWeight } } }").json()
        assert body["errors"][0]["extensions"]["code"] == "FAKE_UNSERVED"
        assert fake.unserved_fields == {"Order.totalWeight": 1}


def test_the_fake_runs_standalone_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.fake_shopify", "--port", "0", "--orders", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        endpoint = lines[0].split()[-1]
        assert endpoint.endswith("/admin/api/2026-07/graphql.json")
        token = FakeShopify.DEFAULT_TOKEN
        body = httpx.post(
            endpoint,
            json={"query": "{ orders(first: 10) { nodes { id } } }"},
            headers={"X-Shopify-Access-Token": token},
        ).json()
        assert len(body["data"]["orders"]["nodes"]) == 5
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


def test_expiring_offline_tokens_last_an_hour_and_a_refresh_rotates_both_tokens(
    fake: FakeShopify, clock: Clock
) -> None:
    app = fake.DEFAULT_APP
    location = httpx.get(fake.authorize_url(redirect_uri="https://x.example/cb", state="s")).headers["Location"]
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    token_url = f"{fake.base_url}/admin/oauth/access_token"
    creds = {"client_id": app.client_id, "client_secret": app.client_secret}
    granted = httpx.post(token_url, json={**creds, "code": code, "expiring": 1}).json()
    assert granted["expires_in"] == 3600
    assert granted["refresh_token_expires_in"] == 90 * 86400
    assert granted["refresh_token"].startswith("shprt_")
    assert gql(fake, "{ shop { name } }", token=granted["access_token"]).status_code == 200
    clock.now += timedelta(seconds=3600)
    assert gql(fake, "{ shop { name } }", token=granted["access_token"]).status_code == 401
    refresh = {**creds, "grant_type": "refresh_token", "refresh_token": granted["refresh_token"]}
    renewed = httpx.post(token_url, data=refresh).json()
    assert renewed["refresh_token"] != granted["refresh_token"]
    # The old refresh token still works until the token it bought is used (a lost answer can be retried) ...
    retried = httpx.post(token_url, data=refresh).json()
    assert gql(fake, "{ shop { name } }", token=retried["access_token"]).status_code == 200
    # ... and not after.
    assert httpx.post(token_url, data=refresh).json()["error"] == "invalid_grant"
    assert fake.token_grants == 3


def test_expire_tokens_leaves_refresh_tokens_good_and_uninstall_revokes_everything(fake: FakeShopify) -> None:
    granted = fake.install()
    app = fake.DEFAULT_APP
    token_url = f"{fake.base_url}/admin/oauth/access_token"
    refresh = {
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "grant_type": "refresh_token",
        "refresh_token": granted["refresh_token"],
    }
    fake.expire_tokens()
    assert gql(fake, "{ shop { name } }", token=granted["access_token"]).status_code == 401
    renewed = httpx.post(token_url, data=refresh)
    assert renewed.status_code == 200
    fake.uninstall()
    assert gql(fake, "{ shop { name } }", token=renewed.json()["access_token"]).status_code == 401
    again = {**refresh, "refresh_token": renewed.json()["refresh_token"]}
    assert httpx.post(token_url, data=again).json()["error"] == "invalid_grant"
    assert "expires_in" not in fake.install(expiring=False)


def test_nodes_refetches_orders_by_id_through_the_node_interface(fake: FakeShopify) -> None:
    ids = fake.generate_orders(3)
    other = fake.add_shop("someone-else.myshopify.com")
    (theirs,) = fake.generate_orders(1, shop=other.domain)
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Order { name updatedAt } } }"
    body = gql(fake, query, {"ids": [ids[0], theirs, "gid://shopify/Product/1", ids[2]]}).json()
    assert "errors" not in body
    nodes = body["data"]["nodes"]
    assert [n and n["id"] for n in nodes] == [ids[0], None, None, ids[2]]
    assert nodes[0]["__typename"] == "Order"
    assert nodes[0]["name"] == fake.orders()[ids[0]].name
    one = gql(fake, "query($id: ID!) { node(id: $id) { id ... on Order { closed } } }", {"id": ids[1]}).json()
    assert one["data"]["node"] == {"id": ids[1], "closed": fake.orders()[ids[1]].closed}


def test_another_api_version_is_refused_clearly(fake: FakeShopify) -> None:
    answer = httpx.post(
        f"{fake.base_url}/admin/api/2025-01/graphql.json",
        json={"query": "{ shop { name } }"},
        headers={"X-Shopify-Access-Token": fake.DEFAULT_TOKEN},
    )
    assert answer.status_code == 404
    assert answer.json() == {"errors": "The fake Shopify serves API version 2026-07 only."}


def test_the_bare_graphql_content_type_is_served_too(fake: FakeShopify) -> None:
    answer = httpx.post(
        fake.graphql_url,
        content="{ shop { name } }",
        headers={"X-Shopify-Access-Token": fake.DEFAULT_TOKEN, "Content-Type": "application/graphql"},
    )
    assert answer.json()["data"] == {"shop": {"name": fake.DEFAULT_SHOP.name}}
    junk = httpx.post(fake.graphql_url, content="{not json", headers={"X-Shopify-Access-Token": fake.DEFAULT_TOKEN})
    assert junk.status_code == 200
    assert junk.json()["errors"][0]["message"] == "Invalid JSON in request body."


def test_another_process_drives_the_fake_through_its_control_api(
    fake: FakeShopify, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    control = f"{fake.base_url}/_fake"
    shop = httpx.post(f"{control}/shops", json={"domain": "demo-shop.myshopify.com"}).json()
    ids = httpx.post(f"{control}/orders", json={"n": 4, "shop": "demo-shop.myshopify.com"}).json()["order_ids"]
    assert len(sync_all(fake, token=shop["token"])) == 4
    legacy = ids[0].rsplit("/", 1)[1]
    meta = httpx.post(f"{control}/orders/{legacy}", json={"cancel": True}).json()
    assert meta["cancelled"] is True
    assert "shippingAddress" not in json.dumps(meta)  # the control API's order facts hold no PII
    label = httpx.get(f"{control}/orders/{legacy}/expected-label").json()
    assert label == fake.expected_label(ids[0])
    granted = httpx.post(f"{control}/install", json={"scopes": ["read_orders"]}).json()
    assert granted["expires_in"] == 3600
    assert (
        httpx.post(f"{control}/access", json={"client_id": fake.DEFAULT_APP.client_id, "level": 1}).status_code == 204
    )
    assert fake.app().access == ProtectedAccess(1, frozenset({"name", "address", "phone", "email"}))
    sent = httpx.post(
        f"{control}/webhooks", json={"url": url, "topic": "customers/redact", "customer_of": ids[1], "duplicate": True}
    ).json()
    assert [d["status"] for d in sent["deliveries"]] == [200, 200]
    assert len(received) == 2
    assert httpx.post(f"{control}/throttle", json={"count": 1}).status_code == 204
    assert gql(fake, "{ shop { name } }").json()["errors"][0]["message"] == "Throttled"
    stats = httpx.get(f"{control}/stats").json()
    assert stats["throttled"] == {"graphql": 1}
    assert httpx.post(f"{control}/inject", json={"status": 418}).status_code == 400


def test_the_vendored_spec_keeps_its_licence_and_says_where_it_comes_from() -> None:
    folder = ROOT / "connectors" / "platform_specs" / "shopify"
    assert (folder / "LICENSE.dev-mcp").read_text().startswith("ISC License")
    readme = (folder / "README.md").read_text()
    assert "@shopify/dev-mcp" in readme and "LICENSE.dev-mcp" in readme
    assert "protected-customer-data" in (folder / "PROTECTED_CUSTOMER_DATA.md").read_text()


def test_a_sync_paced_by_throttle_status_takes_the_bucket_s_minimum_time_and_no_less(wall: Monotonic) -> None:
    """3,000 orders in pages of 250 at speedup 10, on a bucket clock the client moves as it waits."""
    with FakeShopify(speedup=10, seed=5, bucket_clock=wall) as fake:
        fake.generate_orders(3000)
        query = "query($after: String) { orders(first: 250, after: $after, sortKey: UPDATED_AT) { " + (
            "pageInfo { hasNextPage endCursor } nodes { id shippingAddress { city } } } }"
        )
        seen: list[str] = []
        spent = throttled = 0
        after = None
        started = wall.t
        while True:
            body = gql(fake, query, {"after": after}).json()
            cost = body["extensions"]["cost"]
            if "errors" in body:
                assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
                throttled += 1
                status = cost["throttleStatus"]
                wall.t += (cost["requestedQueryCost"] - status["currentlyAvailable"]) / status["restoreRate"] + 0.001
                continue
            spent += cost["actualQueryCost"]
            page = body["data"]["orders"]
            seen += [n["id"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        elapsed = wall.t - started
        assert sorted(seen) == sorted(fake.orders())
        assert spent == fake.cost_spent == 12 * (2 + 250 * 2)
        floor = fake.min_seconds(spent)
        assert floor == pytest.approx((6024 - 2000) / 1000)
        assert throttled > 0
        assert floor <= elapsed <= floor + 0.1  # waiting only as long as throttleStatus says is enough
        assert fake.validation_errors == [] and fake.server_errors == []


def test_skipped_fields_fragments_and_introspection_are_served_in_the_query_s_shape(fake: FakeShopify) -> None:
    fake.generate_orders(2)
    query = """
    query($withPhone: Boolean!) {
      __typename
      orders(first: 2) { nodes { ...Label id @skip(if: true) } }
      t: __type(name: "Order") { name }
    }
    fragment Label on Order { name shippingAddress { city phone @include(if: $withPhone) } }
    """
    body = gql(fake, query, {"withPhone": False}).json()
    assert "errors" not in body
    node = body["data"]["orders"]["nodes"][0]
    assert set(node) == {"name", "shippingAddress"}
    assert set(node["shippingAddress"]) == {"city"}
    assert body["data"]["t"] == {"name": "Order"}
    assert body["data"]["__typename"] == "QueryRoot"
    answer = httpx.post(
        fake.graphql_url, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": fake.DEFAULT_TOKEN}
    )
    assert answer.headers["X-Shopify-API-Version"] == "2026-07"


def test_missing_or_mistyped_variables_are_the_client_s_error(fake: FakeShopify) -> None:
    body = gql(fake, SYNC_QUERY, {"after": None}).json()
    assert body.get("data") is None
    assert "$first" in body["errors"][0]["message"]
    body = gql(fake, SYNC_QUERY, {"first": "ten"}).json()
    assert body.get("data") is None
    assert "$first" in body["errors"][0]["message"]
    assert fake.server_errors == []


def test_order_life_partial_fulfilment_holds_closing_and_a_missing_address(fake: FakeShopify, clock: Clock) -> None:
    a, b, c = fake.generate_orders(3, statuses=["UNFULFILLED"])
    clock.now += timedelta(minutes=1)
    fake.update_order(a, partially_fulfill=True)
    fake.update_order(b, hold=True)
    fake.update_order(c, fulfill=True, close=True)
    fake.remove_shipping_address(b)
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Order { displayFulfillmentStatus closed updatedAt " + (
        "fulfillmentOrders(first: 5) { nodes { status } } shippingAddress { city } } } }"
    )
    got = gql(fake, query, {"ids": [a, b, c]}).json()["data"]["nodes"]
    assert got[0]["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert [f["status"] for f in got[0]["fulfillmentOrders"]["nodes"]] == ["CLOSED", "OPEN"]
    assert got[1]["displayFulfillmentStatus"] == "ON_HOLD"
    assert got[1]["shippingAddress"] is None
    assert set(fake.expected_label(b).values()) == {None}
    assert got[2]["closed"] is True and got[2]["displayFulfillmentStatus"] == "FULFILLED"
    assert {n["updatedAt"] for n in got} == {"2026-03-02T12:01:00Z"}
    fake.update_order(b, release=True)
    assert fake.orders()[b].display_status == "UNFULFILLED"
    with pytest.raises(FakeShopifyError, match="unknown order"):
        fake.update_order("gid://shopify/Order/1", fulfill=True)
    with pytest.raises(FakeShopifyError, match="not a Shopify order id"):
        fake.update_order("#1001", fulfill=True)


# --- what bench.fleet drives: latency, a shop per account, new orders ----------------------------------------


def test_latency_delays_every_graphql_and_token_call_but_not_the_control_api(clock: Clock) -> None:
    with FakeShopify(seed=3, clock=clock, latency=0.2) as fake:
        started = time.monotonic()
        assert gql(fake, "{ shop { name } }").status_code == 200
        query_took = time.monotonic() - started
        started = time.monotonic()
        refused = httpx.post(f"{fake.base_url}/admin/oauth/access_token", json={"client_id": "nobody"})
        token_took = time.monotonic() - started
        assert refused.status_code == 400  # answered as without latency, only later
        assert query_took >= 0.2 and token_took >= 0.2
        stats = httpx.get(f"{fake.base_url}/_fake/stats").json()
        assert stats["latency"] == 0.2 and stats["calls"] == {"graphql": 1, "access_token": 1}
        assert fake.validation_errors == [] and fake.server_errors == []
    with pytest.raises(ValueError, match="latency"):
        FakeShopify(latency=-1)


def test_a_shop_added_over_the_control_api_has_its_own_token_bucket_and_orders(fake: FakeShopify, clock: Clock) -> None:
    control = f"{fake.base_url}/_fake"
    one = httpx.post(f"{control}/shops", json={"domain": "fleet-one.myshopify.com", "orders": 3}).json()
    two = httpx.post(f"{control}/shops", json={"domain": "fleet-two.myshopify.com", "orders": 2}).json()
    assert one["token"].startswith("shpat_") and len(one["order_ids"]) == 3
    assert {n["id"] for n in sync_all(fake, token=one["token"])} == set(one["order_ids"])
    assert len(sync_all(fake, token=two["token"])) == 2
    assert fake.bucket(one["token"]) is not fake.bucket(two["token"])  # shops are separate buckets
    # One new order for a shop, placed and updated within the second before now: the next incremental
    # search (updated since the last sync) finds it and nothing else.
    start = (clock.now - timedelta(seconds=1)).isoformat()
    (new,) = httpx.post(f"{control}/orders", json={"n": 1, "shop": one["domain"], "start": start}).json()["order_ids"]
    since = f"updated_at:>='{(clock.now - timedelta(seconds=2)).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    body = gql(fake, SYNC_QUERY, {"first": 50, "query": since}, token=one["token"]).json()
    assert [e["node"]["id"] for e in body["data"]["orders"]["edges"]] == [new]
    assert body["data"]["orders"]["edges"][0]["node"]["updatedAt"] == clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    stats = httpx.get(f"{control}/stats").json()
    assert {"calls", "throttled", "validation_errors", "server_errors"} <= set(stats)
    assert stats["orders"] == 6 and stats["throttled"] == {}
    refused = httpx.post(f"{control}/shops", json={"domain": "fleet-three.myshopify.com", "orders": -1})
    assert refused.status_code == 400
    assert httpx.post(f"{control}/shops", json={"domain": "fleet-one.myshopify.com"}).status_code == 400


def test_the_cli_takes_a_latency_per_call(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "connectors.fake_shopify", "--port", "0", "--orders", "0", "--latency", "0.25"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        endpoint = lines[0].split()[-1]
        started = time.monotonic()
        answer = httpx.post(
            endpoint, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": FakeShopify.DEFAULT_TOKEN}
        )
        assert answer.status_code == 200 and time.monotonic() - started >= 0.25
        assert httpx.get(lines[2].split()[-1], timeout=5).json()["latency"] == 0.25
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
    bad = subprocess.run([*argv[:-1], "-1"], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "--latency" in bad.stderr
