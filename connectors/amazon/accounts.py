"""Connecting an Amazon seller account: what Amazon's settings must be, then the vault's audited connect."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.amazon.client import LwaCredentials
from connectors.amazon.endpoints import API_VERSIONS, REGIONS
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import connect_account
from vault.models import MarketplaceAccount


def connect_amazon_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    name: str,
    region: str,
    api_version: str,
    marketplace_ids: Iterable[str],
    credentials: LwaCredentials,
    sandbox: bool = False,
    sp_api_endpoint: str | None = None,
    lwa_endpoint: str | None = None,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect an Amazon account (SP-API region, Orders API version, LWA credentials), audited as
    ``account.connect`` by :func:`vault.marketplace_accounts.connect_account`. The caller commits.

    Refuses (:class:`AccountSetupError`) a region other than na, eu or fe, an unknown Orders API version,
    and everything :func:`~vault.marketplace_accounts.connect_account` refuses.
    """
    if region not in REGIONS:
        raise AccountSetupError(f"an Amazon region is one of {', '.join(sorted(REGIONS))}")
    if api_version not in API_VERSIONS:
        raise AccountSetupError(f"an Orders API version is one of {', '.join(API_VERSIONS)}")
    return connect_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        marketplace="amazon",
        name=name,
        region=region,
        api_version=api_version,
        marketplace_ids=marketplace_ids,
        secrets=credentials.as_secrets(),
        sandbox=sandbox,
        sp_api_endpoint=sp_api_endpoint,
        lwa_endpoint=lwa_endpoint,
        actor=actor,
        ip=ip,
        now=now,
    )
