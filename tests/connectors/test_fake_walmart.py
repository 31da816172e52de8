"""The fake Walmart behaves like Walmart's Token and Orders APIs where a connector can tell, on Walmart's schemas."""

from __future__ import annotations

import base64
import json
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator

from connectors.fake_amazon import FakeClock
from connectors.fake_walmart import TRICKY, FakeWalmart, FakeWalmartError, models
from connectors.fake_walmart.marketplace import format_date

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LONG_AGO = "2020-01-01T00:00:00Z"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWalmart]:
    with FakeWalmart(seed=3, clock=clock) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


def _headers(token: str | None = None) -> dict[str, str]:
    headers = {"WM_QOS.CORRELATION_ID": str(uuid.uuid4()), "WM_SVC.NAME": "Walmart Marketplace"}
    if token is not None:
        headers["WM_SEC.ACCESS_TOKEN"] = token
    return headers


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _token(fake: FakeWalmart) -> str:
    seller = fake.DEFAULT_SELLER
    answer = httpx.post(
        fake.token_url,
        data={"grant_type": "client_credentials"},
        headers={**_headers(), "Authorization": _basic(seller.client_id, seller.client_secret)},
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _all_pages(fake: FakeWalmart, token: str, query: str) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    url: str | None = f"{fake.base_url}/v3/orders?{query}"
    while url is not None:
        answer = httpx.get(url, headers=_headers(token))
        assert answer.status_code == 200, answer.text
        body = answer.json()["list"]
        orders.extend(body["elements"]["order"])
        cursor = body["meta"].get("nextCursor")
        url = f"{fake.base_url}/v3/orders{cursor}" if cursor else None
    return orders


# --- the documents ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filename", [models.ORDERS_FILE, models.AUTH_FILE])
def test_the_repaired_walmart_documents_pass_strict_openapi_validation(filename: str) -> None:
    errors = [list(e.path)[:4] for e in OpenAPIV30SpecValidator(models.load_spec(filename)).iter_errors()]
    assert errors == []


@pytest.mark.parametrize("filename", [models.ORDERS_FILE, models.AUTH_FILE])
def test_the_files_as_walmart_publishes_them_fail_validation_so_the_repairs_are_needed(filename: str) -> None:
    raw = models.raw_spec(filename)
    assert "version" not in raw["info"]
    raw["info"]["version"] = models.SPEC_VERSION
    assert any(True for _ in OpenAPIV30SpecValidator(raw).iter_errors())


def test_the_documented_order_line_statuses_are_the_ones_the_fake_knows() -> None:
    assert models.order_statuses()[:5] == ("Created", "Acknowledged", "Shipped", "Delivered", "Cancelled")


def test_walmarts_own_get_an_order_examples_lack_the_required_customer_email_at_the_top_level() -> None:
    spec = models.load_spec(models.ORDERS_FILE)
    content = spec["paths"]["/v3/orders/{purchaseOrderId}"]["get"]["responses"]["200"]["content"]["application/json"]
    for example in content["examples"].values():
        problems = models.schema_errors("getAnOrder", 200, example["value"])
        assert "getAnOrder 200: / fails required" in problems


# --- tokens -------------------------------------------------------------------------------------------------


def test_a_client_credentials_token_lasts_900_seconds_and_opens_the_orders_api(
    fake: FakeWalmart, clock: FakeClock
) -> None:
    seller = fake.DEFAULT_SELLER
    answer = httpx.post(
        fake.token_url,
        data={"grant_type": "client_credentials"},
        headers={**_headers(), "Authorization": _basic(seller.client_id, seller.client_secret)},
    )
    body = answer.json()
    assert (answer.status_code, body["token_type"], body["expires_in"]) == (200, "Bearer", 900)
    assert httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(body["access_token"])).status_code == 200
    clock.advance(899)
    assert httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(body["access_token"])).status_code == 200
    clock.advance(1)
    expired = httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(body["access_token"]))
    assert expired.status_code == 401
    assert expired.json()["errors"][0]["code"] == "UNAUTHORIZED.GMP_GATEWAY_API"


@pytest.mark.parametrize(
    ("authorization", "form"),
    [
        ("wrong", {"grant_type": "client_credentials"}),
        (None, {"grant_type": "client_credentials"}),
        ("right", {"grant_type": "refresh_token"}),
    ],
)
def test_the_token_api_refuses_a_wrong_key_a_missing_header_and_another_grant(
    fake: FakeWalmart, authorization: str | None, form: dict[str, str]
) -> None:
    seller = fake.DEFAULT_SELLER
    headers = _headers()
    if authorization == "right":
        headers["Authorization"] = _basic(seller.client_id, seller.client_secret)
    elif authorization == "wrong":
        headers["Authorization"] = _basic(seller.client_id, "not-the-secret")
    answer = httpx.post(fake.token_url, data=form, headers=headers)
    assert answer.status_code in (400, 401)
    assert "access_token" not in answer.text


