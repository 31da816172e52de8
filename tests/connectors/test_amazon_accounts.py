"""Connecting an Amazon account: Amazon's regions and Orders API versions checked, then the vault's audited
connect."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.amazon.accounts import connect_amazon_account
from connectors.amazon.client import LwaCredentials
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import unseal_credentials
from vault.models import AuditEvent, MarketplaceAccount, Tenant

CREDENTIALS = LwaCredentials("amzn1.application-oa2-client.0f3c", "s3cr3t-Value", "Atzr|IwEBI")


def test_an_amazon_account_is_connected_with_its_lwa_credentials(
    session: Session, keys: KeyManager, tenant: Tenant
) -> None:
    account = connect_amazon_account(
        session, keys=keys, tenant_id=tenant.id, name="JP store", region="fe", api_version="v0",
        marketplace_ids=["A1VC38T7YXB528"], credentials=CREDENTIALS, sandbox=True, actor="cli:ops",
    )  # fmt: skip
    assert (account.marketplace, account.region, account.api_version, account.sandbox) == ("amazon", "fe", "v0", True)
    assert LwaCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account)) == CREDENTIALS
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
    assert session.scalar(select(func.count()).where(MarketplaceAccount.tenant_id == tenant.id)) == 0
