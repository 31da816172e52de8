"""Connecting an eBay account from the dashboard: the form sends the seller to eBay's consent page with a
state nonce, eBay's redirect comes back to the callback, which accepts only this session's state, asks for
the Cert ID (never kept in the session cookie) and exchanges the code once; the grant's end shows on the
account, and "Consent again" renews it in place."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connectors.fake_ebay import FakeEbay
from tests.support.dashboard import Clock, Seller, csrf_of, post, show_tracebacks
from tests.support.servers import Database
from vault.models import AuditEvent, MarketplaceAccount
from vault.tenants import create_tenant

CALLBACK = "http://localhost/accounts/ebay/callback"


@pytest.fixture
def fake() -> Iterator[FakeEbay]:
    with FakeEbay(seed=8, accept_url=CALLBACK) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []


def _owner(make_app: Any, db: Database, clock: Clock, fake: FakeEbay) -> tuple[Seller, FlaskClient]:
    app = show_tracebacks(make_app(db.app_url, marketplace_endpoint_overrides=fake.base_url))
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


def _form(fake: FakeEbay, **changes: str) -> dict[str, str]:
    return {
        "name": "eBay US", "marketplace_ids": "EBAY_US, EBAY_GB", "client_id": fake.app.client_id,
        "ru_name": fake.app.ru_name, "api_endpoint": fake.base_url, "token_endpoint": fake.token_url, **changes,
    }  # fmt: skip


def _to_ebay_and_back(client: FlaskClient, path: str, data: dict[str, str]) -> tuple[str, str, str]:
    """Submit, follow the redirect to eBay's consent page as the browser would; the callback path eBay
    sends the seller back to, with its code and state."""
    started = post(client, path, data)
    assert started.status_code == 302, started.get_data(as_text=True)
    consent = httpx.get(started.headers["Location"])  # the seller agrees on eBay
    assert consent.status_code == 302
    back = urlsplit(consent.headers["Location"])
    query = parse_qs(back.query)
    return f"{back.path}?{back.query}", query["code"][0], query["state"][0]


def _account(seller: Seller) -> MarketplaceAccount | None:
    with seller.session() as s:
        return s.scalar(select(MarketplaceAccount).where(MarketplaceAccount.tenant_id == seller.tenant.id))


def test_the_consent_flow_connects_the_account_and_shows_when_the_consent_ends(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeEbay
) -> None:
    seller, client = _owner(make_app, shared_db, clock, fake)
    page = client.get("/accounts").get_data(as_text=True)
    assert "Connect an eBay account" in page and CALLBACK in page
    callback, code, state = _to_ebay_and_back(client, "/accounts/ebay", _form(fake))
    with client.session_transaction() as s:
        assert fake.app.client_secret not in repr(dict(s))
    finish = client.get(callback)
    html = finish.get_data(as_text=True)
    assert finish.status_code == 200 and 'name="client_secret"' in html and "eBay US" in html
    resp = post(
        client, "/accounts/ebay/callback", {"state": state, "code": code, "client_secret": fake.app.client_secret}
    )
    assert resp.status_code == 302
    account = _account(seller)
    assert account is not None and account.marketplace == "ebay" and account.grant_expires_at is not None
    assert account.credentials_envelope and fake.app.client_secret.encode() not in account.credentials_envelope
    page = client.get("/accounts").get_data(as_text=True)
    assert "eBay.com, eBay.co.uk" in page and 'data-testid="grant-expiry"' in page and 'data-testid="reconsent"' in page
    again = post(client, "/accounts/ebay/callback", {"state": state, "code": code, "client_secret": "x"})
    assert again.status_code == 400  # the consent was used up


def test_a_callback_with_another_state_or_a_declined_consent_connects_nothing(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeEbay
) -> None:
    seller, client = _owner(make_app, shared_db, clock, fake)
    _, code, state = _to_ebay_and_back(client, "/accounts/ebay", _form(fake))
    assert client.get(f"/accounts/ebay/callback?code={code}&state=forged").status_code == 400
    token = csrf_of(client.get("/accounts").get_data(as_text=True))
    forged = {"state": "forged", "code": code, "client_secret": fake.app.client_secret}
    assert post(client, "/accounts/ebay/callback", forged, token=token).status_code == 400
    declined = client.get(f"/accounts/ebay/callback?state={state}")
    assert declined.status_code == 302
    assert fake.calls["oauthToken"] == 0 and _account(seller) is None
    refused = post(client, "/accounts/ebay", _form(fake, marketplace_ids="EBAY_MARS"))
    assert refused.status_code == 302 and "consent" not in refused.headers["Location"]
    assert "EBAY_MARS" in client.get("/accounts").get_data(as_text=True)


def test_a_wrong_cert_id_stores_nothing_and_consent_again_renews_the_grant(
    make_app: Any, shared_db: Database, clock: Clock, fake: FakeEbay
) -> None:
    seller, client = _owner(make_app, shared_db, clock, fake)
    _, code, state = _to_ebay_and_back(client, "/accounts/ebay", _form(fake))
    wrong = post(client, "/accounts/ebay/callback", {"state": state, "code": code, "client_secret": "not-it"})
    assert wrong.status_code == 302 and _account(seller) is None
    assert "not-it" not in client.get("/accounts").get_data(as_text=True)
    _, code, state = _to_ebay_and_back(client, "/accounts/ebay", _form(fake))
    post(client, "/accounts/ebay/callback", {"state": state, "code": code, "client_secret": fake.app.client_secret})
    account = _account(seller)
    assert account is not None
    fake.expire_refresh_tokens()
    callback, code, state = _to_ebay_and_back(client, f"/accounts/{account.id}/ebay/reconsent", {})
    assert 'name="client_secret"' not in client.get(callback).get_data(as_text=True)
    assert post(client, "/accounts/ebay/callback", {"state": state, "code": code}).status_code == 302
    with seller.session() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == seller.tenant.id)).all()
    assert "account.reconsent" in actions
