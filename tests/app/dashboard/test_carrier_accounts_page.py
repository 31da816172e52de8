"""The Carriers page: an owner lists, adds and removes the tenant's carrier accounts (the same audited acts as
``labelvault carriers add|remove``), after a fresh second factor; operators and viewers may not; a credential
never comes back in a page or reaches the audit chain; a refused form keeps what isn't secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.carriers.registry import CARRIERS
from tests.support.carriers import SHIP_FROM_VALUES
from tests.support.dashboard import Seller, Shop, open_shop, post
from vault.carrier_accounts import live_carrier_accounts, unseal_carrier_credentials
from vault.models import AuditEvent, CarrierAccount
from vault.users.base import actor_of

SHIPPO_TOKEN = "shippo_test_Zq81secretToken"
EASYPOST_KEY = "EZTK-secretKey-4471"
LWA_SECRET = "amzn1.oa2-cs.v1.secretSecret"
REFRESH = "Atzr|IwEB-secretRefresh"


def _ship_from(**changes: str) -> dict[str, str]:
    values = {
        "from_name": SHIP_FROM_VALUES["name"],
        "from_company": SHIP_FROM_VALUES["company"],
        "from_street": SHIP_FROM_VALUES["street1"],
        "from_city": SHIP_FROM_VALUES["city"],
        "from_state": SHIP_FROM_VALUES["state"],
        "from_postal_code": SHIP_FROM_VALUES["postal_code"],
        "from_country": SHIP_FROM_VALUES["country_code"],
        "from_phone": SHIP_FROM_VALUES["phone"],
    }
    return values | changes


def _add(client: FlaskClient, carrier: str, name: str, secrets: dict[str, str], **changes: str) -> Any:
    return post(client, "/carriers", {"carrier": carrier, "name": name, **secrets, **_ship_from(**changes)})


def _accounts(seller: Seller) -> list[CarrierAccount]:
    with seller.session() as s:
        return live_carrier_accounts(s, tenant_id=seller.tenant.id)


def _events(seller: Seller) -> list[AuditEvent]:
    with seller.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.tenant_id == seller.tenant.id)))


def _secretless(text: str) -> None:
    for secret in (SHIPPO_TOKEN, EASYPOST_KEY, LWA_SECRET, REFRESH):
        assert secret not in text


@pytest.fixture
def shop(seller: Seller, client: FlaskClient) -> Shop:
    return open_shop(seller, client)


def test_the_owner_adds_lists_and_removes_carrier_accounts(shop: Shop, client: FlaskClient) -> None:
    seller = shop.seller
    page = client.get("/carriers").get_data(as_text=True)
    assert "No carrier account yet." in page and 'href="/carriers"' in page  # the nav link, for an owner
    for platform in CARRIERS.values():  # one form per registered carrier, its credentials as password fields
        assert f'data-testid="add-{platform.code}"' in page
        for credential in platform.credentials:
            kind = "select" if credential in platform.choices else 'input type="password"'
            assert f'<{kind} name="{credential}"' in page
    resp = _add(client, "shippo", "Shippo main", {"api_token": SHIPPO_TOKEN})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/carriers")
    resp = _add(client, "easypost", "Parcels DE", {"api_key": EASYPOST_KEY, "test_mode": "on"}, from_city="Berlin")
    assert resp.status_code == 302
    amazon = {"client_id": "amzn1.application-oa2-client.x", "client_secret": LWA_SECRET, "refresh_token": REFRESH}
    resp = _add(client, "amazonshipping", "Amazon UK", amazon | {"business_id": "AmazonShipping_UK"}, from_country="gb")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = client.get("/carriers").get_data(as_text=True)
    assert "Carrier account “Amazon UK” (Amazon Shipping) added." in page
    rows = page.split('data-testid="carrier-accounts"')[1].split("</table>")[0]
    assert "<strong>Shippo main</strong></td>\n      <td>Shippo</td>" in rows
    assert "<strong>Parcels DE</strong></td>\n      <td>EasyPost</td>" in rows and "Berlin, US" in rows
    assert "San Francisco, GB" in rows and rows.count("Test mode") == 1 and rows.count(">Live<") == 2
    _secretless(page)
    accounts = {a.name: a for a in _accounts(seller)}
    assert {a.carrier for a in accounts.values()} == {"shippo", "easypost", "amazonshipping"}
    assert accounts["Parcels DE"].test_mode and not accounts["Shippo main"].test_mode
    with seller.session() as s:  # sealed, and opened to the same values
        amazon_account = s.get_one(CarrierAccount, accounts["Amazon UK"].id)
        stored = unseal_carrier_credentials(s, keys=seller.keys, account=amazon_account)
    assert stored == amazon | {"business_id": "AmazonShipping_UK"}
    assert "Shippo main</strong> · Shippo" in client.get("/clients").get_data(as_text=True)

    shippo = accounts["Shippo main"]
    resp = post(client, f"/carriers/{shippo.id}/remove", {"confirm": "Shippo"})  # not its name: nothing happens
    assert resp.status_code == 302 and len(_accounts(seller)) == 3
    assert "Type the carrier account" in client.get("/carriers").get_data(as_text=True)
    resp = post(client, f"/carriers/{shippo.id}/remove", {"confirm": "Shippo main"})
    assert resp.status_code == 302
    assert [a.name for a in _accounts(seller)] == ["Parcels DE", "Amazon UK"]
    with seller.session() as s:
        assert s.get_one(CarrierAccount, shippo.id).credentials_envelope is None  # shredded
    page = client.get("/carriers").get_data(as_text=True)
    assert "Carrier account “Shippo main” removed" in page and "<strong>Shippo main</strong>" not in page
    assert post(client, f"/carriers/{shippo.id}/remove", {"confirm": "Shippo main"}).status_code == 404

    events = _events(seller)
    mine = [e for e in events if e.action.startswith("carrier.")]
    assert [(e.action, e.details["carrier"]) for e in mine] == [  # type: ignore[index]
        ("carrier.connect", "shippo"),
        ("carrier.connect", "easypost"),
        ("carrier.connect", "amazonshipping"),
        ("carrier.remove", "shippo"),
    ]
    assert {e.actor for e in mine} == {actor_of(shop.user)} and all(e.ip == "127.0.0.1" for e in mine)
    _secretless(json.dumps([[e.actor, e.action, e.details, e.order_ref] for e in events], default=str))
    _secretless(client.get("/audit").get_data(as_text=True))


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_an_owner_may(seller: Seller, client: FlaskClient, role: str) -> None:
    open_shop(seller, client, role=role)
    assert client.get("/carriers").status_code == 403
    assert 'href="/carriers"' not in client.get("/").get_data(as_text=True)
    assert _add(client, "shippo", "Sneaky", {"api_token": SHIPPO_TOKEN}).status_code == 403
    assert _accounts(seller) == []
    with seller.session() as s:  # an account an owner connected: not removable either
        from vault.carrier_accounts import connect_carrier_account

        account = connect_carrier_account(
            s, keys=seller.keys, tenant_id=seller.tenant.id, carrier="shippo", name="Owner's",
            secrets={"api_token": SHIPPO_TOKEN}, ship_from=SHIP_FROM_VALUES, actor="test",
        )  # fmt: skip
        s.commit()
        account_id = account.id
    assert post(client, f"/carriers/{account_id}/remove", {"confirm": "Owner's"}).status_code == 403
    assert [a.id for a in _accounts(seller)] == [account_id]


def test_adding_and_removing_need_a_fresh_second_factor(shop: Shop, client: FlaskClient) -> None:
    seller = shop.seller
    assert _add(client, "shippo", "Shippo main", {"api_token": SHIPPO_TOKEN}).status_code == 302
    account_id = _accounts(seller)[0].id
    seller.clock.advance(6 * 60)  # the second factor has gone stale
    resp = _add(client, "easypost", "Parcels", {"api_key": EASYPOST_KEY})
    assert resp.status_code == 302 and "/reauth" in resp.headers["Location"]
    assert "next=/carriers" in resp.headers["Location"].replace("%2F", "/")
    resp = post(client, f"/carriers/{account_id}/remove", {"confirm": "Shippo main"})
    assert resp.status_code == 302 and "/reauth" in resp.headers["Location"]
    assert [a.name for a in _accounts(seller)] == ["Shippo main"]  # nothing added, nothing removed
    assert post(client, resp.headers["Location"], {"code": shop.auth.code()}).status_code == 302
    assert _add(client, "easypost", "Parcels", {"api_key": EASYPOST_KEY}).status_code == 302
    assert post(client, f"/carriers/{account_id}/remove", {"confirm": "Shippo main"}).status_code == 302
    assert [a.name for a in _accounts(seller)] == ["Parcels"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"from_city": "  "}, "the ship-from address needs city"),
        ({"from_country": "USA"}, "the ship-from country code is two letters"),
        ({"from_street": "x" * 201}, "the ship-from street1 is longer than 200 characters"),
        ({"name": ""}, "a carrier account name is 1 to 200 characters"),
        ({"api_token": " "}, "Enter every Shippo credential: API token."),
    ],
)
def test_bad_input_is_a_clear_error_keeping_what_is_not_secret(
    shop: Shop, client: FlaskClient, changes: dict[str, str], message: str
) -> None:
    form = {"carrier": "shippo", "name": "Shippo main", "api_token": SHIPPO_TOKEN, "test_mode": "on"}
    resp = post(client, "/carriers", form | _ship_from() | changes)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in page
    _secretless(page)
    section = page.split('data-testid="add-shippo"')[1].split("</section>")[0]
    assert "<details open>" in section and 'name="test_mode" checked' in section
    for field, value in (_ship_from() | {"name": "Shippo main"} | changes).items():
        if value.strip() and len(value) <= 200:
            assert f'name="{field}" value="{value}"' in section, field
    assert 'name="api_token" required' in section  # the secret field comes back empty
    other = page.split('data-testid="add-easypost"')[1].split("</section>")[0]
    assert 'value="Shippo main"' not in other  # the other carriers' forms stay empty
    assert _accounts(shop.seller) == [] and not [e for e in _events(shop.seller) if e.action == "carrier.connect"]


def test_a_carrier_or_choice_not_in_the_registry_and_a_taken_name_are_refused(shop: Shop, client: FlaskClient) -> None:
    resp = _add(client, "fedex", "Mine", {"api_key": EASYPOST_KEY})
    assert resp.status_code == 400 and "Choose one of the carriers listed." in resp.get_data(as_text=True)
    amazon = {"client_id": "x", "client_secret": LWA_SECRET, "refresh_token": REFRESH, "business_id": "Nope"}
    resp = _add(client, "amazonshipping", "Amazon", amazon)
    assert resp.status_code == 400 and "Choose a Business ID from the list." in resp.get_data(as_text=True)
    _secretless(resp.get_data(as_text=True))
    assert _add(client, "shippo", "Main", {"api_token": SHIPPO_TOKEN}).status_code == 302
    resp = _add(client, "easypost", "Main", {"api_key": EASYPOST_KEY})
    assert resp.status_code == 400 and "carrier account named &#39;Main&#39; already" in resp.get_data(as_text=True)
    resp = _add(client, "shippo", "Elsewhere", {"api_token": SHIPPO_TOKEN, "api_endpoint": "https://evil.example"})
    assert resp.status_code == 400 and [a.name for a in _accounts(shop.seller)] == ["Main"]
    _secretless(resp.get_data(as_text=True))


class TestAnOperatorAllowedEndpoint:
    """Where the operator allows an origin (a fake carrier, a test rig), the form offers the endpoint field and
    an account may point there; any other endpoint is still refused."""

    ORIGIN = "http://127.0.0.1:18099"

    @pytest.fixture
    def dash_app(self, make_app: Any, shared_db: Any) -> Any:
        return make_app(shared_db.app_url, marketplace_endpoint_overrides=self.ORIGIN)

    def test_an_account_on_an_allowed_origin(self, shop: Shop, client: FlaskClient) -> None:
        page = client.get("/carriers").get_data(as_text=True)
        assert page.count('name="api_endpoint"') == len(CARRIERS)
        resp = _add(client, "shippo", "Elsewhere", {"api_token": SHIPPO_TOKEN, "api_endpoint": "https://evil.example"})
        assert resp.status_code == 400 and 'value="https://evil.example"' in resp.get_data(as_text=True)
        resp = _add(client, "shippo", "On the fake", {"api_token": SHIPPO_TOKEN, "api_endpoint": self.ORIGIN})
        assert resp.status_code == 302
        (account,) = _accounts(shop.seller)
        assert account.api_endpoint == self.ORIGIN
        assert "custom endpoint" in client.get("/carriers").get_data(as_text=True)


def _amazon_account(seller: Seller, **options: bool | int) -> int:
    from vault.carrier_accounts import connect_carrier_account

    with seller.session() as s:
        account = connect_carrier_account(
            s, keys=seller.keys, tenant_id=seller.tenant.id, carrier="amazonshipping", name="Amazon US",
            secrets={"client_id": "x", "client_secret": LWA_SECRET, "refresh_token": REFRESH},
            ship_from=SHIP_FROM_VALUES, options=options, actor="test",
        )  # fmt: skip
        s.commit()
        return account.id


def _options_cell(page: str, account_id: int) -> str:
    return page.split(f'data-testid="options-{account_id}"')[1].split("</td>")[0]


def test_the_owner_sees_and_changes_an_accounts_options_audited_and_kept(shop: Shop, client: FlaskClient) -> None:
    seller = shop.seller
    account_id = _amazon_account(seller)
    cell = _options_cell(client.get("/carriers").get_data(as_text=True), account_id)
    assert "one_click=false" in cell and "ship_to_from_order=true" in cell and "dpi=203" in cell
    assert "Buy with oneClickShipment" in cell and "no idempotency key" in cell and "stays unsettled" in cell
    assert 'name="one_click">' in cell and 'name="ship_to_from_order" checked>' in cell
    assert '<option value="203" selected>' in cell
    form = {"one_click": "on", "ship_to_from_order": "on", "dpi": "300"}
    resp = post(client, f"/carriers/{account_id}/options", form)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/carriers")
    page = client.get("/carriers").get_data(as_text=True)
    assert "Options of “Amazon US” saved." in page
    cell = _options_cell(page, account_id)  # reloaded from the database
    assert "one_click=true" in cell and 'name="one_click" checked>' in cell and '<option value="300" selected>' in cell
    with seller.session() as s:
        assert s.get_one(CarrierAccount, account_id).options == {"one_click": True, "dpi": 300}
    [event] = [e for e in _events(seller) if e.action == "carrier.options"]
    assert event.details == {
        "carrier_account_id": account_id, "carrier": "amazonshipping", "options": {"one_click": True, "dpi": 300}
    }  # fmt: skip
    assert event.actor == actor_of(shop.user) and event.ip == "127.0.0.1"
    assert "Carrier account options changed" in client.get("/audit").get_data(as_text=True)
    # the same form again: nothing changed, nothing audited; the flag unticked turns it off
    post(client, f"/carriers/{account_id}/options", form)
    assert "unchanged" in client.get("/carriers").get_data(as_text=True)
    post(client, f"/carriers/{account_id}/options", {"ship_to_from_order": "on", "dpi": "300"})
    with seller.session() as s:
        assert s.get_one(CarrierAccount, account_id).options == {"one_click": False, "dpi": 300}
    assert len([e for e in _events(seller) if e.action == "carrier.options"]) == 2
    _secretless(client.get("/carriers").get_data(as_text=True))


def test_a_bad_option_value_is_refused_with_a_clear_message(shop: Shop, client: FlaskClient) -> None:
    account_id = _amazon_account(shop.seller, one_click=True)
    resp = post(client, f"/carriers/{account_id}/options", {"dpi": "600", "note": "ignored", "one_click": "on"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Label resolution (dpi) takes 203 or 300." in page and "600" not in page
    with shop.seller.session() as s:
        assert s.get_one(CarrierAccount, account_id).options == {"one_click": True}  # nothing changed
    assert not [e for e in _events(shop.seller) if e.action == "carrier.options"]
    shippo = _add(client, "shippo", "Shippo main", {"api_token": SHIPPO_TOKEN})
    assert shippo.status_code == 302
    shippo_id = next(a.id for a in _accounts(shop.seller) if a.carrier == "shippo")
    page = client.get("/carriers").get_data(as_text=True)
    assert "—" in _options_cell(page, shippo_id)  # Shippo takes no options
    post(client, f"/carriers/{shippo_id}/options", {"dpi": "300"})
    assert "This carrier account has no options." in client.get("/carriers").get_data(as_text=True)


def test_changing_options_needs_an_owner_and_a_fresh_second_factor(seller: Seller, client: FlaskClient) -> None:
    shop = open_shop(seller, client)
    account_id = _amazon_account(seller)
    seller.clock.advance(6 * 60)
    resp = post(client, f"/carriers/{account_id}/options", {"one_click": "on", "dpi": "203"})
    assert resp.status_code == 302 and "/reauth" in resp.headers["Location"]
    with seller.session() as s:
        assert s.get_one(CarrierAccount, account_id).options == {}
    assert post(client, resp.headers["Location"], {"code": shop.auth.code()}).status_code == 302
    other = seller.app.test_client()
    open_shop(seller, other, role="operator")
    assert post(other, f"/carriers/{account_id}/options", {"one_click": "on"}).status_code == 403


def test_the_options_are_described_in_chinese(shop: Shop, client: FlaskClient) -> None:
    from app.dashboard.pages.carriers import OPTION_TEXTS

    for platform in CARRIERS.values():  # every declared option has the seller's label and description
        for option in platform.options:
            assert (platform.code, option.name) in OPTION_TEXTS
    account_id = _amazon_account(shop.seller)
    post(client, "/language", {"locale": "zh_Hans", "next": "/carriers"})
    cell = _options_cell(client.get("/carriers").get_data(as_text=True), account_id)
    assert "使用 oneClickShipment 购买" in cell and "幂等键" in cell and "保存选项" in cell
