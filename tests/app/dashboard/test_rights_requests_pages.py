"""The rights-request workflow pages: open a request by the person's values, see the matches masked,
confirm, carry out (an access export downloads as JSON); owner only."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from tests.support.buyers import MARKED_BUYERS
from tests.support.dashboard import Seller, open_shop, post


def _open(client: FlaskClient, kind: str) -> str:
    buyer = MARKED_BUYERS[0]
    form = {"kind": kind, "reference": "R-1", "name": buyer.name.upper(), "verified_by": "support"}
    form |= {"verification": "id card", "jurisdiction": "eu"}
    resp = post(client, "/rights/requests", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    return resp.headers["Location"]


def test_an_owner_opens_confirms_and_exports(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="owner")
    url = _open(client, "access")
    page = client.get(url).get_data(as_text=True)
    assert shop.order_ids[0] in page and MARKED_BUYERS[0].name not in page  # masked
    assert "R-1" in client.get("/rights/requests").get_data(as_text=True)
    order = page.split('name="order" value="')[1].split('"')[0]
    assert post(client, f"{url}/confirm", {"order": order}).status_code == 302
    resp = post(client, f"{url}/carry-out", {})
    export = json.loads(resp.data)
    assert [o["shipping_label_data"]["name"] for o in export["orders"]] == [MARKED_BUYERS[0].name]


def test_an_erasure_erases_the_confirmed_set_only(seller: Seller, client: FlaskClient) -> None:
    open_shop(seller, client, role="owner")
    url = _open(client, "erasure")
    page = client.get(url).get_data(as_text=True)
    order = page.split('name="order" value="')[1].split('"')[0]
    post(client, f"{url}/confirm", {"order": order})
    assert post(client, f"{url}/carry-out", {}).status_code == 302
    assert "erased" in client.get(url).get_data(as_text=True)


def test_an_operator_may_not(seller: Seller, client: FlaskClient) -> None:
    open_shop(seller, client, role="operator")
    assert client.get("/rights/requests").status_code == 403