def test_every_call_needs_a_correlation_id_and_a_service_name(fake: FakeWalmart) -> None:
    token = _token(fake)
    answer = httpx.get(f"{fake.base_url}/v3/orders", headers={"WM_SEC.ACCESS_TOKEN": token})
    assert answer.status_code == 400
    assert "WM_QOS.CORRELATION_ID" in answer.json()["errors"][0]["info"]


def test_expire_tokens_ends_every_token_issued_so_far(fake: FakeWalmart) -> None:
    token = _token(fake)
    fake.expire_tokens()
    assert httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(token)).status_code == 401
    assert httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(_token(fake))).status_code == 200


# --- orders and paging --------------------------------------------------------------------------------------


def test_paging_with_next_cursor_serves_every_changed_order_once_in_last_modified_order(fake: FakeWalmart) -> None:
    ids = fake.generate_orders(230)
    orders = _all_pages(fake, _token(fake), f"lastModifiedStartDate={LONG_AGO}&limit=50")
    served = [o["purchaseOrderId"] for o in orders]
    assert sorted(served) == sorted(ids)
    changed = [max(line["statusDate"] for line in o["orderLines"]["orderLine"]) for o in orders]
    assert changed == sorted(changed)
    assert fake.calls["getAllOrders"] == 5


def test_the_cursor_is_a_query_string_carrying_the_window_and_limit_is_at_most_200(fake: FakeWalmart) -> None:
    fake.generate_orders(3)
    token = _token(fake)
    answer = httpx.get(f"{fake.base_url}/v3/orders?lastModifiedStartDate={LONG_AGO}&limit=2", headers=_headers(token))
    cursor = answer.json()["list"]["meta"]["nextCursor"]
    assert cursor.startswith("?limit=2&hasMoreElements=true&")
    assert "lastModifiedEndDate=" in cursor
    too_many = httpx.get(f"{fake.base_url}/v3/orders?limit=201", headers=_headers(token))
    assert too_many.status_code == 400


def test_last_modified_dates_select_the_orders_changed_in_the_window(fake: FakeWalmart, clock: FakeClock) -> None:
    old = fake.generate_orders(20)
    clock.advance(days=3)
    fake.update_order(old[0], status="Cancelled")
    since = format_date(clock() - timedelta(minutes=1))
    orders = _all_pages(fake, _token(fake), f"lastModifiedStartDate={since}")
    assert [o["purchaseOrderId"] for o in orders] == [old[0]]
    statuses = orders[0]["orderLines"]["orderLine"][0]["orderLineStatuses"]["orderLineStatus"]
    assert [s["status"] for s in statuses] == ["Cancelled"]


def test_every_order_carries_the_required_relay_email_and_a_shipping_info(fake: FakeWalmart) -> None:
    fake.generate_orders(10)
    for order in _all_pages(fake, _token(fake), f"lastModifiedStartDate={LONG_AGO}"):
        assert order["customerEmailId"].endswith("@relay.walmart.com")
        assert {"name", "address1", "city", "state", "postalCode", "country"} <= set(
            order["shippingInfo"]["postalAddress"]
        )


def test_get_an_order_answers_the_bare_order_as_its_schema_says(fake: FakeWalmart) -> None:
    order_id = fake.generate_orders(1)[0]
    answer = httpx.get(f"{fake.base_url}/v3/orders/{order_id}", headers=_headers(_token(fake)))
    assert answer.status_code == 200
    assert answer.json()["purchaseOrderId"] == order_id
    missing = httpx.get(f"{fake.base_url}/v3/orders/0000000000000", headers=_headers(_token(fake)))
    assert missing.status_code == 404


def test_tricky_recipients_are_served_as_typed_lone_surrogates_as_json_escapes(fake: FakeWalmart) -> None:
    fake.generate_orders(7 * len(TRICKY))
    names = {o["shippingInfo"]["postalAddress"]["name"] for o in _all_pages(fake, _token(fake), "")}
    assert {t["name"] for t in TRICKY} <= names
    phones = {o["shippingInfo"]["phone"] for o in _all_pages(fake, _token(fake), "")}
    assert "" in phones


