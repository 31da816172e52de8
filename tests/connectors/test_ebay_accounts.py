"""Connecting an eBay seller: the consent URL, the code exchange as the only probe, the endpoints held to
eBay's own hosts or the operator's overrides, the refresh token sealed and its end kept in clear, and a
re-consent when the grant ran out. Nothing is stored when a check fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.ebay.accounts import EbayApp, connect_ebay_account, consent_url, reconsent_ebay_account
from connectors.ebay.client import EbayCredentials
from connectors.ebay.endpoints import SCOPE
from connectors.fake_amazon import FakeClock
from connectors.fake_ebay import FakeEbay
from connectors.interfaces import ConsentExpired
from connectors.sync import sync_account
from tests.support.ebay import SPEEDUP, make_ebay_connector
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import AuditEvent, MarketplaceAccount, Tenant

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeEbay]:
    with FakeEbay(seed=4, clock=clock, speedup=SPEEDUP) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []


def _app(fake: FakeEbay) -> EbayApp:
    return EbayApp(fake.app.client_id, fake.app.client_secret, fake.app.ru_name)


def _consent(fake: FakeEbay, state: str = "n0nce") -> str:
    """Follow the consent URL as the seller's browser does; the code eBay's redirect carries."""
    url = consent_url(
        fake.app.client_id,
        fake.app.ru_name,
        state=state,
        api_endpoint=fake.base_url,
        endpoint_overrides={fake.base_url},
    )
    redirect = httpx.get(url)
    assert redirect.status_code == 302
    query = parse_qs(urlsplit(redirect.headers["Location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


def _connect(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "name": "eBay US", "marketplace_ids": ["EBAY_US", "ebay_gb"], "app": _app(fake), "code": _consent(fake),
        "api_endpoint": fake.base_url, "token_endpoint": fake.token_url, "endpoint_overrides": {fake.base_url},
        "actor": "dashboard:owner@example.com", "now": fake.now(), **overrides,
    }  # fmt: skip
    return connect_ebay_account(session, keys=keys, tenant_id=tenant.id, **values)


def _stored(session: Session, tenant: Tenant) -> int:
    return session.scalar(select(func.count()).where(MarketplaceAccount.tenant_id == tenant.id)) or 0


def _actions(session: Session, tenant: Tenant) -> list[str]:
    query = select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.seq)
    return list(session.scalars(query).all())


def test_the_consent_url_is_ebay_s_authorize_page_with_the_app_the_runame_the_scope_and_the_state() -> None:
    app = EbayApp("labelvau-App-PRD-1", "PRD-secret", "labelvault-labelvau-App-abcd")
    assert "PRD-secret" not in repr(app)
    for sandbox, host in ((False, "https://auth.ebay.com"), (True, "https://auth.sandbox.ebay.com")):
        url = urlsplit(consent_url(app.client_id, app.ru_name, state="s-1", sandbox=sandbox))
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{host}/oauth2/authorize"
        assert parse_qs(url.query) == {
            "client_id": ["labelvau-App-PRD-1"],
            "redirect_uri": ["labelvault-labelvau-App-abcd"],
            "response_type": ["code"],
            "scope": [SCOPE],
            "state": ["s-1"],
        }
    with pytest.raises(AccountSetupError, match="not allowed"):
        consent_url(app.client_id, app.ru_name, state="s", api_endpoint="https://evil.example")
    with pytest.raises(AccountSetupError, match="state"):
        consent_url(app.client_id, app.ru_name, state="")
    with pytest.raises(AccountSetupError, match="client_secret"):
        EbayApp("id", " ", "ru")


def test_a_seller_is_connected_from_its_consent_with_the_grant_s_end_in_clear(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    fake.generate_orders(12)
    account = _connect(session, keys, tenant, fake)
    session.commit()
    assert (account.marketplace, account.region, account.api_version) == ("ebay", "global", "v1")
    assert account.marketplace_ids == ["EBAY_US", "EBAY_GB"]
    assert account.grant_expires_at == fake.now() + timedelta(seconds=47304000)
    stored = EbayCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account))
    assert (stored.client_id, stored.ru_name) == (fake.app.client_id, fake.app.ru_name)
    assert stored.refresh_token and stored.refresh_token != fake.seller().refresh_token  # the consent's own
    assert fake.calls == {"oauthToken": 1}
    assert _actions(session, tenant) == ["tenant.create", "account.connect"]
    summary = sync_account(
        session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake)
    )
    assert summary.orders_new == 12


def test_a_code_ebay_will_not_exchange_stores_nothing(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay
) -> None:
    with pytest.raises(AccountSetupError, match="invalid_grant"):
        _connect(session, keys, tenant, fake, code="v^1.1#not-a-code")
    code = _consent(fake)
    with pytest.raises(AccountSetupError, match="invalid_client"):
        _connect(session, keys, tenant, fake, code=code, app=EbayApp(fake.app.client_id, "wrong", fake.app.ru_name))
    with pytest.raises(AccountSetupError, match="without an authorization code"):
        _connect(session, keys, tenant, fake, code=" ")
    assert _stored(session, tenant) == 0
    assert _actions(session, tenant) == ["tenant.create"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"marketplace_ids": ["EBAY_MARS"]}, "not an eBay marketplace id"),
        ({"endpoint_overrides": set()}, "not allowed"),
        ({"token_endpoint": "https://tokens.example/identity/v1/oauth2/token"}, "not allowed"),
        ({"marketplace_ids": []}, "marketplace id"),
    ],
)
def test_bad_markets_and_endpoints_are_refused_before_the_code_goes_anywhere(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, overrides: dict[str, Any], message: str
) -> None:
    code = _consent(fake)
    with pytest.raises(AccountSetupError, match=message):
        _connect(session, keys, tenant, fake, code=code, **overrides)
    assert _stored(session, tenant) == 0
    if "marketplace_ids" not in overrides or overrides["marketplace_ids"]:
        assert fake.calls["oauthToken"] == 0


def test_an_expired_grant_is_consented_again_in_place(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeEbay, clock: FakeClock
) -> None:
    fake.generate_orders(5)
    account = _connect(session, keys, tenant, fake)
    session.commit()
    first_end = account.grant_expires_at
    fake.expire_refresh_tokens()
    with pytest.raises(ConsentExpired):
        sync_account(session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake))
    clock.advance(days=1)
    reconsent_ebay_account(
        session, keys=keys, account=account, app=_app(fake), code=_consent(fake),
        endpoint_overrides={fake.base_url}, actor="dashboard:owner@example.com", now=fake.now(),
    )  # fmt: skip
    session.commit()
    assert account.grant_expires_at == first_end + timedelta(days=1)
    summary = sync_account(
        session, keys=keys, account=account, connector=make_ebay_connector(session, keys, account, fake)
    )
    assert summary.orders_new == 5
    assert [a for a in _actions(session, tenant) if a.startswith("account.")] == [
        "account.connect",
        "account.reconsent",
    ]
