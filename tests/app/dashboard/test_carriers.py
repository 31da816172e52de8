"""The clients page and carriers: the seller sees its carrier accounts and which clients can still read
addresses; once a carrier is configured a new client receives carrier labels only, unless the seller says
otherwise."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.support.carriers import SHIP_FROM_VALUES
from tests.support.dashboard import Seller, Shop, open_shop, post
from vault.carrier_accounts import connect_carrier_account


@pytest.fixture
def shop(seller: Seller, client: FlaskClient) -> Shop:
    return open_shop(seller, client)


def _new_key(html: str) -> str:
    return html.split('id="new-api-key">')[1].split("<")[0]


def test_clients_show_whether_they_read_addresses_and_new_ones_get_carrier_labels_only(
    shop: Shop, client: FlaskClient
) -> None:
    page = client.get("/clients").get_data(as_text=True)
    assert (
        "No carrier account yet" in page and "labelvault carriers add amazonmfn|amazonshipping|easypost|shippo" in page
    )
    before = _new_key(post(client, "/clients", {"name": "Old line", "cidrs": "127.0.0.1/32"}).get_data(as_text=True))
    with shop.seller.session() as s:
        connect_carrier_account(
            s, keys=shop.seller.keys, tenant_id=shop.seller.tenant.id, carrier="shippo", name="Shippo main",
            secrets={"api_token": "shippo_test_x"}, ship_from=SHIP_FROM_VALUES, test_mode=True, actor="test",
        )  # fmt: skip
        s.commit()
        connect_carrier_account(
            s, keys=shop.seller.keys, tenant_id=shop.seller.tenant.id, carrier="easypost", name="Parcels US",
            secrets={"api_key": "EZTKx"}, ship_from=SHIP_FROM_VALUES, test_mode=True, actor="test",
        )  # fmt: skip
        s.commit()
    page = client.get("/clients").get_data(as_text=True)
    assert "Parcels US</strong> · EasyPost" in page and "Shippo main</strong> · Shippo" in page  # the carriers' names
    assert "Shippo main" in page and "Test mode" in page and 'name="carrier_only" checked' in page
    after = _new_key(
        post(client, "/clients", {"name": "New line", "cidrs": "127.0.0.1/32", "carrier_only": "on"}).get_data(
            as_text=True
        )
    )
    reader = _new_key(
        post(client, "/clients", {"name": "Address line", "cidrs": "127.0.0.1/32"}).get_data(as_text=True)
    )
    page = client.get("/clients").get_data(as_text=True)
    assert page.count("Carrier labels only</span>") == 1 and page.count("Reads addresses</span>") == 2
    url = f"/v1/labels/amazon/{shop.order_ids[0]}"
    assert client.get(url, headers={"Authorization": f"Bearer {before}"}).status_code == 200
    assert client.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 200  # the seller chose
    assert client.get(url, headers={"Authorization": f"Bearer {after}"}).status_code == 403
