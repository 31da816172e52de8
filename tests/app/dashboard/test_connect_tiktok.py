"""Connecting a TikTok Shop seller from the dashboard: the connector's connect, the same as the CLI's; the
endpoint fields only where the operator allows overrides, and the secret and the code never echoed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.fake_tiktok import FakeTikTok
from tests.support.dashboard import Clock, Seller, post, show_tracebacks
from tests.support.servers import Database
from vault.models import MarketplaceAccount
from vault.tenants import create_tenant


@pytest.fixture
def shop() -> Iterator[FakeTikTok]:
    with FakeTikTok(speedup=50, seed=3) as fake:
        yield fake


def _owner(make_app: Any, db: Database, clock: Clock, **settings: Any) -> tuple[Seller, FlaskClient]:
    app = show_tracebacks(make_app(db.app_url, **settings))
    svc = app.extensions["labelvault"]
    with svc.sessions() as s:
        tenant = create_tenant(s, keys=svc.keys, slug=f"seller-{uuid.uuid4().hex[:8]}", name="Sakura", actor="test")
        s.commit()
        s.expunge(tenant)
    seller = Seller(app, tenant, clock)
    user, auth = seller.user("owner")
    assert auth is not None
    client: FlaskClient = app.test_client()
    seller.login(client, user, auth)
    return seller, client


def _form(fake: FakeTikTok, code: str, **changes: str) -> dict[str, str]:
    return {
        "name": "TikTok US", "app_key": fake.app.app_key, "app_secret": fake.app.app_secret, "auth_code": code,
        "api_endpoint": fake.base_url, "token_endpoint": fake.auth_url, **changes,
    }  # fmt: skip


def test_a_seller_is_connected_from_the_form_and_a_refused_code_is_not_echoed(
    make_app: Any, shared_db: Database, clock: Clock, shop: FakeTikTok
) -> None:
    seller, client = _owner(make_app, shared_db, clock, marketplace_endpoint_overrides=shop.base_url)
    page = client.get("/accounts/tiktok").get_data(as_text=True)
    assert 'name="api_endpoint"' in page and 'name="auth_code"' in page
    refused = post(client, "/accounts/tiktok", _form(shop, "ROW_not-a-code"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "auth code" in html
    assert shop.app.app_secret not in html and "ROW_not-a-code" not in html
    resp = post(client, "/accounts/tiktok", _form(shop, shop.authorize()))
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/accounts")
    with seller.session() as s:
        account = s.scalar(select(MarketplaceAccount).where(MarketplaceAccount.tenant_id == seller.tenant.id))
        assert account is not None and account.marketplace == "tiktok"
        assert account.marketplace_ids == [shop.shop().cipher]


def test_without_overrides_the_endpoints_are_not_offered_and_a_forged_one_is_refused(
    make_app: Any, shared_db: Database, clock: Clock, shop: FakeTikTok
) -> None:
    _, client = _owner(make_app, shared_db, clock)
    assert 'name="api_endpoint"' not in client.get("/accounts/tiktok").get_data(as_text=True)
    resp = post(client, "/accounts/tiktok", _form(shop, shop.authorize()))
    assert resp.status_code == 400 and "not allowed" in resp.get_data(as_text=True)
    assert sum(shop.calls.values()) == 0
