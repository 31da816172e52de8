"""The fake eBay behaves like eBay where a connector can tell, and only serves bodies eBay's document allows."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.fake_amazon import FakeClock
from connectors.fake_ebay import SCOPE_FULFILLMENT, TRICKY_NAMES, DailyQuota, FakeEbay, FakeEbayError
from connectors.fake_ebay.models import schema_errors

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ORDERS = "/sell/fulfillment/v1/order"
LONG_AGO = "2020-01-01T00:00:00.000Z"


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeEbay]:
    with FakeEbay(seed=7, clock=clock) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


def basic(fake: FakeEbay, secret: str | None = None) -> dict[str, str]:
    pair = f"{fake.app.client_id}:{secret if secret is not None else fake.app.client_secret}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def refresh(fake: FakeEbay, refresh_token: str | None = None, **form: str) -> httpx.Response:
    token = refresh_token or fake.seller().refresh_token
    return httpx.post(
        fake.token_url, data={"grant_type": "refresh_token", "refresh_token": token, **form}, headers=basic(fake)
    )


def access(fake: FakeEbay) -> dict[str, str]:
    answer = refresh(fake)
    assert answer.status_code == 200
    return {"Authorization": "Bearer " + answer.json()["access_token"]}


def window(fake: FakeEbay, end: datetime | None = None) -> str:
    return f"lastmodifieddate:[{LONG_AGO}..{stamp(end or fake.now())}]"


def get_orders(fake: FakeEbay, headers: dict[str, str], **params: str) -> httpx.Response:
    return httpx.get(fake.base_url + ORDERS, params=params, headers=headers)


def page_all(fake: FakeEbay, headers: dict[str, str], *, limit: int = 200, filter_: str | None = None) -> list[str]:
    """Naive offset paging, following ``next`` as eBay's own examples do."""
    url: str | None = fake.base_url + ORDERS
    params: dict[str, str] | None = {"filter": filter_ or window(fake), "limit": str(limit)}
    seen: list[str] = []
    while url:
        body = httpx.get(url, params=params, headers=headers).json()
        seen += [o["orderId"] for o in body["orders"]]
        url, params = body.get("next"), None
    return seen


def test_get_orders_pages_by_limit_and_offset_and_says_the_total_and_the_next_href(fake: FakeEbay) -> None:
    ids = fake.generate_orders(450)
    headers = access(fake)
    first = get_orders(fake, headers, filter=window(fake), limit="200").json()
    assert (first["total"], first["limit"], first["offset"], len(first["orders"])) == (450, 200, 0, 200)
    assert "prev" not in first
    assert parse_qs(urlsplit(first["next"]).query)["offset"] == ["200"]
    last = httpx.get(first["next"].replace("offset=200", "offset=400"), headers=headers).json()
    assert (len(last["orders"]), "next" in last, "prev" in last) == (50, False, True)
    assert sorted(page_all(fake, headers)) == sorted(ids)


def test_limit_defaults_to_50_and_more_than_200_is_refused(fake: FakeEbay) -> None:
    fake.generate_orders(60)
    headers = access(fake)
    assert len(get_orders(fake, headers, filter=window(fake)).json()["orders"]) == 50
    refused = get_orders(fake, headers, limit="201")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["errorId"] == 31100
    assert get_orders(fake, headers, offset="-1").json()["errors"][0]["errorId"] == 31000


def test_the_lastmodifieddate_window_is_inclusive_and_may_not_reach_into_the_future(fake: FakeEbay) -> None:
    fake.generate_orders(30)
    order = next(iter(fake.orders().values()))
    edge = order.last_modified.strftime("%Y-%m-%dT%H:%M:%S.") + f"{order.last_modified.microsecond // 1000:03d}Z"
    headers = access(fake)
    exact = get_orders(fake, headers, filter=f"lastmodifieddate:[{edge}..{edge}]").json()
    assert order.order_id in [o["orderId"] for o in exact["orders"]]
    future = get_orders(fake, headers, filter=window(fake, fake.now() + timedelta(minutes=1)))
    assert (future.status_code, future.json()["errors"][0]["errorId"]) == (400, 30850)
    missing = get_orders(fake, headers, filter=f"lastmodifieddate:[..{stamp(fake.now())}]")
    assert missing.json()["errors"][0]["errorId"] == 30820
    assert get_orders(fake, headers, filter="modified:[x..]").json()["errors"][0]["errorId"] == 30700
    naive = get_orders(fake, headers, filter="lastmodifieddate:[2026-03-01T00:00:00..]")
    assert naive.json()["errors"][0]["errorId"] == 30810


