"""Connecting a Shopify shop: the custom-app token form and the public app's install flow, against the fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_shopify import FakeClock, FakeShopify
from connectors.shopify.accounts import INSTALL_SCOPES, connect_shopify_account
from connectors.shopify.endpoints import shop_domain
from connectors.shopify.oauth import (
    AppCredentials,
    InstallRefused,
    authorize_url,
    callback_hmac,
    exchange_code,
    new_state,
    verify_callback,
)
from connectors.shopify.tokens import ShopifyToken
from tests.support.shopify import fake_origins
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import AuditEvent, MarketplaceAccount, Tenant

REDIRECT = "https://vault.example/accounts/shopify/callback"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shopify(clock: FakeClock) -> Iterator[FakeShopify]:
    with FakeShopify(speedup=500, seed=0, clock=clock) as fake:
        yield fake
        assert fake.validation_errors == []


def _connect(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeShopify, **kw: object) -> MarketplaceAccount:
    options: dict[str, object] = {
        "name": "Shop",
        "shop": fake.DEFAULT_SHOP.domain,
        "token": ShopifyToken(fake.DEFAULT_TOKEN),
        "api_endpoint": fake.base_url,
        "endpoint_overrides": fake_origins(fake),
        **kw,
    }
    return connect_shopify_account(session, keys=keys, tenant_id=tenant.id, actor="test", **options)  # type: ignore[arg-type]


def test_a_custom_apps_token_connects_audited(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify
) -> None:
    account = _connect(session, keys, tenant, shopify)
    session.commit()
    assert (account.marketplace, account.region, account.api_version) == ("shopify", "global", "2026-07")
    assert account.marketplace_ids == [shopify.DEFAULT_SHOP.domain]
    assert unseal_credentials(session, keys=keys, account=account) == {"access_token": shopify.DEFAULT_TOKEN}
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "account.connect", AuditEvent.tenant_id == tenant.id)
    ).one()
    assert shopify.DEFAULT_TOKEN not in str(event.details)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"token": ShopifyToken("shpat_wrong")}, "refused the access token"),
        ({"shop": "not a shop"}, "shop domain looks like"),
        ({"endpoint_overrides": frozenset()}, "not allowed"),
    ],
)
def test_tokens_that_cannot_sync_are_never_stored(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(AccountSetupError, match=message):
        _connect(session, keys, tenant, shopify, **kw)
    assert session.scalars(select(MarketplaceAccount).where(MarketplaceAccount.tenant_id == tenant.id)).all() == []


def test_a_token_of_another_shop_or_without_read_orders_is_refused(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify
) -> None:
    other = shopify.add_shop("other-store.myshopify.com")
    with pytest.raises(AccountSetupError, match="another shop"):
        _connect(session, keys, tenant, shopify, token=ShopifyToken(shopify.custom_app_token(other.domain)))
    no_orders = shopify.custom_app_token(scopes=["read_products"])
    with pytest.raises(AccountSetupError, match="read_orders"):
        _connect(session, keys, tenant, shopify, token=ShopifyToken(no_orders))


def test_shop_domains() -> None:
    assert shop_domain(" My-Shop ") == "my-shop.myshopify.com"
    assert shop_domain("https://my-shop.myshopify.com/") == "my-shop.myshopify.com"
    for bad in ("evil.example", "my_shop.myshopify.com", "a.myshopify.com.evil.example", ""):
        with pytest.raises(AccountSetupError):
            shop_domain(bad)


def _install(shopify: FakeShopify, state: str) -> dict[str, str]:
    """Follow the install URL to the fake's redirect back: the callback's query parameters."""
    app = shopify.app()
    url = authorize_url(
        shopify.DEFAULT_SHOP.domain,
        client_id=app.client_id,
        redirect_uri=REDIRECT,
        state=state,
        scopes=INSTALL_SCOPES,
        api_endpoint=shopify.base_url,
    )
    answer = httpx.get(url, follow_redirects=False, timeout=10)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT)
    return dict(parse_qsl(urlsplit(location).query))


def test_the_install_flow_ends_in_a_sealed_renewable_token(
    session: Session, keys: KeyManager, tenant: Tenant, shopify: FakeShopify
) -> None:
    app = shopify.app()
    creds = AppCredentials(app.client_id, app.client_secret)
    state = new_state()
    params = _install(shopify, state)
    shop, code = verify_callback(params, app=creds, expected_state=state, now=shopify.now())
    installed = exchange_code(shop, code, app=creds, api_endpoint=shopify.base_url, expiring=True)
    assert set(INSTALL_SCOPES) <= installed.scopes
    token = ShopifyToken.from_grant(
        installed.answer, client_id=creds.client_id, client_secret=creds.client_secret, now=shopify.now()
    )
    assert token.renewable and token.expires_at is not None
    account = _connect(session, keys, tenant, shopify, token=token)
    sealed = unseal_credentials(session, keys=keys, account=account)
    assert set(sealed) == {"access_token", "refresh_token", "client_id", "client_secret", "expires_at"}
    with pytest.raises(InstallRefused, match="authorization code"):  # a code works once
        exchange_code(shop, code, app=creds, api_endpoint=shopify.base_url)


def test_install_callbacks_that_fail_a_check_are_refused(shopify: FakeShopify, clock: FakeClock) -> None:
    app = shopify.app()
    creds = AppCredentials(app.client_id, app.client_secret)
    state = new_state()
    params = _install(shopify, state)
    with pytest.raises(InstallRefused, match="signature"):
        verify_callback({**params, "shop": "evil.myshopify.com"}, app=creds, expected_state=state, now=shopify.now())
    with pytest.raises(InstallRefused, match="state"):
        verify_callback(params, app=creds, expected_state=new_state(), now=shopify.now())
    with pytest.raises(InstallRefused, match="state"):
        verify_callback(params, app=creds, expected_state=None, now=shopify.now())
    forged = {**params, "shop": "evil.example"}
    forged["hmac"] = callback_hmac(forged, app.client_secret)
    with pytest.raises(InstallRefused, match="shop domain"):
        verify_callback(forged, app=creds, expected_state=state, now=shopify.now())
    with pytest.raises(InstallRefused, match="too old"):
        verify_callback(params, app=creds, expected_state=state, now=shopify.now() + timedelta(hours=2))
    assert verify_callback(params, app=creds, expected_state=state, now=shopify.now())[0] == shopify.DEFAULT_SHOP.domain
