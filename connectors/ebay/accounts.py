"""Connecting an eBay seller: the consent URL, the code exchange, and the vault's audited connect.

eBay's grant is the seller's consent: labelvault sends the seller to eBay's consent page with the app's
client id, its RuName and a ``state`` nonce; eBay redirects back (to the URL registered for the RuName)
with an authorization code, which the app exchanges at the token endpoint for the seller's refresh token.
That exchange is the credentials' probe: a code that can't be exchanged stores nothing. The refresh token
is sealed with the app's keyset; its end (``refresh_token_expires_in``) is kept in clear on the account
(``grant_expires_at``) so the seller sees it coming, and a re-consent seals the new token in its place.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from connectors.ebay.client import EbayClient, EbayCredentials, Grant, RetryPolicy
from connectors.ebay.endpoints import (
    API_HOST,
    AUTHORIZE_PATH,
    REGION,
    SANDBOX_API_HOST,
    SCOPE,
    consent_host,
    endpoint_policy,
    endpoints_for,
    usage_plans,
)
from connectors.ebay.platform import MARKETPLACE_NAMES
from connectors.interfaces import ConnectorError
from connectors.ratelimit import RateLimiter
from vault.audit import append_event
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy, connect_account, reseal_credentials
from vault.models import MarketplaceAccount

#: The code exchange is one call a person waits for: no retry.
CHECK_RETRY = RetryPolicy(attempts=1, connect_timeout=5.0, read_timeout=10.0)
#: Exchanges share one limiter per process (eBay's authorization-code quota), so a callback hit in a loop
#: can't make the vault hammer eBay.
_CHECK_LIMITER = RateLimiter(usage_plans())
API_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class EbayApp:
    """The eBay developer application an account syncs through: its keyset and RuName (never printed)."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    ru_name: str = field(repr=False)

    def __post_init__(self) -> None:
        missing = [n for n in ("client_id", "client_secret", "ru_name") if not getattr(self, n).strip()]
        if missing:
            raise AccountSetupError(f"the eBay app needs its {', '.join(missing)}")


def check_marketplace_ids(marketplace_ids: Iterable[str]) -> list[str]:
    """The ids, upper-cased, each one of eBay's; :class:`AccountSetupError` names the first that is not."""
    ids = [i.strip().upper() for i in marketplace_ids if i.strip()]
    for marketplace_id in ids:
        if marketplace_id not in MARKETPLACE_NAMES:
            raise AccountSetupError(f"not an eBay marketplace id: {marketplace_id[:40]!r} (e.g. EBAY_US)")
    return ids


def _policy(endpoint_overrides: Collection[str]) -> EndpointPolicy:
    return endpoint_policy(endpoint_overrides)


def consent_url(
    client_id: str,
    ru_name: str,
    *,
    state: str,
    sandbox: bool = False,
    api_endpoint: str | None = None,
    endpoint_overrides: Collection[str] = (),
) -> str:
    """The page where the seller grants the app (``client_id``, with its ``ru_name``) read access to its orders
    (eBay's ``/oauth2/authorize``), carrying ``state`` back to the callback. Neither is a secret: the Cert ID
    is needed only for the exchange. ``api_endpoint`` (a fake, an allowed origin) serves its own page."""
    if not state:
        raise AccountSetupError("a consent needs a state nonce")
    if not client_id.strip() or not ru_name.strip():
        raise AccountSetupError("a consent needs the app's App ID and RuName")
    policy = _policy(endpoint_overrides)
    api = policy.check(api_endpoint, policy.api_name, policy.api) or (SANDBOX_API_HOST if sandbox else API_HOST)
    query = {
        "client_id": client_id.strip(),
        "redirect_uri": ru_name.strip(),
        "response_type": "code",
        "scope": SCOPE,
        "state": state,
    }
    return f"{consent_host(api)}{AUTHORIZE_PATH}?{urlencode(query)}"


