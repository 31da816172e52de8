"""Rights requests need the owner where they show or change a buyer's data: an operator may erase, not
export a buyer's full record (phone included) nor correct a ship-to address."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from tests.support.buyers import MARKED_BUYERS
from tests.support.dashboard import Seller, open_shop, post

CORRECTED = {"name": "Taro Yamada", "address_line1": "1-2-3 Ginza", "city": "Chuo-ku", "country_code": "JP"}


def test_an_operator_may_erase_but_not_export_or_correct(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="operator")
    page = client.get(f"/rights?order_id={shop.order_ids[0]}").get_data(as_text=True)
    assert "rights/erasure" in page and "rights/access" not in page and "rights/correction" not in page
    ref = {"request_id": "T-1", "verified_by": "support"}
    resp = post(client, "/rights/access", {"order_id": shop.order_ids[0], **ref})
    assert resp.status_code == 403 and MARKED_BUYERS[0].name not in resp.get_data(as_text=True)
    resp = post(client, "/rights/correction", {"order_id": shop.order_ids[0], **ref, **CORRECTED})
    assert resp.status_code == 403
    assert post(client, "/rights/erasure", {"order_id": shop.order_ids[1], **ref}).status_code == 302


def test_an_owner_may_export_and_correct(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client, role="owner")
    ref = {"request_id": "T-2", "verified_by": "support"}
    resp = post(client, "/rights/access", {"order_id": shop.order_ids[0], **ref})
    assert json.loads(resp.data)["shipping_label_data"]["name"] == MARKED_BUYERS[0].name
    resp = post(client, "/rights/correction", {"order_id": shop.order_ids[0], **ref, **CORRECTED})
    assert resp.status_code == 302
