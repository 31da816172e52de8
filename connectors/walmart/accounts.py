"""Connecting a Walmart seller account: its API key checked once against the token API, then the vault's
audited connect."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.interfaces import AuthRefused, ConnectorError
from connectors.ratelimit import RateLimiter
from connectors.walmart.client import USAGE_PLANS, RetryPolicy, WalmartClient, WalmartCredentials
from connectors.walmart.endpoints import API_VERSION, REGION, endpoint_policy, endpoints_for
from connectors.walmart.mapping import MARKET_US, MARKETPLACE
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import connect_account
from vault.models import MarketplaceAccount

#: The key check is one token request: no retry, and a person waits for it.
CHECK_RETRY = RetryPolicy(attempts=1, connect_timeout=5.0, read_timeout=10.0)
#: Key checks share one limiter per process (a scope per tenant), so a form submitted in a loop cannot
#: make the vault hammer Walmart's token API.
_CHECK_LIMITER = RateLimiter(USAGE_PLANS)


def try_credentials(account: MarketplaceAccount, secrets: Mapping[str, str]) -> None:
    """One token request with the API key at the account's (checked) token URL; nothing is kept.

    Refuses with a one-line :class:`AccountSetupError` (Walmart's status and error code, never a secret)
    when Walmart refuses the key or cannot be reached.
    """
    ends = endpoints_for(
        sandbox=account.sandbox, api_endpoint=account.api_endpoint, token_endpoint=account.token_endpoint
    )
    client = WalmartClient(
        credentials=WalmartCredentials.from_secrets(secrets),
        base_url=ends.api,
        token_url=ends.token,
        limiter=_CHECK_LIMITER,
        scope=f"walmart-connect:{account.tenant_id}",
        retry=CHECK_RETRY,
    )
    try:
        client.access_token()
    except AuthRefused as exc:
        raise AccountSetupError(f"the Walmart API key does not work: {exc}; nothing was stored") from None
    except ConnectorError as exc:
        raise AccountSetupError(f"the Walmart API key could not be checked: {exc}; nothing was stored") from None
    finally:
        client.close()


def connect_walmart_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    name: str,
    credentials: WalmartCredentials,
    sandbox: bool = False,
    api_endpoint: str | None = None,
    token_endpoint: str | None = None,
    endpoint_overrides: Collection[str] = (),
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect a Walmart Marketplace (US) account with its API key, audited as ``account.connect`` by
    :func:`vault.marketplace_accounts.connect_account`. The caller commits.

    Refuses (:class:`AccountSetupError`, nothing stored) an endpoint other than Walmart's own hosts unless
    its origin is in the operator's ``endpoint_overrides`` (never a tenant's input: the vault would send the
    key there), a key that fails one token request, and everything ``connect_account`` refuses.
    """
    return connect_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        marketplace=MARKETPLACE,
        name=name,
        region=REGION,
        api_version=API_VERSION,
        marketplace_ids=[MARKET_US],
        secrets=credentials.as_secrets(),
        sandbox=sandbox,
        api_endpoint=api_endpoint,
        token_endpoint=token_endpoint,
        endpoints=endpoint_policy(endpoint_overrides),
        probe=try_credentials,
        actor=actor,
        ip=ip,
        now=now,
    )
