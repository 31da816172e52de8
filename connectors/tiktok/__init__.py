"""TikTok Shop connector (Order API 202309: search by update time, detail; Fulfillment 202309 documents)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from connectors.interfaces import ConnectorError
from connectors.ratelimit import RateLimiter, RedisBuckets
from connectors.tiktok.client import RetryPolicy, TikTokClient, TikTokCredentials
from connectors.tiktok.connector import TikTokConnector
from connectors.tiktok.endpoints import API_URL, AUTH_URL, USAGE_PLANS, endpoint_policy
from connectors.tiktok.mapping import MARKETPLACE
from vault.errors import AccountSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import reseal_credentials, unseal_credentials
from vault.models import MarketplaceAccount

__all__ = [
    "RetryPolicy",
    "TikTokClient",
    "TikTokConnector",
    "TikTokCredentials",
    "client_for_account",
    "connector_for_account",
    "settle_tokens",
    "shared_limiter",
]

log = logging.getLogger(__name__)

_limiters: dict[float, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(speedup: float = 1.0) -> RateLimiter:
    """The process's rate limiter for TikTok Shop (one per speed-up factor), shared by every connector."""
    with _limiters_lock:
        limiter = _limiters.get(speedup)
        if limiter is None:
            limiter = _limiters[speedup] = RateLimiter(USAGE_PLANS, speedup=speedup)
        return limiter


class TokenResealer:
    """Keeps an account's sealed credentials in step with the tokens TikTok hands out.

    The client reports new tokens from whichever thread made the exchange (a prefetch thread, say), so they
    are only noted there; :meth:`settle` seals them and commits, in a session of its own on the connector's
    database (the session a connector is built with is usually closed before the sync starts), from the
    thread that pulls: the connector calls it between pages, the document fetch when it is done. TikTok
    keeps the previous refresh token good until its own expiry, so a run killed before a settle loses
    nothing.
    """

    def __init__(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> None:
        self._bind = session.get_bind()
        self._keys = keys
        self._account_id = account.id
        self._pending: TikTokCredentials | None = None
        self._lock = threading.Lock()

    def __call__(self, credentials: TikTokCredentials) -> None:
        with self._lock:
            self._pending = credentials

    def settle(self) -> None:
        """Seal the newest tokens, if any arrived since the last settle, and commit them."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        # A savepoint when the bind is a connection already in a transaction (a caller's, a test's): never
        # the caller's commit to make.
        with Session(bind=self._bind, join_transaction_mode="create_savepoint") as own:
            account = own.get(MarketplaceAccount, self._account_id)
            if account is None or account.removed_at is not None:
                return
            reseal_credentials(own, keys=self._keys, account=account, secrets=pending.as_secrets())
            own.commit()
        log.info("tiktok account %s: renewed tokens sealed", self._account_id)


def client_for_account(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    speedup: float = 1.0,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
    endpoint_overrides: Collection[str] = (),
) -> TikTokClient:
    """A :class:`TikTokClient` for a stored account: its endpoints checked again, its credentials unsealed,
    rotated tokens noted for re-sealing (``client.on_new_tokens``, a :class:`TokenResealer`)."""
    if account.marketplace != MARKETPLACE:
        raise ConnectorError(f"account {account.id} is not a TikTok Shop account")
    if account.removed_at is not None:
        raise ConnectorError(f"account {account.id} has been removed")
    policy = endpoint_policy(endpoint_overrides)
    try:
        api = policy.check(account.api_endpoint, policy.api_name, policy.api) or API_URL
        auth = policy.check(account.token_endpoint, "token", policy.token) or AUTH_URL
    except AccountSetupError as exc:
        raise ConnectorError(f"account {account.id}: {exc}") from None
    credentials = TikTokCredentials.from_secrets(unseal_credentials(session, keys=keys, account=account))
    return TikTokClient(
        credentials=credentials,
        base_url=api,
        auth_url=auth,
        limiter=limiter or shared_limiter(speedup),
        scope=f"tiktok-account:{account.id}",
        retry=retry,
        clock=clock,
        on_new_tokens=TokenResealer(session, keys, account),
    )


def connector_for_account(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    speedup: float = 1.0,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
    clock: Callable[[], datetime] | None = None,
    endpoint_overrides: Collection[str] = (),
    shared_buckets: RedisBuckets | None = None,  # unused: the limits are per seller (ConnectorFactory)
    **options: Any,
) -> TikTokConnector:
    """A :class:`TikTokConnector` for a stored account (its shops are its ``marketplace_ids``: shop ciphers).

    ``speedup`` scales the rate limits and the retry backoff (for the fake only); ``options`` go to
    :class:`TikTokConnector` (page size, overlap, initial look-back). An endpoint the policy no longer allows
    is a :class:`ConnectorError` before anything is sent.
    """
    client = client_for_account(
        session,
        keys=keys,
        account=account,
        speedup=speedup,
        limiter=limiter,
        retry=retry,
        clock=clock,
        endpoint_overrides=endpoint_overrides,
    )
    return TikTokConnector(
        client=client,
        shop_ciphers=list(account.marketplace_ids),
        clock=clock,
        settle_tokens=lambda: settle_tokens(client),
        **options,
    )


def settle_tokens(client: TikTokClient) -> None:
    """Seal the tokens the client got since it was built or last settled (see :class:`TokenResealer`)."""
    if isinstance(client.on_new_tokens, TokenResealer):
        client.on_new_tokens.settle()
