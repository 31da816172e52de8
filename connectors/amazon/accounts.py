"""Connecting an Amazon seller account: what Amazon's settings must be, then the vault's audited connect."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.amazon.client import LwaCredentials, RetryPolicy, SpApiClient
from connectors.amazon.endpoints import API_VERSIONS, REGIONS, USAGE_PLANS, endpoint_policy, endpoints_for
from connectors.amazon.marketplaces import MARKETPLACES
from connectors.interfaces import AuthRefused, ConnectorError
from connectors.ratelimit import RateLimiter
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import connect_account
from vault.models import MarketplaceAccount

#: The credential check is one LWA exchange: no retry, and a person waits for it.
CHECK_RETRY = RetryPolicy(attempts=1, connect_timeout=5.0, read_timeout=10.0)
#: Credential checks share one limiter per process (lwaToken's plan, a scope per tenant), so a form
#: submitted in a loop cannot make the vault hammer Login with Amazon.
_CHECK_LIMITER = RateLimiter(USAGE_PLANS)


def _check_marketplace_ids(region: str, marketplace_ids: Iterable[str]) -> list[str]:
    """The ids, each known to Amazon's table and served by ``region``; :class:`AccountSetupError` names the first
    that is not."""
    ids = [i.strip() for i in marketplace_ids if i.strip()]
    for marketplace_id in ids:
        known = MARKETPLACES.get(marketplace_id)
        if known is None:
            raise AccountSetupError(f"not an Amazon marketplace id: {marketplace_id!r} (e.g. ATVPDKIKX0DER)")
        if known.region != region:
            raise AccountSetupError(
                f"a marketplace of another region: {known.label} is in {known.region}, not {region}; "
                "connect it as an account of its own region"
            )
    return ids


def try_credentials(account: MarketplaceAccount, secrets: Mapping[str, str]) -> None:
    """One LWA exchange with the account's credentials at its (checked) token endpoint; nothing is kept.

    Refuses with a one-line :class:`AccountSetupError` (Amazon's status and error code, never a secret) when
    Login with Amazon refuses them or cannot be reached.
    """
    ends = endpoints_for(
        account.region,
        sandbox=account.sandbox,
        sp_api_endpoint=account.api_endpoint,
        lwa_endpoint=account.token_endpoint,
    )
    client = SpApiClient(
        credentials=LwaCredentials.from_secrets(secrets),
        base_url=ends.sp_api,
        lwa_url=ends.lwa,
        limiter=_CHECK_LIMITER,
        scope=f"amazon-connect:{account.tenant_id}",
        retry=CHECK_RETRY,
    )
    try:
        client.access_token()
    except AuthRefused as exc:
        raise AccountSetupError(f"the LWA credentials do not work: {exc}; nothing was stored") from None
    except ConnectorError as exc:
        raise AccountSetupError(f"the LWA credentials could not be checked: {exc}; nothing was stored") from None
    finally:
        client.close()


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
    endpoint_overrides: Collection[str] = (),
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect an Amazon account (SP-API region, Orders API version, LWA credentials), audited as
    ``account.connect`` by :func:`vault.marketplace_accounts.connect_account`. The caller commits.

    Refuses (:class:`AccountSetupError`, nothing stored) a region other than na, eu or fe, an unknown Orders
    API version, a marketplace id that is not Amazon's or not the region's, an endpoint other than the
    region's own hosts and Amazon's LWA URL unless its origin is in the operator's ``endpoint_overrides``
    (never a tenant's input: the vault would send the credentials there), credentials that fail one LWA
    exchange, and everything :func:`~vault.marketplace_accounts.connect_account` refuses.
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
        marketplace_ids=_check_marketplace_ids(region, marketplace_ids),
        secrets=credentials.as_secrets(),
        sandbox=sandbox,
        api_endpoint=sp_api_endpoint,
        token_endpoint=lwa_endpoint,
        endpoints=endpoint_policy(region, endpoint_overrides),
        probe=try_credentials,
        actor=actor,
        ip=ip,
        now=now,
    )