def test_an_order_changed_between_pages_moves_to_the_end_and_shifts_the_offsets_as_at_walmart(
    fake: FakeWalmart,
) -> None:
    ids = fake.generate_orders(40, statuses=["Created"])
    fake.mutate_while_paging()
    served = [
        o["purchaseOrderId"] for o in _all_pages(fake, _token(fake), f"lastModifiedStartDate={LONG_AGO}&limit=10")
    ]
    moved, _, _ = fake.mutations[0]
    assert len(fake.mutations) == 2
    assert served.count(moved) == 2  # served on the first page, and again at the window's end
    assert len(set(ids) - set(served)) == 1  # the order the shift skipped: what a connector must guard against


# --- limits and faults --------------------------------------------------------------------------------------


def test_each_api_has_its_own_per_minute_bucket_and_answers_429_when_it_is_empty(clock: FakeClock) -> None:
    with FakeWalmart(clock=clock, rate_limits={"getAllOrders": 3}) as fake:
        token = _token(fake)
        codes = [httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(token)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        throttled = httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(token))
        assert throttled.json()["errors"][0]["code"] == "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"
        assert throttled.headers["x-current-token-count"] == "0"
        assert httpx.get(f"{fake.base_url}/v3/orders/1", headers=_headers(token)).status_code == 404
        assert fake.validation_errors == []


def test_the_documented_limit_is_5000_a_minute_and_speedup_scales_the_refill() -> None:
    fake = FakeWalmart(speedup=6)
    assert fake.rate_limit("getAllOrders") == (500.0, 5000)
    assert fake.min_calls_and_seconds("getAllOrders", 5500) == pytest.approx(1.0)
    assert fake.min_calls_and_seconds("tokenAPI", 10) == 0.0


def test_injected_faults_answer_walmarts_error_body_and_dropped_connections_close(fake: FakeWalmart) -> None:
    token = _token(fake)
    fake.inject(status=503, operation="getAllOrders")
    answer = httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(token))
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["severity"] == "ERROR"
    fake.inject_drop(operation="getAllOrders")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(token))
    fake.inject_delay(0.3, operation="getAllOrders")
    started = time.monotonic()
    assert httpx.get(f"{fake.base_url}/v3/orders", headers=_headers(token)).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(FakeWalmartError):
        fake.inject(status=418)


# --- truth for the tests ------------------------------------------------------------------------------------


def test_expected_label_gives_the_ship_to_in_labelvault_fields_and_none_once_cancelled(fake: FakeWalmart) -> None:
    order_id = fake.generate_orders(1, statuses=["Created"])[0]
    expected = fake.expected_label(order_id)
    assert expected["country_code"] == "US"
    assert expected["name"] in fake.buyer_pii_strings()
    fake.update_order(order_id, status="Cancelled")
    assert set(fake.expected_label(order_id).values()) == {None}


def test_buyer_pii_strings_include_the_relay_emails(fake: FakeWalmart) -> None:
    fake.generate_orders(3)
    emails = {o.customer_email for o in fake.orders().values()}
    assert emails <= fake.buyer_pii_strings()


def test_the_fake_logs_nothing_per_request(fake: FakeWalmart, caplog: pytest.LogCaptureFixture) -> None:
    fake.generate_orders(5)
    with caplog.at_level(logging.DEBUG):
        _all_pages(fake, _token(fake), f"lastModifiedStartDate={LONG_AGO}")
    assert not any(pii in caplog.text for pii in fake.buyer_pii_strings())
    assert "/v3/orders" not in caplog.text


def test_the_control_api_drives_the_fake_from_another_process(fake: FakeWalmart) -> None:
    created = httpx.post(f"{fake.base_url}/_fake/orders", json={"n": 2, "statuses": ["Created"]}).json()
    order_id = created["order_ids"][0]
    httpx.post(f"{fake.base_url}/_fake/orders/{order_id}", json={"status": "Shipped"})
    assert httpx.get(f"{fake.base_url}/_fake/orders/{order_id}").json()["line_statuses"] == ["Shipped"]
    stats = httpx.get(f"{fake.base_url}/_fake/stats").json()
    assert stats["orders"] == 2
    bad = httpx.post(f"{fake.base_url}/_fake/orders/{order_id}", json={"status": "Lost"})
    assert bad.status_code == 400


def test_python_m_connectors_fake_walmart_serves_until_interrupted() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "connectors.fake_walmart", "--port", "0", "--orders", "3"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert first.startswith("API endpoint")
            base = first.split()[-1]
            assert json.loads(httpx.get(f"{base}/_fake/stats").text)["orders"] == 3
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
