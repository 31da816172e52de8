"""Connecting an Amazon account: Amazon's regions, marketplace ids and Orders API versions checked, the
endpoints held to Amazon's own hosts or the operator's overrides, the credentials tried with one LWA
exchange, then the vault's audited connect. Nothing is stored when a check fails."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.amazon import connector_for_account
from connectors.amazon.accounts import connect_amazon_account
from connectors.amazon.client import LwaCredentials
from connectors.amazon.endpoints import REGIONS, SANDBOX_REGIONS
from connectors.amazon.marketplaces import MARKETPLACES, in_region
from connectors.fake_amazon import FakeAmazon
from connectors.interfaces import ConnectorError
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import AuditEvent, MarketplaceAccount, Tenant

CREDENTIALS = LwaCredentials("amzn1.application-oa2-client.0f3c", "s3cr3t-Value", "Atzr|IwEBI")
LWA = "lwaToken"


def _credentials(fake: FakeAmazon) -> LwaCredentials:
    s = fake.DEFAULT_SELLER
    return LwaCredentials(s.client_id, s.client_secret, s.refresh_token)


def _connect(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "name": "US store", "region": "na", "api_version": "2026-01-01", "marketplace_ids": ["ATVPDKIKX0DER"],
        "credentials": _credentials(fake), "sp_api_endpoint": fake.base_url, "lwa_endpoint": fake.lwa_url,
        "endpoint_overrides": {fake.base_url}, "actor": "cli:ops", **overrides,
    }  # fmt: skip
    return connect_amazon_account(session, keys=keys, tenant_id=tenant.id, **values)


def _stored(session: Session, tenant: Tenant) -> int:
    return session.scalar(select(func.count()).where(MarketplaceAccount.tenant_id == tenant.id)) or 0


def test_an_amazon_account_is_connected_after_one_lwa_exchange(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    account = _connect(session, keys, tenant, fake, region="fe", api_version="v0", marketplace_ids=["A1VC38T7YXB528"])
    assert (account.marketplace, account.region, account.api_version) == ("amazon", "fe", "v0")
    assert account.api_endpoint == fake.base_url and account.token_endpoint == fake.lwa_url
    assert LwaCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account)) == _credentials(fake)
    assert fake.calls[LWA] == 1  # the credentials were tried once, and only the token endpoint was called
    assert sum(fake.calls.values()) == 1
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)).all()
    assert actions == ["tenant.create", "account.connect"]


@pytest.mark.parametrize(
    ("region", "api_version", "message"), [("jp", "v0", "region"), ("fe", "2024-01-01", "version")]
)
def test_unknown_regions_and_api_versions_are_refused(
    session: Session, keys: KeyManager, tenant: Tenant, region: str, api_version: str, message: str
) -> None:
    with pytest.raises(AccountSetupError, match=message):
        connect_amazon_account(
            session, keys=keys, tenant_id=tenant.id, name="JP store", region=region, api_version=api_version,
            marketplace_ids=["A1VC38T7YXB528"], credentials=CREDENTIALS, actor="cli:ops",
        )  # fmt: skip
    assert _stored(session, tenant) == 0


def test_the_marketplace_table_knows_every_region_and_names_each_marketplace() -> None:
    assert {m.region for m in MARKETPLACES.values()} == set(REGIONS)
    us, jp, de = (MARKETPLACES[i] for i in ("ATVPDKIKX0DER", "A1VC38T7YXB528", "A1PA6795UKMFR9"))
    assert (us.region, us.country_code, us.name) == ("na", "US", "Amazon.com")
    assert (jp.region, jp.country_code, jp.name) == ("fe", "JP", "Amazon.co.jp")
    assert (de.region, de.country_code, de.name) == ("eu", "DE", "Amazon.de")
    assert jp.label == "Amazon.co.jp (JP, A1VC38T7YXB528)"
    assert [m.country_code for m in in_region("fe")] == ["SG", "AU", "JP"]
    assert len(MARKETPLACES) == 23


@pytest.mark.parametrize(
    ("region", "ids", "message"),
    [
        ("na", ["ATVPDKIKX0DER", "A1VC38T7YXB528"], r"Amazon\.co\.jp \(JP, A1VC38T7YXB528\) is in fe, not na"),
        ("eu", ["A1PA6795UKMFR9", "ATVPDKIKX0DEX"], "not an Amazon marketplace id: 'ATVPDKIKX0DEX'"),
    ],
)
def test_marketplace_ids_must_be_amazons_and_the_regions(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, region: str, ids: list[str], message: str
) -> None:
    with pytest.raises(AccountSetupError, match=message):
        _connect(session, keys, tenant, fake, region=region, marketplace_ids=ids)
    assert _stored(session, tenant) == 0 and fake.calls[LWA] == 0


@pytest.mark.parametrize(
    "endpoints",
    [
        {"lwa_endpoint": "http://169.254.169.254/latest/meta-data"},  # the cloud's metadata service
        {"lwa_endpoint": "https://api.amazon.com.evil.example/auth/o2/token"},
        {"lwa_endpoint": "http://api.amazon.com/auth/o2/token"},  # Amazon's host, but not over https
        {"sp_api_endpoint": "https://sellingpartnerapi-eu.amazon.com"},  # another region's host
        {"sp_api_endpoint": "https://internal.example"},
    ],
)
def test_an_endpoint_is_amazons_own_or_on_an_origin_the_operator_allows(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, endpoints: dict[str, str]
) -> None:
    with pytest.raises(AccountSetupError, match="endpoint is not allowed"):
        _connect(session, keys, tenant, fake, **endpoints)
    with pytest.raises(AccountSetupError, match="endpoint is not allowed"):  # the fake, not allowed by the operator
        _connect(session, keys, tenant, fake, endpoint_overrides=())
    assert _stored(session, tenant) == 0 and fake.calls[LWA] == 0  # nothing was sent anywhere


def test_the_regions_own_hosts_need_no_override(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    for n, host in enumerate((REGIONS["na"] + "/", SANDBOX_REGIONS["na"])):
        account = _connect(session, keys, tenant, fake, name=f"US {n}", sp_api_endpoint=host)
        assert account.api_endpoint == host.rstrip("/")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"refresh_token": "Atzr|not-the-sellers"}, r"do not work: .*HTTP 400 invalid_grant"),
        ({"client_secret": "not-the-apps"}, r"do not work: .*HTTP 401 invalid_client"),
    ],
)
def test_credentials_that_fail_the_lwa_exchange_are_not_stored(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon, change: dict[str, str], message: str
) -> None:
    good = _credentials(fake).as_secrets()
    bad = LwaCredentials.from_secrets({**good, **change})
    with pytest.raises(AccountSetupError, match=message) as refused:
        _connect(session, keys, tenant, fake, credentials=bad)
    assert "\n" not in str(refused.value) and not any(
        v in str(refused.value) for v in (*good.values(), *change.values())
    )
    assert _stored(session, tenant) == 0 and fake.calls[LWA] == 1


def test_an_unreachable_token_endpoint_is_tried_once_and_nothing_is_stored(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.inject(status=503, count=5, operation=LWA)
    with pytest.raises(AccountSetupError, match="could not be checked: lwaToken: HTTP 503"):
        _connect(session, keys, tenant, fake)
    assert _stored(session, tenant) == 0 and fake.calls[LWA] == 1  # no retry while a person waits


def test_a_stored_endpoint_no_longer_allowed_sends_the_credentials_nowhere(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    """An account stored before the endpoint rule (or whose override the operator withdrew) is refused at
    sync time, before its credentials are unsealed or sent: no LWA exchange reaches any server."""
    account = _connect(session, keys, tenant, fake)
    exchanges = fake.calls[LWA]
    connector_for_account(session, keys=keys, account=account, endpoint_overrides={fake.base_url}).close()
    with pytest.raises(ConnectorError) as refused:
        connector_for_account(session, keys=keys, account=account)  # the operator no longer allows the fake
    assert "SP-API endpoint is not allowed" in str(refused.value) and CREDENTIALS.client_secret not in str(
        refused.value
    )
    account.api_endpoint, account.token_endpoint = REGIONS["na"], "https://attacker.example/token"  # as stored once
    with pytest.raises(ConnectorError, match="token endpoint is not allowed"):
        connector_for_account(session, keys=keys, account=account, endpoint_overrides={fake.base_url})
    assert fake.calls[LWA] == exchanges
