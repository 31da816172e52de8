"""Connecting a Walmart account from the dashboard: the API key checked once and never echoed, endpoints
only where the operator allows them, the page in Chinese too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.fake_walmart import FakeWalmart
from tests.support.dashboard import Clock, Seller, post, show_tracebacks
from tests.support.servers import Database
from vault.models import MarketplaceAccount
from vault.tenants import create_tenant

PAGE = "/accounts/connect/walmart"


@pytest.fixture
def fake() -> Iterator[FakeWalmart]:
    with FakeWalmart(seed=4) as marketplace:
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


def _form(fake: FakeWalmart, **changes: str) -> dict[str, str]:
    s = fake.DEFAULT_SELLER
    form = {"name": "Walmart US", "client_id": s.client_id, "client_secret": s.client_secret}
    return {**form, "api_endpoint": fake.base_url, **changes}


def _account(seller: Seller) -> MarketplaceAccount | None:
    with seller.session() as s:
        found = s.scalar(select(MarketplaceAccount).where(MarketplaceAccount.tenant_id == seller.tenant.id))
        if found is not None:
            s.expunge(found)
        return found


def test_a_tenant_cannot_point_a_walmart_account_elsewhere(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeWalmart
) -> None:
    seller, client = _owner(make_app, shared_db, clock)  # the operator allows no overrides
    page = client.get("/accounts").get_data(as_text=True)  # the accounts page has a Walmart section
    assert 'data-testid="connect-walmart"' in page and "Connect an Amazon account" in page
    assert 'name="api_endpoint"' not in page and 'name="api_endpoint"' not in client.get(PAGE).get_data(as_text=True)
    resp = post(client, PAGE, _form(fake))  # the field, forged into the form
    assert resp.status_code == 400 and "That endpoint is not allowed: use Walmart" in resp.get_data(as_text=True)
    assert sum(fake.calls.values()) == 0 and _account(seller) is None


def test_the_key_is_checked_once_stored_sealed_and_never_echoed(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeWalmart
) -> None:
    seller, client = _owner(make_app, shared_db, clock, marketplace_endpoint_overrides=fake.base_url)
    assert 'name="api_endpoint"' in client.get(PAGE).get_data(as_text=True)
    resp = post(client, PAGE, _form(fake, client_secret="not-the-secret"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Walmart refused this API key; nothing was stored." in html
    assert "not-the-secret" not in html and fake.calls["tokenAPI"] == 1 and _account(seller) is None

    resp = post(client, PAGE, _form(fake))
    assert resp.status_code == 302 and fake.calls["tokenAPI"] == 2
    account = _account(seller)
    assert account is not None and (account.marketplace, account.marketplace_ids) == ("walmart", ["WALMART_US"])
    assert account.credentials_envelope is not None
    assert fake.DEFAULT_SELLER.client_secret.encode() not in account.credentials_envelope


def test_the_connect_page_reads_in_chinese(make_app: Any, shared_db: Database, clock: Clock) -> None:
    _, client = _owner(make_app, shared_db, clock)
    post(client, "/language", {"locale": "zh_Hans", "next": PAGE})
    page = client.get(PAGE).get_data(as_text=True)
    assert "连接 Walmart 账户" in page and "客户端密钥" in page
