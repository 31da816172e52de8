"""A public app's install flow (Shopify's authorization code grant), without the web framework.

1. :func:`authorize_url`: where the seller's browser goes, with a fresh ``state`` nonce the caller keeps
   in the seller's session.
2. :func:`verify_callback`: the redirect back carries ``code``, ``shop``, ``state``, ``timestamp`` and an
   ``hmac`` over the other parameters (hex HMAC-SHA256 with the app's client secret). The signature, the
   state and the shop domain are all checked before anything is sent anywhere: the shop names the host
   the code (and the app's secret) will be posted to.
3. :func:`exchange_code`: POST the code with the app's credentials to the shop's
   ``/admin/oauth/access_token``; the answer is the offline access token, which the caller seals.

Nothing here logs; errors name what failed, never a code, token, secret or signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from connectors.shopify.endpoints import ACCESS_TOKEN_PATH, AUTHORIZE_PATH, api_base, is_shop_domain
from vault.errors import AccountSetupError

#: How old a callback may be: the seller clicked "Install" moments ago; Shopify's codes last minutes.
CALLBACK_MAX_AGE = timedelta(hours=1)
EXCHANGE_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class InstallRefused(AccountSetupError):
    """The install callback or the code exchange failed a check (one line, no secret)."""


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """The public app's client id and secret (operator settings; the secret is never printed)."""

    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Installed:
    """An exchanged offline token: the shop, the scopes Shopify granted, and the token endpoint's whole answer
    (for :meth:`connectors.shopify.tokens.ShopifyToken.from_grant`)."""

    shop: str
    scopes: frozenset[str]
    answer: Mapping[str, Any] = field(repr=False)


def new_state() -> str:
    """A fresh, unguessable state nonce for one install attempt."""
    return secrets.token_urlsafe(32)


def authorize_url(
    shop: str,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    scopes: Sequence[str],
    api_endpoint: str | None = None,
) -> str:
    """The shop's install page for the app (``https://{shop}/admin/oauth/authorize?...``).

    ``api_endpoint`` is an operator-allowed override of the shop's origin (a fake); the shop is then named
    by a ``shop`` parameter too.
    """
    if not is_shop_domain(shop):
        raise InstallRefused("not a Shopify shop domain")
    params = {"client_id": client_id, "scope": ",".join(scopes), "redirect_uri": redirect_uri, "state": state}
    if api_endpoint:
        params["shop"] = shop
    return f"{api_base(shop, api_endpoint)}{AUTHORIZE_PATH}?{urlencode(params)}"


def callback_hmac(params: Mapping[str, str], secret: str) -> str:
    """Shopify's signature of a callback: hex HMAC-SHA256 of the other parameters, ``k=v`` sorted, ``&``-joined."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_callback(
    params: Mapping[str, str], *, app: AppCredentials, expected_state: str | None, now: datetime | None = None
) -> tuple[str, str]:
    """Check an install callback's signature, state nonce, shop domain and age; returns ``(shop, code)``.

    :class:`InstallRefused` names the first check that failed.
    """
    given = params.get("hmac", "")
    if not given or not hmac.compare_digest(given.lower(), callback_hmac(params, app.client_secret)):
        raise InstallRefused("the install callback's signature is wrong")
    state = params.get("state", "")
    if not expected_state or not hmac.compare_digest(state, expected_state):
        raise InstallRefused("the install callback does not belong to this session's install (state)")
    shop = params.get("shop", "")
    if not is_shop_domain(shop):
        raise InstallRefused("the install callback names no Shopify shop domain")
    code = params.get("code", "")
    if not code or len(code) > 200:
        raise InstallRefused("the install callback carries no authorization code")
    stamp = params.get("timestamp", "")
    if not stamp.isdigit():
        raise InstallRefused("the install callback carries no timestamp")
    age = (now or datetime.now(UTC)) - datetime.fromtimestamp(int(stamp), UTC)
    if abs(age) > CALLBACK_MAX_AGE:
        raise InstallRefused("the install callback is too old; start the install again")
    return shop, code


def exchange_code(
    shop: str,
    code: str,
    *,
    app: AppCredentials,
    api_endpoint: str | None = None,
    expiring: bool = True,
    transport: httpx.BaseTransport | None = None,
) -> Installed:
    """Exchange an authorization code for the shop's offline access token (one POST, no retry: a code is
    single-use and a person waits). ``expiring`` asks for an expiring token with a refresh token, which
    Shopify requires of new public apps."""
    if not is_shop_domain(shop):
        raise InstallRefused("not a Shopify shop domain")
    url = api_base(shop, api_endpoint) + ACCESS_TOKEN_PATH
    form = {"client_id": app.client_id, "client_secret": app.client_secret, "code": code}
    if expiring:
        form["expiring"] = "1"
    try:
        with httpx.Client(timeout=EXCHANGE_TIMEOUT, transport=transport, follow_redirects=False) as http:
            response = http.post(url, json=form, headers={"accept": "application/json"})
    except httpx.HTTPError as exc:
        raise InstallRefused(f"Shopify could not be reached for the token ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise InstallRefused(f"Shopify refused the authorization code (HTTP {response.status_code})")
    try:
        body = response.json()
    except ValueError:
        raise InstallRefused("Shopify's token answer is not JSON") from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise InstallRefused("Shopify's token answer has no access token")
    scope = body.get("scope") if isinstance(body, dict) else ""
    scopes = frozenset(s.strip() for s in (scope if isinstance(scope, str) else "").split(",") if s.strip())
    return Installed(shop=shop, scopes=scopes, answer=body)
