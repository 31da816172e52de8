"""An account's Shopify access: a non-expiring token, or an expiring offline token with its refresh token.

A custom app's Admin API token (``shpat_``) and a legacy offline token never expire. Since 2026 a public
app's install can ask for an *expiring* offline token: it lasts an hour and comes with a refresh token
(about 90 days) that buys the next one at the shop's ``/admin/oauth/access_token``
(``grant_type=refresh_token`` with the app's client id and secret); each refresh rotates both, and the old
refresh token stays good only until the new access token is first used. So a renewed pair is handed to
``on_renewed`` (which re-seals it, committed) *before* the new access token is used: a crash in between
leaves the vault holding a pair that still works.

The sealed secrets: ``access_token`` always; for an expiring token also ``refresh_token``, ``client_id``,
``client_secret`` (the app's, so a sync process needs nothing but the stored account) and ``expires_at``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.interfaces import AuthRefused, BadResponse, ConsentExpired, MarketplaceUnavailable

#: Renew this long before the token's end (a query in flight must not meet the expiry).
EARLY = timedelta(minutes=5)
_FIELDS = ("access_token", "refresh_token", "client_id", "client_secret", "expires_at")


@dataclass(slots=True)
class ShopifyToken:
    """The account's current access (values never printed)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> ShopifyToken:
        """From the account's sealed credentials; :class:`AuthRefused` when they can't work."""
        token = secrets.get("access_token")
        if not token:
            raise AuthRefused("stored credentials lack access_token")
        refresh = secrets.get("refresh_token") or None
        if refresh and not (secrets.get("client_id") and secrets.get("client_secret")):
            raise AuthRefused("stored credentials have a refresh token but not the app's client id and secret")
        expires = secrets.get("expires_at")
        try:
            expires_at = datetime.fromisoformat(expires) if expires else None
        except ValueError:
            raise AuthRefused("stored credentials have an unreadable expires_at") from None
        return cls(token, refresh, secrets.get("client_id"), secrets.get("client_secret"), expires_at)

    @classmethod
    def from_grant(
        cls, answer: Mapping[str, Any], *, client_id: str | None, client_secret: str | None, now: datetime
    ) -> ShopifyToken:
        """From the token endpoint's answer (an install's code exchange or a refresh)."""
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise BadResponse("Shopify's token answer has no access token")
        refresh = answer.get("refresh_token")
        expires_in = answer.get("expires_in")
        expiring = isinstance(refresh, str) and bool(refresh)
        return cls(
            token,
            refresh if expiring else None,
            client_id if expiring else None,
            client_secret if expiring else None,
            now + timedelta(seconds=float(expires_in))
            if expiring and isinstance(expires_in, (int, float)) and expires_in > 0
            else None,
        )

    @property
    def renewable(self) -> bool:
        """Whether a refresh token can buy the next access token."""
        return bool(self.refresh_token and self.client_id and self.client_secret)

    def as_secrets(self) -> dict[str, str]:
        """The dict to seal (only the values present)."""
        values = {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "expires_at": self.expires_at.astimezone(UTC).isoformat() if self.expires_at else None,
        }
        return {k: v for k in _FIELDS if (v := values[k])}


class TokenKeeper:
    """Hands out the account's access token, renewing an expiring one before its end or when Shopify says 401."""

    def __init__(
        self,
        token: ShopifyToken,
        *,
        token_url: str,
        http: httpx.Client,
        clock: Callable[[], datetime] | None = None,
        on_renewed: Callable[[ShopifyToken], None] | None = None,
    ) -> None:
        self._token = token
        self.token_url = token_url
        self._http = http
        self._clock = clock or (lambda: datetime.now(UTC))
        self._on_renewed = on_renewed
        self._lock = threading.Lock()
        self.refreshes = 0

    @property
    def renewable(self) -> bool:
        """Whether the access can be renewed (an expiring offline token)."""
        return self._token.renewable

    def current(self) -> str:
        """A usable access token: renewed first when it ends within :data:`EARLY`."""
        with self._lock:
            token = self._token
            if token.renewable and token.expires_at is not None and self._clock() >= token.expires_at - EARLY:
                self._refresh(token)
            return self._token.access_token

    def rejected(self, used: str) -> bool:
        """Shopify refused ``used`` (401): renew it if that can help; whether a retry may follow."""
        with self._lock:
            if self._token.access_token != used:
                return True  # another thread renewed it meanwhile
            if not self._token.renewable:
                return False
            self._refresh(self._token)
            return True

    def _refresh(self, token: ShopifyToken) -> None:
        form = {
            "client_id": token.client_id,
            "client_secret": token.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": token.refresh_token,
        }
        try:
            response = self._http.post(self.token_url, json=form, headers={"accept": "application/json"})
        except httpx.TransportError as exc:
            raise MarketplaceUnavailable(f"token refresh: {type(exc).__name__}") from None
        if response.status_code in (400, 401, 403):
            raise ConsentExpired(
                f"Shopify refused the refresh token (HTTP {response.status_code}): the app must be installed again"
            )
        if response.status_code != 200:
            raise MarketplaceUnavailable(f"token refresh: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise BadResponse("token refresh: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise BadResponse("token refresh: the answer is not a JSON object")
        renewed = ShopifyToken.from_grant(
            answer, client_id=token.client_id, client_secret=token.client_secret, now=self._clock()
        )
        if not renewed.renewable:  # Shopify always rotates; keep the old refresh token if an answer lacked one
            renewed.refresh_token = token.refresh_token
            renewed.client_id, renewed.client_secret = token.client_id, token.client_secret
        if self._on_renewed is not None:
            self._on_renewed(renewed)  # sealed and committed before the new access token is first used
        self._token = renewed
        self.refreshes += 1
