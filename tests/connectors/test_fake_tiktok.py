"""The fake TikTok Shop behaves like TikTok Shop where the connector depends on it: signatures, tokens,
paging, throttling, platform-shipped orders and their documents, and bodies that match TikTok's schemas."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from connectors.fake_amazon import FakeClock
from connectors.fake_tiktok import FakeTikTok, Recipient
from connectors.fake_tiktok.marketplace import market
from connectors.tiktok.signing import signed_request


def _token(fake: FakeTikTok) -> dict[str, Any]:
    response = httpx.get(
        f"{fake.auth_url}/api/v2/token/get",
        params={
            "app_key": fake.app.app_key,
            "app_secret": fake.app.app_secret,
            "auth_code": fake.authorize(),
            "grant_type": "authorized_code",
        },
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _call(
    fake: FakeTikTok,
    method: str,
    path: str,
    token: str,
    *,
    params: dict[str, str] | None = None,
    body: Any = None,
    secret: str | None = None,
    timestamp: int | None = None,
) -> httpx.Response:
    query, data = signed_request(
        app_key=fake.app.app_key,
        app_secret=secret or fake.app.app_secret,
        path=path,
        params=params or {},
        body=body,
        timestamp=timestamp if timestamp is not None else int(time.time()),
    )
    return httpx.request(
        method,
        fake.base_url + path,
        params=query,
        content=data or None,
        headers={"x-tts-access-token": token, "content-type": "application/json"},
    )


def _search(fake: FakeTikTok, token: str, **params: str) -> httpx.Response:
    query = {"shop_cipher": fake.shop().cipher, "page_size": "100", "sort_field": "update_time", "sort_order": "ASC"}
    query.update(params)
    return _call(fake, "POST", "/order/202309/orders/search", token, params=query, body={"update_time_ge": 0})


def test_a_request_signed_with_the_wrong_secret_is_refused_as_tiktok_refuses_it(tiktok: FakeTikTok) -> None:
    token = _token(tiktok)["access_token"]
    refused = _call(tiktok, "GET", "/authorization/202309/shops", token, secret="not-the-app-secret")
    assert refused.status_code == 401
    assert refused.json()["code"] == 106001 and "'sign'" in refused.json()["message"]
    assert tiktok.refused_signatures == 1
    # The same request signed right is served; a body changed after signing is refused again.
    assert _call(tiktok, "GET", "/authorization/202309/shops", token).json()["code"] == 0
    query, _ = signed_request(
        app_key=tiktok.app.app_key,
        app_secret=tiktok.app.app_secret,
        path="/order/202309/orders/search",
        params={"shop_cipher": tiktok.shop().cipher, "page_size": "10"},
        body={"update_time_ge": 0},
        timestamp=int(time.time()),
    )
    tampered = httpx.post(
        tiktok.base_url + "/order/202309/orders/search",
        params=query,
        content=json.dumps({"update_time_ge": 1}),
        headers={"x-tts-access-token": token, "content-type": "application/json"},
    )
    assert tampered.status_code == 401 and tampered.json()["code"] == 106001


def test_a_stale_timestamp_and_a_wrong_token_are_refused(tiktok: FakeTikTok) -> None:
    token = _token(tiktok)["access_token"]
    stale = _call(tiktok, "GET", "/authorization/202309/shops", token, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 401 and stale.json()["code"] == 106002
    wrong = _call(tiktok, "GET", "/authorization/202309/shops", "ROW_not-a-token")
    assert wrong.status_code == 401 and wrong.json()["code"] == 105001


def test_an_auth_code_works_once_and_refresh_tokens_renew_access(tiktok: FakeTikTok, clock: FakeClock) -> None:
    code = tiktok.authorize()
    params = {"app_key": tiktok.app.app_key, "app_secret": tiktok.app.app_secret, "grant_type": "authorized_code"}
    first = httpx.get(f"{tiktok.auth_url}/api/v2/token/get", params={**params, "auth_code": code})
    again = httpx.get(f"{tiktok.auth_url}/api/v2/token/get", params={**params, "auth_code": code})
    assert first.json()["code"] == 0 and again.json()["code"] == 36004004
    data = first.json()["data"]
    # Expiry fields are Unix timestamps, seven days out for the access token.
    assert data["access_token_expire_in"] == int(clock().timestamp()) + 7 * 86400
    tiktok.expire_tokens()
    expired = _call(tiktok, "GET", "/authorization/202309/shops", data["access_token"])
    assert expired.status_code == 401 and expired.json()["code"] == 105002
    renewed = httpx.get(
        f"{tiktok.auth_url}/api/v2/token/refresh",
        params={**params, "grant_type": "refresh_token", "refresh_token": data["refresh_token"]},
    ).json()["data"]
    assert renewed["refresh_token"] != data["refresh_token"]
    assert _call(tiktok, "GET", "/authorization/202309/shops", renewed["access_token"]).json()["code"] == 0
    tiktok.expire_grant()
    gone = httpx.get(
        f"{tiktok.auth_url}/api/v2/token/refresh",
        params={**params, "grant_type": "refresh_token", "refresh_token": renewed["refresh_token"]},
    )
    assert gone.json()["code"] == 36004005


def test_search_pages_by_update_time_serve_every_order_once(tiktok: FakeTikTok) -> None:
    ids = set(tiktok.generate_orders(250))
    token = _token(tiktok)["access_token"]
    seen: list[str] = []
    stamps: list[int] = []
    page_token: str | None = None
    while True:
        extra = {"page_token": page_token} if page_token else {}
        data = _search(tiktok, token, **extra).json()["data"]
        seen += [o["id"] for o in data["orders"]]
        stamps += [o["update_time"] for o in data["orders"]]
        page_token = data["next_page_token"] or None
        if page_token is None:
            break
    assert sorted(seen) == sorted(ids) and stamps == sorted(stamps)
    bad = _search(tiktok, token, page_token="no-such-token")
    assert bad.status_code == 400 and bad.json()["code"] == 36009003


def test_a_search_body_with_a_field_tiktok_does_not_have_is_refused(tiktok: FakeTikTok) -> None:
    token = _token(tiktok)["access_token"]
    path = "/order/202309/orders/search"
    params = {"shop_cipher": tiktok.shop().cipher, "page_size": "10"}
    refused = _call(tiktok, "POST", path, token, params=params, body={"updated_after": 0})
    assert refused.status_code == 400 and refused.json()["code"] == 36009003
    other_shop = _call(tiktok, "POST", path, token, params={**params, "shop_cipher": "ROW_other"}, body={})
    assert other_shop.status_code == 400 and other_shop.json()["code"] == 106011


def test_platform_shipped_orders_carry_no_address_and_have_a_tiktok_label(tiktok: FakeTikTok) -> None:
    recipient = Recipient(
        name="Wilhelmina Testbuyer",
        address_line1="77 Sunset Blvd",
        region_code="US",
        districts=market("US").districts,
        postal_code="90028",
        phone_number="(+1)2135550199",
    )
    order_id = tiktok.add_order(recipient=recipient, shipping_type="TIKTOK")
    seller_shipped = tiktok.add_order()
    token = _token(tiktok)["access_token"]
    text = _search(tiktok, token).text
    assert "Wilhelmina" not in text and "77 Sunset" not in text and "5550199" not in text
    orders = {o["id"]: o for o in _search(tiktok, token).json()["data"]["orders"]}
    assert orders[order_id]["shipping_type"] == "TIKTOK" and orders[order_id]["recipient_address"]["name"] == "W***r"
    package = orders[order_id]["packages"][0]["id"]
    path = f"/fulfillment/202309/packages/{package}/shipping_documents"
    params = {"document_type": "SHIPPING_LABEL", "shop_cipher": tiktok.shop().cipher}
    document = _call(tiktok, "GET", path, token, params=params).json()["data"]
    pdf = httpx.get(document["doc_url"]).content
    assert pdf.startswith(b"%PDF-") and pdf == tiktok.shipping_document(order_id) and b"Wilhelmina" in pdf
    # A package the seller ships has no TikTok label.
    own = orders[seller_shipped]["packages"][0]["id"]
    refused = _call(tiktok, "GET", f"/fulfillment/202309/packages/{own}/shipping_documents", token, params=params)
    assert refused.status_code == 400 and refused.json()["code"] == 21011001
    assert tiktok.expected_label(order_id)["name"] is None


def test_calls_beyond_the_burst_are_throttled_with_429() -> None:
    with FakeTikTok(speedup=0.01) as slow:
        token = _token(slow)["access_token"]
        statuses = [_search(slow, token).status_code for _ in range(12)]
        assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]
        assert slow.throttled["orders.search"] == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_injected_faults_answer_in_tiktoks_envelope(tiktok: FakeTikTok, status: int) -> None:
    token = _token(tiktok)["access_token"]
    tiktok.inject(status=status, operation="orders.search")
    response = _search(tiktok, token)
    assert response.status_code == status and response.json()["code"] != 0
    assert _search(tiktok, token).status_code == 200


def test_a_dropped_connection_gets_no_answer(tiktok: FakeTikTok) -> None:
    token = _token(tiktok)["access_token"]
    tiktok.drop_connections(operation="orders.search")
    with pytest.raises(httpx.TransportError):
        _search(tiktok, token)
    assert _search(tiktok, token).status_code == 200


def test_detail_of_202309_and_202507_match_their_schemas(tiktok: FakeTikTok) -> None:
    ids = tiktok.generate_orders(20, platform_shipped_every=4)
    token = _token(tiktok)["access_token"]
    for version in ("202309", "202507"):
        params = {"ids": ",".join(ids), "shop_cipher": tiktok.shop().cipher}
        data = _call(tiktok, "GET", f"/order/{version}/orders", token, params=params).json()["data"]
        assert sorted(o["id"] for o in data["orders"]) == sorted(ids)
    # the fixture checks every answer above against TikTok's schemas (validation_errors stays empty)