def test_creationdate_wins_when_both_dates_are_given_and_status_filters_combine(fake: FakeEbay) -> None:
    fake.generate_orders(40)
    headers = access(fake)
    both = f"creationdate:[{LONG_AGO}..],lastmodifieddate:[{stamp(fake.now())}..]"
    assert get_orders(fake, headers, filter=both, limit="200").json()["total"] == 40
    open_only = f"{window(fake)},orderfulfillmentstatus:{{NOT_STARTED|IN_PROGRESS}}"
    served = get_orders(fake, headers, filter=open_only, limit="200").json()["orders"]
    assert served and {o["orderFulfillmentStatus"] for o in served} <= {"NOT_STARTED", "IN_PROGRESS"}


def test_get_order_serves_one_order_of_the_token_s_seller_and_404s_others(fake: FakeEbay) -> None:
    mine = fake.generate_orders(3)
    fake.add_seller("someone_else")
    theirs = fake.generate_orders(1, seller="someone_else")
    headers = access(fake)
    assert httpx.get(f"{fake.base_url}{ORDERS}/{mine[0]}", headers=headers).json()["orderId"] == mine[0]
    assert httpx.get(f"{fake.base_url}{ORDERS}/{theirs[0]}", headers=headers).status_code == 404


def test_the_refresh_grant_needs_the_app_s_basic_credentials_and_gives_a_two_hour_token(fake: FakeEbay) -> None:
    answer = refresh(fake)
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert set(answer.json()) == {"access_token", "expires_in", "token_type"}
    assert (answer.json()["expires_in"], answer.json()["token_type"]) == (7200, "User Access Token")
    wrong = httpx.post(
        fake.token_url,
        data={"grant_type": "refresh_token", "refresh_token": fake.seller().refresh_token},
        headers=basic(fake, "not-the-secret"),
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert refresh(fake, "v^1.1#unknown").json()["error"] == "invalid_grant"
    assert refresh(fake, scope="https://api.ebay.com/oauth/api_scope/sell.finances").json()["error"] == "invalid_scope"


def test_access_tokens_expire_after_two_hours_and_an_expired_grant_is_invalid_grant(
    fake: FakeEbay, clock: FakeClock
) -> None:
    headers = access(fake)
    assert get_orders(fake, headers).status_code == 200
    clock.advance(hours=2)
    expired = get_orders(fake, headers)
    assert (expired.status_code, expired.json()["errors"][0]["errorId"]) == (401, 1001)
    headers = access(fake)
    fake.expire_tokens()
    assert get_orders(fake, headers).status_code == 401
    fake.expire_refresh_tokens()
    assert refresh(fake).json()["error"] == "invalid_grant"


def test_the_refresh_token_itself_runs_out_after_eighteen_months(fake: FakeEbay, clock: FakeClock) -> None:
    clock.advance(days=547, hours=12)
    assert refresh(fake).status_code == 400


def test_consent_redirects_to_the_runame_with_state_and_a_single_use_code(fake: FakeEbay) -> None:
    consent = httpx.get(
        fake.authorize_url,
        params={
            "client_id": fake.app.client_id,
            "redirect_uri": fake.app.ru_name,
            "response_type": "code",
            "scope": SCOPE_FULFILLMENT,
            "state": "nonce-123",
        },
    )
    assert consent.status_code == 302
    location = urlsplit(consent.headers["Location"])
    assert location.geturl().startswith(fake.app.accept_url)
    query = parse_qs(location.query)
    assert query["state"] == ["nonce-123"]
    form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": fake.app.ru_name}
    exchanged = httpx.post(fake.token_url, data=form, headers=basic(fake))
    assert exchanged.status_code == 200
    body = exchanged.json()
    assert set(body) == {"access_token", "expires_in", "refresh_token", "refresh_token_expires_in", "token_type"}
    assert body["refresh_token_expires_in"] == 47304000
    assert refresh(fake, body["refresh_token"]).status_code == 200
    again = httpx.post(fake.token_url, data=form, headers=basic(fake))
    assert again.json()["error"] == "invalid_grant"
    bad_uri = {**form, "code": fake.consent_code(), "redirect_uri": "another-runame"}
    assert httpx.post(fake.token_url, data=bad_uri, headers=basic(fake)).json()["error"] == "invalid_grant"
    stranger = httpx.get(fake.authorize_url, params={"client_id": "x", "redirect_uri": fake.app.ru_name})
    assert stranger.status_code == 400


def test_an_authorization_code_lives_five_minutes(fake: FakeEbay, clock: FakeClock) -> None:
    code = fake.consent_code()
    clock.advance(minutes=5)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": fake.app.ru_name}
    assert httpx.post(fake.token_url, data=form, headers=basic(fake)).json()["error"] == "invalid_grant"


def test_a_token_without_a_fulfillment_scope_is_refused_with_403(fake: FakeEbay) -> None:
    code = fake.consent_code(scopes=["https://api.ebay.com/oauth/api_scope/sell.finances"])
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": fake.app.ru_name}
    token = httpx.post(fake.token_url, data=form, headers=basic(fake)).json()["access_token"]
    refused = get_orders(fake, {"Authorization": f"Bearer {token}"})
    assert (refused.status_code, refused.json()["errors"][0]["errorId"]) == (403, 1100)


def test_the_app_s_daily_quota_answers_429_when_spent_and_comes_back_with_the_next_day(clock: FakeClock) -> None:
    # speedup 28800: a quota's "day" is three seconds of wall time (half a second was too short for four
    # calls on a loaded machine: the window ran out before the fourth).
    with FakeEbay(seed=1, clock=clock, daily_calls=3, speedup=28800) as fake:
        headers = access(fake)
        answers = [get_orders(fake, headers).status_code for _ in range(4)]
        assert answers[:3] == [200, 200, 200]
        assert answers[3] == 429
        assert fake.throttled["getOrders"] >= 1
        time.sleep(3.1)
        assert get_orders(fake, headers).status_code == 200
        assert fake.validation_errors == []


def test_a_daily_quota_counts_calls_per_fixed_window() -> None:
    now = [0.0]
    quota = DailyQuota(2, window=10.0, clock=lambda: now[0])
    assert [quota.take(), quota.take(), quota.take()] == [True, True, False]
    now[0] = 25.0
    assert quota.remaining == 2
    assert quota.take()
    assert quota.remaining == 1


def test_orders_modified_while_a_client_pages_leave_the_window_and_shift_the_offsets(
    fake: FakeEbay, clock: FakeClock
) -> None:
    ids = fake.generate_orders(500)
    headers = access(fake)
    end = fake.now()
    clock.advance(seconds=30)  # the window ends in the past, as a connector's does
    fake.mutate_while_paging()
    seen = page_all(fake, headers, filter_=window(fake, end))
    assert len(fake.mutations) == 2
    missed = set(ids) - set(seen)
    modified = {order_id for order_id, _, _ in fake.mutations}
    # The two modified orders left the window; one order behind the first moved up into a page already
    # read: naive offset paging loses an order nobody changed. A connector must notice the total shrink.
    assert modified & missed
    assert missed - modified
    after = get_orders(fake, headers, filter=window(fake, end), limit="200").json()["total"]
    assert after == 498


def test_cancelled_and_fulfilled_orders_show_their_states(fake: FakeEbay) -> None:
    ids = fake.generate_orders(4, statuses=["NOT_STARTED"])
    fake.update_order(ids[0], cancel="CANCELED")
    fake.update_order(ids[1], fulfillment="FULFILLED")
    fake.update_order(ids[2], fulfillment="IN_PROGRESS")
    headers = access(fake)
    served = {o["orderId"]: o for o in get_orders(fake, headers, filter=window(fake)).json()["orders"]}
    assert served[ids[0]]["cancelStatus"]["cancelState"] == "CANCELED"
    assert served[ids[1]]["orderFulfillmentStatus"] == "FULFILLED"
    assert served[ids[2]]["orderFulfillmentStatus"] == "IN_PROGRESS"
    assert served[ids[3]]["cancelStatus"]["cancelState"] == "NONE_REQUESTED"
    assert fake.expected_label(ids[0]) == dict.fromkeys(fake.expected_label(ids[3]))
    with pytest.raises(FakeEbayError):
        fake.update_order(ids[0], fulfillment="SHIPPED")


def test_tricky_recipients_are_served_as_typed_and_a_lone_surrogate_as_a_json_escape(fake: FakeEbay) -> None:
    ids = fake.generate_orders(40)
    fake.edit_ship_to(ids[0], full_name="Jo\ud83dhn", phone=None)
    headers = access(fake)
    raw = httpx.get(f"{fake.base_url}{ORDERS}/{ids[0]}", headers=headers)
    assert "\\ud83d" in raw.text
    ship_to = raw.json()["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"]
    assert ship_to["fullName"] == "Jo\ud83dhn"
    assert "primaryPhone" not in ship_to
    names = {o.ship_to.full_name for o in fake.orders().values()}
    assert len(names & set(TRICKY_NAMES)) >= 4
    assert any(len(n) > 190 for n in names)
    assert {o.country_code for o in fake.orders().values()} >= {"CN", "JP", "SA"}


def test_the_buyer_s_email_and_registration_address_are_served_apart_from_the_ship_to(fake: FakeEbay) -> None:
    ids = fake.generate_orders(6)
    headers = access(fake)
    order = httpx.get(f"{fake.base_url}{ORDERS}/{ids[0]}", headers=headers).json()
    truth = fake.orders()[ids[0]]
    assert order["buyer"]["buyerRegistrationAddress"]["email"] == truth.buyer_email
    assert "email" not in order["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"]
    pii = fake.buyer_pii_strings()
    assert {truth.buyer_email, truth.buyer_username, truth.ship_to.full_name, truth.buyer_address.full_name} <= pii


def test_the_validators_close_eBay_s_open_schemas_so_an_invented_field_fails() -> None:
    assert schema_errors("getOrder", 200, {"orderId": "01-03955-36441"}) == []
    assert schema_errors("getOrder", 200, {"orderId": "x", "buyerEmail": "a@b"}) != []
    nested = {"orders": [{"fulfillmentStartInstructions": [{"shippingStep": {"shipTo": {"phone": "1"}}}]}]}
    assert schema_errors("getOrders", 200, nested) != []
    assert schema_errors("getOrders", 418, None) != []
    assert schema_errors("oauthToken", 200, {"access_token": "a", "expires_in": 1, "token_type": "bearer"}) != []


def test_injected_faults_and_delays_come_before_authentication(fake: FakeEbay) -> None:
    fake.inject(status=500, operation="getOrders")
    failed = get_orders(fake, {})
    assert (failed.status_code, failed.json()["errors"][0]["errorId"]) == (500, 30500)
    fake.inject(status=503, operation="oauthToken", count=2)
    assert [refresh(fake).status_code for _ in range(3)] == [503, 503, 200]
    fake.inject_delay(0.3, operation="getOrders")
    started = time.monotonic()
    get_orders(fake, access(fake))
    assert time.monotonic() - started >= 0.3
    with pytest.raises(FakeEbayError):
        fake.inject(status=302)
    with pytest.raises(FakeEbayError):
        fake.inject(status=500, operation="searchOrders")


def test_the_fake_logs_nothing_per_request(fake: FakeEbay, caplog: pytest.LogCaptureFixture) -> None:
    fake.generate_orders(10)
    with caplog.at_level(logging.DEBUG):
        page_all(fake, access(fake))
    pii = fake.buyer_pii_strings()
    assert [r for r in caplog.records if r.name.startswith("werkzeug") or any(p in r.getMessage() for p in pii)] == []


def test_the_control_api_drives_the_fake_from_another_process(fake: FakeEbay) -> None:
    base = fake.base_url + "/_fake"
    created = httpx.post(base + "/orders", json={"n": 5, "statuses": ["NOT_STARTED"]}).json()["order_ids"]
    assert httpx.get(base + "/orders").json()["order_ids"] == sorted(created)
    assert httpx.post(f"{base}/orders/{created[0]}", json={"cancel": "CANCELED"}).status_code == 204
    assert httpx.get(f"{base}/orders/{created[0]}/expected-label").json()["name"] is None
    seller = httpx.get(base + "/seller").json()
    assert seller["refresh_token"] == fake.seller().refresh_token
    assert httpx.post(base + "/inject", json={"status": 429, "operation": "getOrders"}).status_code == 204
    assert get_orders(fake, access(fake)).status_code == 429
    stats: dict[str, Any] = httpx.get(base + "/stats").json()
    assert stats["throttled"] == {"getOrders": 1}
    assert httpx.post(base + "/orders", json={"statuses": ["SHIPPED"]}).status_code == 400


def test_python_m_connectors_fake_ebay_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.fake_ebay", "--port", "0", "--orders", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(11)]
        endpoint = lines[0].split()[-1]
        stats = httpx.get(endpoint + "/_fake/stats", timeout=5).json()
        assert stats["orders"] == 5
        assert json.dumps(stats)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


# --- what bench.fleet drives: latency, a seller per account, new orders --------------------------------------


def test_latency_delays_every_api_and_token_call_but_not_the_control_api(clock: FakeClock) -> None:
    with FakeEbay(seed=7, clock=clock, latency=0.2) as fake:
        started = time.monotonic()
        headers = access(fake)
        token_took = time.monotonic() - started
        started = time.monotonic()
        answer = get_orders(fake, headers, filter=window(fake))
        call_took = time.monotonic() - started
        assert answer.status_code == 200  # answered as without latency, only later
        assert token_took >= 0.2 and call_took >= 0.2
        stats = httpx.get(fake.base_url + "/_fake/stats").json()
        assert stats["latency"] == 0.2 and stats["calls"] == {"oauthToken": 1, "getOrders": 1}
        assert fake.validation_errors == [] and fake.server_errors == []
    with pytest.raises(ValueError, match="latency"):
        FakeEbay(latency=-1)


def test_a_seller_added_over_the_control_api_has_consented_far_ahead_and_has_its_orders(
    fake: FakeEbay, clock: FakeClock
) -> None:
    base = fake.base_url + "/_fake"
    body = {"username": "fleet_one", "marketplace_ids": ["EBAY_US"], "orders": 3}
    seller = httpx.post(base + "/sellers", json=body).json()
    assert seller["marketplace_ids"] == ["EBAY_US"] and len(seller["order_ids"]) == 3
    assert datetime.fromisoformat(seller["refresh_token_expires_at"]) >= clock() + timedelta(days=540)
    headers = access_for(fake, seller["refresh_token"])
    assert sorted(page_all(fake, headers)) == sorted(seller["order_ids"])  # only this seller's orders
    # One new order, placed (and last modified) within the second before now: the next window finds only it.
    start = (clock() - timedelta(seconds=1)).isoformat()
    (new,) = httpx.post(base + "/orders", json={"n": 1, "seller": "fleet_one", "start": start}).json()["order_ids"]
    recent = f"lastmodifieddate:[{stamp(clock() - timedelta(seconds=2))}..{stamp(clock())}]"
    assert page_all(fake, headers, filter_=recent) == [new]
    stats = httpx.get(base + "/stats").json()
    assert {"calls", "throttled", "validation_errors", "server_errors"} <= set(stats)
    assert stats["throttled"] == {}
    assert httpx.post(base + "/sellers", json={"username": "fleet_two", "orders": -1}).status_code == 400
    assert httpx.post(base + "/sellers", json={"username": "fleet_one"}).status_code == 400


def access_for(fake: FakeEbay, refresh_token: str) -> dict[str, str]:
    answer = refresh(fake, refresh_token)
    assert answer.status_code == 200
    return {"Authorization": "Bearer " + answer.json()["access_token"]}


def test_the_cli_takes_a_latency_per_call() -> None:
    argv = [sys.executable, "-m", "connectors.fake_ebay", "--port", "0", "--orders", "0", "--latency", "0.25"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(11)]
        endpoint = lines[0].split()[-1]
        started = time.monotonic()
        assert httpx.post(lines[1].split()[-1], data={"grant_type": "refresh_token"}).status_code == 401
        assert time.monotonic() - started >= 0.25
        assert httpx.get(endpoint + "/_fake/stats", timeout=5).json()["latency"] == 0.25
        assert "latency 0.25 s" in lines[-2]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()
    bad = subprocess.run([*argv[:-1], "-1"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "--latency" in bad.stderr