def exchange_code(
    app: EbayApp, code: str, *, api_endpoint: str | None, token_endpoint: str | None, now: datetime | None = None
) -> Grant:
    """Exchange the consent's authorization code once; a one-line :class:`AccountSetupError` if eBay refuses
    it or can't be reached (nothing is kept). ``now`` dates the grant's end (default: the clock)."""
    if not code.strip():
        raise AccountSetupError("the consent came back without an authorization code")
    ends = endpoints_for(api_endpoint, token_endpoint)
    client = EbayClient(
        credentials=EbayCredentials(app.client_id, app.client_secret, app.ru_name),
        api_url=ends.api,
        token_url=ends.token,
        limiter=_CHECK_LIMITER,
        retry=CHECK_RETRY,
        clock=(lambda: now) if now is not None else None,
    )
    try:
        return client.exchange_code(code.strip())
    except ConnectorError as exc:
        raise AccountSetupError(f"eBay did not accept the consent: {exc}; nothing was stored") from None
    finally:
        client.close()


def connect_ebay_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    name: str,
    marketplace_ids: Iterable[str],
    app: EbayApp,
    code: str,
    sandbox: bool = False,
    api_endpoint: str | None = None,
    token_endpoint: str | None = None,
    endpoint_overrides: Collection[str] = (),
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect an eBay seller from its consent's authorization code, audited as ``account.connect`` by
    :func:`vault.marketplace_accounts.connect_account`. The caller commits.

    Refuses (:class:`AccountSetupError`, nothing stored) a marketplace id that isn't eBay's, an endpoint
    other than eBay's own hosts unless its origin is in the operator's ``endpoint_overrides``, a code eBay
    won't exchange, and everything ``connect_account`` refuses. The endpoints are checked before the code
    goes anywhere.
    """
    ids = check_marketplace_ids(marketplace_ids)
    policy = _policy(endpoint_overrides)
    if sandbox and not api_endpoint:
        api_endpoint = SANDBOX_API_HOST
    api = policy.check(api_endpoint, policy.api_name, policy.api)
    token = policy.check(token_endpoint, "token", policy.token)
    grant = exchange_code(app, code, api_endpoint=api, token_endpoint=token, now=now)
    account = connect_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        marketplace="ebay",
        name=name,
        region=REGION,
        api_version=API_VERSION,
        marketplace_ids=ids,
        secrets=EbayCredentials(app.client_id, app.client_secret, app.ru_name, grant.refresh_token).as_secrets(),
        sandbox=sandbox,
        api_endpoint=api,
        token_endpoint=token,
        endpoints=policy,
        actor=actor,
        ip=ip,
        now=now,
    )
    account.grant_expires_at = grant.refresh_token_expires_at
    return account


def reconsent_ebay_account(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    app: EbayApp,
    code: str,
    endpoint_overrides: Collection[str] = (),
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Seal the refresh token of the seller's new consent in place of the old one and move
    ``grant_expires_at``; audited as ``account.reconsent``. The caller commits."""
    if account.marketplace != "ebay" or account.removed_at is not None:
        raise AccountSetupError("only a connected eBay account can be consented again")
    policy = _policy(endpoint_overrides)
    api = policy.check(account.api_endpoint, policy.api_name, policy.api)
    token = policy.check(account.token_endpoint, "token", policy.token)
    grant = exchange_code(app, code, api_endpoint=api, token_endpoint=token, now=now)
    secrets = EbayCredentials(app.client_id, app.client_secret, app.ru_name, grant.refresh_token).as_secrets()
    reseal_credentials(session, keys=keys, account=account, secrets=secrets)
    account.grant_expires_at = grant.refresh_token_expires_at
    append_event(
        session,
        tenant_id=account.tenant_id,
        actor=actor,
        action="account.reconsent",
        ip=ip,
        purpose="administration",
        details={"account_id": account.id, "marketplace": "ebay"},
        now=now,
    )
    return account
