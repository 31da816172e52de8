"""The accounts page connects a Shopify shop: by a custom app's token, or by the install flow through the
fake Shopify's authorize page and back to the callback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.fake_shopify import FakeShopify
from tests.support.dashboard import Clock, Seller, post, show_tracebacks
from tests.support.servers import Database
from vault.marketplace_accounts import unseal_credentials
from vault.models import AuditEvent, MarketplaceAccount, Tenant
from vault.tenants import create_tenant


@pytest.fixture
def shop() -> Iterator[FakeShopify]:
    with FakeShopify(speedup=500) as fake:
        yield fake
        assert fake.validation_errors == []


@pytest.fixture
def dash_app(make_app: Any, shared_db: Database, shop: FakeShopify) -> Any:
    return show_tracebacks(
        make_app(
            shared_db.app_url,
            marketplace_endpoint_overrides=shop.base_url,
            shopify_client_id=shop.DEFAULT_APP.client_id,
            shopify_client_secret=shop.DEFAULT_APP.client_secret,
        )
    )


@pytest.fixture
def owner(seller: Seller) -> FlaskClient:
    user, totp = seller.user("owner")
    assert totp is not None
    client: FlaskClient = seller.app.test_client()
    seller.login(client, user, totp)
    return client


def _accounts(seller: Seller) -> list[MarketplaceAccount]:
    with seller.session() as s:
        return list(s.scalars(select(MarketplaceAccount).where(MarketplaceAccount.tenant_id == seller.tenant.id)))


def test_the_accounts_page_offers_both_ways(owner: FlaskClient) -> None:
    html = owner.get("/accounts").get_data(as_text=True)
    assert 'data-testid="connect-shopify"' in html
    assert "/accounts/shopify/install" in html and 'action="/accounts/shopify"' in html


def test_a_custom_apps_token_connects_the_shop(owner: FlaskClient, seller: Seller, shop: FakeShopify) -> None:
    form = {
        "name": "EU shop",
        "shop": "labelvault-test",
        "access_token": shop.DEFAULT_TOKEN,
        "api_endpoint": shop.base_url,
    }
    resp = post(owner, "/accounts/shopify", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    (account,) = _accounts(seller)
    assert (account.marketplace, account.marketplace_ids) == ("shopify", [shop.DEFAULT_SHOP.domain])
    refused = post(owner, "/accounts/shopify", {**form, "name": "Again", "access_token": "shpat_wrong"})
    assert refused.status_code == 400
    assert "shpat_wrong" not in refused.get_data(as_text=True)  # the token is never echoed back
    assert len(_accounts(seller)) == 1


def test_the_install_flow_connects_the_shop_with_a_sealed_renewable_token(
    owner: FlaskClient, seller: Seller, shop: FakeShopify
) -> None:
    start = post(
        owner,
        "/accounts/shopify/install",
        {"name": "Installed", "shop": "labelvault-test", "api_endpoint": shop.base_url},
    )
    assert start.status_code == 302
    authorize = start.headers["Location"]
    assert authorize.startswith(shop.base_url + "/admin/oauth/authorize?")
    query = dict(parse_qsl(urlsplit(authorize).query))
    assert query["scope"].split(",")[0] == "read_orders" and query["state"]
    back = httpx.get(authorize, follow_redirects=False, timeout=10)  # the merchant approves
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    assert callback.path == "/accounts/shopify/callback"
    done = owner.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 302, done.get_data(as_text=True)
    (account,) = _accounts(seller)
    with seller.session() as s:
        stored = s.get_one(MarketplaceAccount, account.id)
        sealed = unseal_credentials(s, keys=seller.keys, account=stored)
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "account.connect", AuditEvent.tenant_id == seller.tenant.id)
        ).one()
    assert sealed["refresh_token"] and sealed["client_id"] == shop.DEFAULT_APP.client_id
    assert sealed["access_token"] not in str(event.details)
    again = owner.get(f"{callback.path}?{callback.query}")  # a replayed callback: the state was used up
    assert again.status_code == 400
    assert len(_accounts(seller)) == 1


def test_a_forged_callback_is_refused(owner: FlaskClient, seller: Seller, shop: FakeShopify) -> None:
    start = post(
        owner, "/accounts/shopify/install", {"name": "Forged", "shop": "labelvault-test", "api_endpoint": shop.base_url}
    )
    back = httpx.get(start.headers["Location"], follow_redirects=False, timeout=10)
    callback = urlsplit(back.headers["location"])
    params = dict(parse_qsl(callback.query))
    params["code"] = "someone-elses-code"
    forged = owner.get(callback.path, query_string=params)
    assert forged.status_code == 400
    assert _accounts(seller) == []


def test_an_install_needs_the_app_set_up(make_app: Any, shared_db: Database, clock: Clock) -> None:
    app = show_tracebacks(make_app(shared_db.app_url))
    with app.extensions["labelvault"].sessions() as s:
        tenant: Tenant = create_tenant(
            s, keys=app.extensions["labelvault"].keys, slug="no-app-shop", name="X", actor="t"
        )
        s.commit()
        s.expunge(tenant)
    seller = Seller(app, tenant, clock)
    user, totp = seller.user("owner")
    assert totp is not None
    client: FlaskClient = app.test_client()
    seller.login(client, user, totp)
    assert "/accounts/shopify/install" not in client.get("/accounts").get_data(as_text=True)
    assert post(client, "/accounts/shopify/install", {"name": "N", "shop": "x"}).status_code == 400
