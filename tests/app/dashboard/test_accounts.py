"""Connecting an account from the dashboard: the connector's checks, the same as the CLI's. A tenant cannot
point an account's endpoints anywhere (the fields are offered only where the operator allows overrides),
marketplaces show by name, and failing credentials are neither stored nor echoed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connectors.fake_amazon import FakeAmazon
from tests.support.dashboard import Clock, Seller, post, show_tracebacks
from tests.support.servers import Database
from vault.models import MarketplaceAccount
from vault.tenants import create_tenant


@pytest.fixture
def fake() -> Iterator[FakeAmazon]:
    with FakeAmazon(speedup=5000) as marketplace:
        yield marketplace


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


def _form(fake: FakeAmazon, **changes: str) -> dict[str, str]:
    s = fake.DEFAULT_SELLER
    return {
        "name": "US store", "region": "na", "marketplace_ids": "ATVPDKIKX0DER", "client_id": s.client_id,
        "client_secret": s.client_secret, "refresh_token": s.refresh_token, "sp_api_endpoint": fake.base_url,
        "lwa_endpoint": fake.lwa_url, **changes,
    }  # fmt: skip


def _accounts(seller: Seller) -> int:
    with seller.session() as s:
        where = MarketplaceAccount.tenant_id == seller.tenant.id
        return int(s.scalar(select(func.count()).select_from(MarketplaceAccount).where(where)) or 0)


def test_a_tenant_cannot_point_an_account_at_an_endpoint_of_its_choosing(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeAmazon
) -> None:
    seller, client = _owner(make_app, shared_db, clock)  # the operator allows no overrides
    page = client.get("/accounts").get_data(as_text=True)
    assert 'name="sp_api_endpoint"' not in page and 'name="lwa_endpoint"' not in page
    resp = post(client, "/accounts", _form(fake))  # the fields, forged into the form
    assert resp.status_code == 400 and "That endpoint is not allowed" in resp.get_data(as_text=True)
    assert sum(fake.calls.values()) == 0 and _accounts(seller) == 0  # nothing was sent there, nothing stored


def test_connecting_checks_the_credentials_once_and_never_echoes_them(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeAmazon
) -> None:
    seller, client = _owner(make_app, shared_db, clock, marketplace_endpoint_overrides=fake.base_url)
    page = client.get("/accounts").get_data(as_text=True)
    assert 'name="sp_api_endpoint"' in page and "Amazon.co.jp (JP, A1VC38T7YXB528)" in page
    secrets = [fake.DEFAULT_SELLER.client_secret, fake.DEFAULT_SELLER.refresh_token, "Atzr|someone-elses"]

    def refused(form: dict[str, str], message: str) -> None:
        resp = post(client, "/accounts", form)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400 and message in html, html
        assert not any(secret in html for secret in secrets)

    refused(_form(fake, name=""), "Give the account a name")
    refused(_form(fake, sp_api_endpoint="ftp://nope"), "full URL")
    refused(_form(fake, marketplace_ids="A1VC38T7YXB528"), "Every marketplace ID must belong to the chosen region")
    assert fake.calls["lwaToken"] == 0
    refused(_form(fake, refresh_token="Atzr|someone-elses"), "Login with Amazon refused these credentials")
    assert fake.calls["lwaToken"] == 1 and _accounts(seller) == 0

    resp = post(client, "/accounts", _form(fake))
    assert resp.status_code == 302 and fake.calls["lwaToken"] == 2
    with seller.session() as s:
        account = s.scalar(select(MarketplaceAccount).where(MarketplaceAccount.tenant_id == seller.tenant.id))
        assert account is not None and account.credentials_envelope is not None
        assert not any(secret.encode() in account.credentials_envelope for secret in secrets)
    assert "Amazon.com (US, ATVPDKIKX0DER)" in client.get("/accounts").get_data(as_text=True)
