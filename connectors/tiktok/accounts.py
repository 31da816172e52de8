"""Connecting a TikTok Shop seller: the seller's authorisation traded for tokens, its shops listed, then the
vault's audited connect.

The seller grants labelvault's app in TikTok Shop and TikTok redirects with a one-time ``auth_code``.
Connecting trades that code at TikTok's token service (``/api/v2/token/get``) for an access and a refresh
token, lists the shops the grant covers (``/authorization/202309/shops``, each with the ``shop_cipher``
every shop call names) and stores the account with the shops' ciphers as its market ids and the app
credentials and tokens sealed. The code is spent by the exchange, so what is sealed is what TikTok
returned; everything that can be checked without TikTok (name, endpoints) is checked first, so a refusal
there doesn't waste the seller's consent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.interfaces import AuthRefused, ConnectorError
from connectors.ratelimit import RateLimiter
from connectors.tiktok.client import RetryPolicy, TikTokClient, TikTokCredentials
from connectors.tiktok.endpoints import API_URL, API_VERSION, AUTH_URL, REGION, USAGE_PLANS, endpoint_policy
from connectors.tiktok.mapping import MARKETPLACE
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import MAX_NAME, connect_account
from vault.models import MarketplaceAccount

#: A person waits for the exchange: one attempt each, short timeouts.
CONNECT_RETRY = RetryPolicy(attempts=1, connect_timeout=5.0, read_timeout=10.0)
#: Connects share one limiter per process (a scope per tenant): a form submitted in a loop can't make the
#: vault hammer TikTok's token service.
_CONNECT_LIMITER = RateLimiter(USAGE_PLANS)


def _shop_ciphers(data: Mapping[str, Any]) -> list[str]:
    shops = data.get("shops")
    ciphers = [s.get("cipher") for s in shops if isinstance(s, Mapping)] if isinstance(shops, list) else []
    return [c for c in ciphers if isinstance(c, str) and c]


def connect_tiktok_account(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    name: str,
    app_key: str,
    app_secret: str,
    auth_code: str,
    api_endpoint: str | None = None,
    token_endpoint: str | None = None,
    endpoint_overrides: Collection[str] = (),
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> MarketplaceAccount:
    """Connect a TikTok Shop seller from its ``auth_code``; audited as ``account.connect``. The caller commits.

    Refuses (:class:`AccountSetupError`, one line, nothing stored, never a secret in it) a missing app key,
    secret or code, a name that is empty, too long or taken, an endpoint other than TikTok's own unless its
    origin is in the operator's ``endpoint_overrides``, a code or app credentials TikTok refuses, a grant
    that covers no shop, and everything :func:`~vault.marketplace_accounts.connect_account` refuses.
    """
    app_key, app_secret, auth_code, name = app_key.strip(), app_secret.strip(), auth_code.strip(), name.strip()
    if not (app_key and app_secret and auth_code):
        raise AccountSetupError("the app key, the app secret and the seller's auth code are all needed")
    if not name or len(name) > MAX_NAME:
        raise AccountSetupError(f"an account name is 1 to {MAX_NAME} characters")
    taken = session.scalar(
        select(MarketplaceAccount.id).where(MarketplaceAccount.tenant_id == tenant_id, MarketplaceAccount.name == name)
    )
    if taken is not None:
        raise AccountSetupError(f"the tenant has an account named {name!r} already")
    policy = endpoint_policy(endpoint_overrides)
    api = policy.check(api_endpoint, policy.api_name, policy.api)
    auth = policy.check(token_endpoint, "token", policy.token)
    client = TikTokClient(
        credentials=TikTokCredentials(app_key=app_key, app_secret=app_secret, refresh_token=""),
        base_url=api or API_URL,
        auth_url=auth or AUTH_URL,
        limiter=_CONNECT_LIMITER,
        scope=f"tiktok-connect:{tenant_id}",
        retry=CONNECT_RETRY,
    )
    try:
        credentials = client.exchange_auth_code(auth_code)
        ciphers = _shop_ciphers(client.call("shops", "GET", "/authorization/202309/shops"))
    except AuthRefused as exc:
        raise AccountSetupError(f"TikTok Shop refused the authorisation: {exc}; nothing was stored") from None
    except ConnectorError as exc:
        raise AccountSetupError(f"TikTok Shop could not be reached to connect: {exc}; nothing was stored") from None
    finally:
        client.close()
    if not ciphers:
        raise AccountSetupError("the seller's authorisation covers no shop; nothing was stored")
    return connect_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        marketplace=MARKETPLACE,
        name=name,
        region=REGION,
        api_version=API_VERSION,
        marketplace_ids=ciphers,
        secrets=credentials.as_secrets(),
        api_endpoint=api,
        token_endpoint=auth,
        endpoints=policy,
        actor=actor,
        ip=ip,
        now=now,
    )
