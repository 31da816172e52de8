"""Connecting and removing a marketplace account: one audited domain function each, for the CLI and the
dashboard alike; the credentials are sealed, never audited, and removal shreds every label record."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.vault import make_account, make_orders
from vault.errors import AccountSetupError, NotFound
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.marketplace_accounts import (
    EndpointPolicy,
    connect_account,
    find_account,
    parse_endpoint_overrides,
    remove_account,
    unseal_credentials,
)
from vault.models import AuditEvent, LabelRecordRow, MarketplaceAccount, Order, Tenant
from vault.tenants import create_tenant

SECRETS = {
    "client_id": "amzn1.application-oa2-client.0f3c",
    "client_secret": "s3cr3t-Value",
    "refresh_token": "Atzr|IwEBI",
}


def _connect(session: Session, keys: KeyManager, tenant: Tenant, **overrides: Any) -> MarketplaceAccount:
    values: dict[str, Any] = {
        "marketplace": "amazon", "name": "JP store", "region": "fe", "api_version": "2026-01-01",
        "marketplace_ids": ["A1VC38T7YXB528"], "secrets": SECRETS, "actor": "user:7", "ip": "203.0.113.9",
        **overrides,
    }  # fmt: skip
    return connect_account(session, keys=keys, tenant_id=tenant.id, **values)


def _events(session: Session, tenant: Tenant, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)).all()
    )


def test_connecting_seals_the_credentials_and_audits_the_account_not_its_secrets(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    account = _connect(
        session, keys, tenant, secrets={**SECRETS, "client_secret": "  s3cr3t-Value "},
        api_endpoint="http://127.0.0.1:8123/", marketplace_ids=["A1VC38T7YXB528", " A1VC38T7YXB528"],
        endpoints=EndpointPolicy(overrides=frozenset({"http://127.0.0.1:8123"})),
    )  # fmt: skip
    assert account.id is not None and account.tenant_id == tenant.id and account.removed_at is None
    assert account.marketplace_ids == ["A1VC38T7YXB528"] and account.api_endpoint == "http://127.0.0.1:8123"
    assert account.credentials_envelope is not None
    assert all(secret.encode() not in account.credentials_envelope for secret in SECRETS.values())
    assert unseal_credentials(session, keys=keys, account=account) == SECRETS  # stored trimmed
    (event,) = _events(session, tenant, "account.connect")
    assert (event.actor, event.ip, event.purpose) == ("user:7", "203.0.113.9", "administration")
    assert event.details == {
        "account_id": account.id,
        "marketplace": "amazon",
        "region": "fe",
        "custom_endpoints": True,
    }
    chain = repr([(e.actor, e.outcome, e.order_ref, e.details) for e in _events(session, tenant, "account.connect")])
    assert not any(secret in chain for secret in SECRETS.values())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "  "}, "1 to 200"),
        ({"name": "x" * 201}, "1 to 200"),
        ({"marketplace_ids": [" "]}, "marketplace id"),
        ({"secrets": {**SECRETS, "refresh_token": " "}}, "every credential"),
        ({"secrets": {}}, "every credential"),
        ({"api_endpoint": "sellingpartnerapi-fe.amazon.com"}, "full URL"),
        ({"token_endpoint": "ftp://api.amazon.com/auth/o2/token"}, "full URL"),
        ({"api_endpoint": "http://127.0.0.1:8123"}, "API endpoint is not allowed"),  # no policy: none is
        ({"token_endpoint": "http://10.0.0.7/token"}, "token endpoint is not allowed"),
        (
            {
                "api_endpoint": "http://127.0.0.1:8124",  # another port: another server
                "endpoints": EndpointPolicy(overrides=frozenset({"http://127.0.0.1:8123"})),
            },
            "API endpoint is not allowed",
        ),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_stored(
    session: Session, keys: KeyManager, tenant: Tenant, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(AccountSetupError, match=message) as refused:
        _connect(session, keys, tenant, **overrides)
    assert not any(secret in str(refused.value) for secret in SECRETS.values())
    stored = session.scalar(select(func.count()).where(MarketplaceAccount.tenant_id == tenant.id))
    assert stored == 0 and _events(session, tenant, "account.connect") == []


def test_the_probe_sees_the_checked_account_and_its_refusal_stores_nothing(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    seen: list[tuple[str | None, dict[str, str]]] = []

    def refuse(account: MarketplaceAccount, secrets: Any) -> None:
        seen.append((account.api_endpoint, dict(secrets)))
        raise AccountSetupError("the credentials do not work")

    policy = EndpointPolicy(api=frozenset({"https://sp.example"}))
    with pytest.raises(AccountSetupError, match="do not work"):
        _connect(session, keys, tenant, secrets={**SECRETS, "client_id": f" {SECRETS['client_id']} "},
                 api_endpoint="https://sp.example/", endpoints=policy, probe=refuse)  # fmt: skip
    assert seen == [("https://sp.example", SECRETS)]  # once, after the checks, with what would be stored
    stored = session.scalar(select(func.count()).where(MarketplaceAccount.tenant_id == tenant.id))
    assert stored == 0 and _events(session, tenant, "account.connect") == []


def test_operator_overrides_are_origins_only() -> None:
    assert parse_endpoint_overrides(" http://127.0.0.1:8400, HTTPS://Sandbox.Example/ ,") == {
        "http://127.0.0.1:8400",
        "https://sandbox.example",
    }
    for bad in ("http://127.0.0.1:8400/auth", "127.0.0.1:8400", "ftp://x.example", "https://u:pw@x.example"):
        with pytest.raises(ValueError, match="entry 1 is not an origin") as refused:
            parse_endpoint_overrides(bad)
        assert "pw" not in str(refused.value)


def test_an_account_name_is_taken_for_good_within_a_tenant(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    first = _connect(session, keys, tenant)
    with pytest.raises(AccountSetupError, match="already"):
        _connect(session, keys, tenant, name=" JP store ")
    remove_account(session, account=first, actor="cli")
    with pytest.raises(AccountSetupError, match="already"):  # a removed account keeps its name (its stubs do)
        _connect(session, keys, tenant)
    other = create_tenant(session, keys=keys, slug=f"other-{uuid.uuid4().hex[:6]}", name="Other Seller", actor="test")
    assert _connect(session, keys, other).tenant_id == other.id  # another tenant's names are its own


def test_removing_shreds_credentials_and_label_records_and_is_audited(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    account = _connect(session, keys, tenant)
    kept = make_account(session, tenant, name="US store")
    orders = make_orders(session, keys, account, 3)
    untouched = make_orders(session, keys, kept, 1, start=10)[0]
    assert remove_account(session, account=account, actor="user:7", ip="203.0.113.9") == 3
    assert account.removed_at is not None and account.credentials_envelope is None
    with pytest.raises(NotFound):
        unseal_credentials(session, keys=keys, account=account)
    for order in orders:
        session.refresh(order)
        assert order.erased_at is not None and order.label is None  # the non-PII stub stays, erased
    records = session.scalar(
        select(func.count()).select_from(LabelRecordRow).join(Order).where(Order.account_id == account.id)
    )
    assert records == 0
    assert unseal_label(session, keys=keys, order=untouched).name  # the other account's orders are left alone
    (event,) = _events(session, tenant, "account.remove")
    assert (event.actor, event.ip, event.details) == (
        "user:7",
        "203.0.113.9",
        {"account_id": account.id, "records_shredded": 3},
    )


def test_a_removed_or_foreign_account_is_not_found(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    account = _connect(session, keys, tenant)
    assert find_account(session, tenant_id=tenant.id, account_id=account.id) is account
    other = create_tenant(session, keys=keys, slug=f"other-{uuid.uuid4().hex[:6]}", name="Other Seller", actor="test")
    with pytest.raises(NotFound):
        find_account(session, tenant_id=other.id, account_id=account.id)
    remove_account(session, account=account, actor="cli")
    with pytest.raises(NotFound):
        find_account(session, tenant_id=tenant.id, account_id=account.id)
    with pytest.raises(NotFound):  # removing twice writes nothing more
        remove_account(session, account=account, actor="cli")
    assert len(_events(session, tenant, "account.remove")) == 1
