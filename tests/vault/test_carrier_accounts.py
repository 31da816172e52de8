"""Connecting and removing a carrier account: the API token sealed under the tenant key, the ship-from
address checked, endpoints limited to the carrier's own or the operator's, each act audited without a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.carriers.registry import SHIPPO
from tests.support.carriers import SHIP_FROM_VALUES
from vault.carrier_accounts import (
    connect_carrier_account,
    find_carrier_account,
    remove_carrier_account,
    ship_from_of,
    unseal_carrier_credentials,
)
from vault.errors import CarrierSetupError, NotFound
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy
from vault.models import AuditEvent, CarrierAccount, Tenant

TOKEN = "shippo_test_5ecre7t0ken"


def _connect(session: Session, keys: KeyManager, tenant: Tenant, **overrides: Any) -> CarrierAccount:
    values: dict[str, Any] = {
        "carrier": "shippo", "name": "Shippo main", "secrets": {"api_token": TOKEN},
        "ship_from": SHIP_FROM_VALUES, "actor": "user:1", **overrides,
    }  # fmt: skip
    return connect_carrier_account(session, keys=keys, tenant_id=tenant.id, **values)


def test_connecting_seals_the_token_and_audits_the_account_without_it(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    account = _connect(session, keys, tenant, secrets={"api_token": f"  {TOKEN} "})
    session.commit()
    assert account.credentials_envelope is not None and TOKEN.encode() not in account.credentials_envelope
    assert unseal_carrier_credentials(session, keys=keys, account=account) == {"api_token": TOKEN}
    assert ship_from_of(account).postal_code == "94117" and account.ship_from["country_code"] == "US"
    mine = (AuditEvent.tenant_id == tenant.id) & (AuditEvent.action == "carrier.connect")
    event = session.scalars(select(AuditEvent).where(mine)).one()
    assert event.details == {
        "carrier_account_id": account.id, "carrier": "shippo", "test_mode": False, "custom_endpoint": False,
    }  # fmt: skip
    assert TOKEN not in json.dumps(event.details)
    assert find_carrier_account(session, tenant_id=tenant.id) is account


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": " "}, "name is 1 to 200"),
        ({"secrets": {"api_token": " "}}, "every credential is needed: api_token"),
        ({"ship_from": {**SHIP_FROM_VALUES, "postal_code": ""}}, "needs postal code"),
        ({"ship_from": {**SHIP_FROM_VALUES, "country_code": "USA"}}, "two letters"),
        ({"api_endpoint": "http://10.0.0.8:9000"}, "endpoint is not allowed"),
    ],
)
def test_a_bad_setting_is_refused_with_nothing_stored(
    session: Session, keys: KeyManager, tenant: Tenant, overrides: dict[str, Any], message: str
) -> None:
    policy = EndpointPolicy(api=SHIPPO.api_hosts, api_name="Shippo API")
    with pytest.raises(CarrierSetupError, match=message) as refused:
        _connect(session, keys, tenant, endpoints=policy, **overrides)
    assert TOKEN not in str(refused.value)
    assert session.scalars(select(CarrierAccount).where(CarrierAccount.tenant_id == tenant.id)).all() == []


def test_an_endpoint_the_operator_allows_is_kept_and_a_taken_name_refused(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    policy = EndpointPolicy(api=SHIPPO.api_hosts, overrides=frozenset({"http://127.0.0.1:8555"}))
    account = _connect(session, keys, tenant, api_endpoint="http://127.0.0.1:8555/", endpoints=policy)
    assert account.api_endpoint == "http://127.0.0.1:8555"
    with pytest.raises(CarrierSetupError, match="named 'Shippo main' already"):
        _connect(session, keys, tenant)


def test_removing_shreds_the_token_and_is_audited(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    account = _connect(session, keys, tenant)
    remove_carrier_account(session, account=account, actor="user:1")
    session.commit()
    assert account.credentials_envelope is None and account.removed_at is not None
    with pytest.raises(NotFound):
        find_carrier_account(session, tenant_id=tenant.id, account_id=account.id)
    with pytest.raises(NotFound):
        remove_carrier_account(session, account=account, actor="user:1")
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.id)).all()
    assert actions.count("carrier.remove") == 1
