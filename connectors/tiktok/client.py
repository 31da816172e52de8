"""A small TikTok Shop Open API client: the token service, signed calls, rate limits, bounded retries.

Secrets travel where TikTok wants them: the token service takes the app secret and the auth code or
refresh token as query parameters of a GET (TikTok's own SDK does the same), the Open API takes the access
token in the ``x-tts-access-token`` header and a signed query. So no URL this client requests is ever
logged: httpx's request log is silenced (connectors/amazon/client.py does the same for its transport),
error messages name the operation, the HTTP status and TikTok's numeric ``code``, never a URL, a body or a
token, and a transport error is named by its type only (its text may quote the URL).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.interfaces import (
    AuthRefused,
    BadResponse,
    ConnectorError,
    ConnectorStats,
    ConsentExpired,
    MarketplaceUnavailable,
    ThrottledOut,
)
from connectors.ratelimit import RateLimiter
from connectors.tiktok.signing import signed_request

log = logging.getLogger(__name__)

for _name in ("httpx", "httpcore"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

USER_AGENT = "labelvault/0.1 (Language=Python)"
TOKEN_GET_PATH = "/api/v2/token/get"  # noqa: S105 - a path
TOKEN_REFRESH_PATH = "/api/v2/token/refresh"  # noqa: S105 - a path

#: TikTok's answer codes the client acts on (connectors/fake_tiktok/marketplace.py lists where each comes from).
CODE_OK = 0
CODE_SIGN = 106001
CODE_TIMESTAMP = 106002
CODE_TOKEN_INVALID = 105001
CODE_TOKEN_EXPIRED = 105002
CODE_REFRESH_TOKEN = 36004005
CODE_AUTH_CODE = 36004004


@dataclass(frozen=True, slots=True)
class TikTokCredentials:
    """An account's app credentials and tokens (sealed at rest, never printed).

    The access token (seven days) is kept with its expiry so a sync does not spend a token exchange; the
    refresh token is replaced whenever TikTok hands out a new one (:meth:`TikTokClient.on_new_tokens`).
    """

    app_key: str
    app_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_token: str = field(default="", repr=False)
    access_expires_at: int = 0
    refresh_expires_at: int = 0

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> TikTokCredentials:
        """From the dict stored with :func:`vault.marketplace_accounts.seal_credentials`."""
        try:
            return cls(
                app_key=secrets["app_key"],
                app_secret=secrets["app_secret"],
                refresh_token=secrets["refresh_token"],
                access_token=secrets.get("access_token", ""),
                access_expires_at=int(secrets.get("access_expires_at", "0") or 0),
                refresh_expires_at=int(secrets.get("refresh_expires_at", "0") or 0),
            )
        except KeyError as exc:
            raise AuthRefused(f"stored credentials lack {exc.args[0]}") from None
        except ValueError:
            raise AuthRefused("stored credentials have an unreadable token expiry") from None

    def as_secrets(self) -> dict[str, str]:
        """The dict to seal (every value a string, as the vault stores credentials)."""
        return {
            "app_key": self.app_key,
            "app_secret": self.app_secret,
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "access_expires_at": str(self.access_expires_at),
            "refresh_expires_at": str(self.refresh_expires_at),
        }


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: attempts per call, exponential backoff with jitter, and per-request timeouts."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: Token refreshes allowed per call when TikTok calls the access token expired or invalid.
    auth_refreshes: int = 1

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout: every phase bounded."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)


class RequestRefused(BadResponse):
    """A 4xx answer the client doesn't retry; ``status`` and TikTok's numeric ``code`` say which."""

    def __init__(self, message: str, *, status: int, code: int) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _code(response: httpx.Response) -> int | None:
    """TikTok's numeric ``code`` of an answer, or None when the body has none."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return int(code) if isinstance(code, (int, float)) and not isinstance(code, bool) else None


class TikTokClient:
    """Calls TikTok Shop's Open API for one seller authorisation, inside its rate limits.

    ``on_new_tokens`` is called (under the client's lock) with the credentials after every token exchange,
    so the caller can re-seal them: TikTok hands out a new refresh token with every refresh.
    """

    def __init__(
        self,
        *,
        credentials: TikTokCredentials,
        base_url: str,
        auth_url: str,
        limiter: RateLimiter,
        scope: str,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_new_tokens: Callable[[TikTokCredentials], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.limiter = limiter
        self.scope = scope
        self.retry = retry or RetryPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.on_new_tokens = on_new_tokens
        self._http = httpx.Client(
            timeout=self.retry.timeout(),
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )
        self._lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.retries = 0
        self.token_refreshes = 0

    # -- bookkeeping ----------------------------------------------------------------------------------

    @property
    def credentials(self) -> TikTokCredentials:
        """The credentials as they stand now (tokens included)."""
        return self._credentials

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far."""
        return ConnectorStats(
            calls=sum(self.calls.values()),
            throttled=sum(self.throttled.values()),
            retries=self.retries,
            token_refreshes=self.token_refreshes,
            per_operation=dict(self.calls),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _backoff(self, operation: str, attempt: int, why: str) -> None:
        self.retries += 1
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling) / self.limiter.speedup
        log.info("%s: %s, retry %d in %.2fs", operation, why, attempt, delay)
        self._sleep(delay)

    def _retryable(self, operation: str, attempt: int, status: int) -> int:
        attempt += 1
        if attempt >= self.retry.attempts:
            if status == 429:
                raise ThrottledOut(f"{operation}: still throttled after {attempt} attempts")
            raise MarketplaceUnavailable(f"{operation}: HTTP {status} after {attempt} attempts")
        self._backoff(operation, attempt, f"HTTP {status}")
        return attempt

    def _transport_failed(self, operation: str, attempt: int, exc: httpx.TransportError) -> int:
        attempt += 1
        if attempt >= self.retry.attempts:
            raise MarketplaceUnavailable(f"{operation}: {type(exc).__name__} after {attempt} attempts") from None
        self._backoff(operation, attempt, type(exc).__name__)
        return attempt

    # -- tokens ---------------------------------------------------------------------------------------

    def exchange_auth_code(self, auth_code: str) -> TikTokCredentials:
        """Trade the seller's one-time ``auth_code`` for tokens (``/api/v2/token/get``); returns the credentials."""
        with self._lock:
            data = self._token_call(
                "token.get", TOKEN_GET_PATH, {"auth_code": auth_code, "grant_type": "authorized_code"}
            )
            return self._adopt(data)

    def access_token(self) -> str:
        """A valid access token: the stored one while it lasts (less a margin), else a refreshed one."""
        with self._lock:
            creds = self._credentials
            margin = 600  # ten minutes: a token must not run out between here and TikTok
            if creds.access_token and self._clock().timestamp() < creds.access_expires_at - margin:
                return creds.access_token
            return self.refresh()

    def refresh(self) -> str:
        """Exchange the refresh token for new tokens now; returns the new access token."""
        with self._lock:
            creds = self._credentials
            data = self._token_call(
                "token.refresh",
                TOKEN_REFRESH_PATH,
                {"refresh_token": creds.refresh_token, "grant_type": "refresh_token"},
            )
            return self._adopt(data).access_token

    def _adopt(self, data: Mapping[str, Any]) -> TikTokCredentials:
        access, refresh = data.get("access_token"), data.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise BadResponse("token service: response lacks access_token or refresh_token")
        self._credentials = replace(
            self._credentials,
            access_token=access,
            refresh_token=refresh,
            access_expires_at=_stamp(data.get("access_token_expire_in")),
            refresh_expires_at=_stamp(data.get("refresh_token_expire_in")),
        )
        self.token_refreshes += 1
        if self.on_new_tokens is not None:
            self.on_new_tokens(self._credentials)
        return self._credentials

    def _token_call(self, operation: str, path: str, params: Mapping[str, str]) -> Mapping[str, Any]:
        creds = self._credentials
        query = {**params, "app_key": creds.app_key, "app_secret": creds.app_secret}
        attempt = 0
        while True:
            self.limiter.acquire(self.scope, operation)
            self.calls[operation] += 1
            try:
                response = self._http.get(self.auth_url + path, params=query)
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            status, code = response.status_code, _code(response)
            if status == 429 or status >= 500:
                attempt = self._retryable(operation, attempt, status)
                continue
            if status == 200 and code == CODE_OK:
                return _data(operation, response)
            if code == CODE_REFRESH_TOKEN:
                raise ConsentExpired("the seller's TikTok Shop authorisation has expired: authorise the app again")
            if code == CODE_AUTH_CODE:
                raise AuthRefused("TikTok refused the auth code (unknown, used or expired): authorise the app again")
            raise AuthRefused(f"TikTok's token service refused the app credentials (HTTP {status}, code {code})")

    # -- signed calls ---------------------------------------------------------------------------------

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        scope: str | None = None,
    ) -> Mapping[str, Any]:
        """Call a signed Open API endpoint and return its ``data``; retries 429, 5xx and timeouts, renews
        a refused access token once.

        ``scope`` is the rate-limit scope (the shop cipher for shop endpoints). Raises
        :class:`ThrottledOut` / :class:`MarketplaceUnavailable` once the retries are spent,
        :class:`AuthRefused` when TikTok refuses the signature or the tokens for good,
        :class:`RequestRefused` on any other 4xx.
        """
        attempt = refreshes = 0
        limit_scope = f"{self.scope}:{scope or '-'}"
        while True:
            token = self.access_token()
            creds = self._credentials
            query, body = signed_request(
                app_key=creds.app_key,
                app_secret=creds.app_secret,
                path=path,
                params=params or {},
                body=json_body,
                timestamp=int(time.time()),
            )
            self.limiter.acquire(limit_scope, operation)
            self.calls[operation] += 1
            headers = {"x-tts-access-token": token, "content-type": "application/json"}
            try:
                response = self._http.request(
                    method, self.base_url + path, params=query, content=body or None, headers=headers
                )
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            status, code = response.status_code, _code(response)
            if status == 200 and code == CODE_OK:
                return _data(operation, response)
            if status == 429:
                self.throttled[operation] += 1
                self.limiter.throttled(limit_scope, operation)
                attempt = self._retryable(operation, attempt, status)
                continue
            if status >= 500:
                attempt = self._retryable(operation, attempt, status)
                continue
            if code in (CODE_TOKEN_EXPIRED, CODE_TOKEN_INVALID):
                refreshes += 1
                if refreshes > self.retry.auth_refreshes:
                    raise AuthRefused(f"{operation}: TikTok keeps refusing fresh access tokens (code {code})")
                log.info("%s: access token refused (code %s), refreshing", operation, code)
                self.refresh()
                continue
            if code == CODE_SIGN:
                raise AuthRefused(f"{operation}: TikTok refused the request signature: is the app secret right?")
            if code == CODE_TIMESTAMP:
                raise ConnectorError(f"{operation}: TikTok refused the request time: is this machine's clock right?")
            if status in (401, 403):
                raise AuthRefused(f"{operation}: access denied (HTTP {status}, code {code})")
            raise RequestRefused(f"{operation}: HTTP {status}, code {code}", status=status, code=code or 0)

    def fetch_document(self, url: str, *, max_bytes: int) -> bytes:
        """GET a document URL TikTok handed out (pre-signed: no token goes with it), at most ``max_bytes``;
        retried like a call."""
        operation = "document"
        attempt = 0
        while True:
            self.calls[operation] += 1
            try:
                with self._http.stream("GET", url, headers={"accept": "application/pdf"}) as response:
                    status = response.status_code
                    if status == 200:
                        body = bytearray()
                        for chunk in response.iter_bytes():
                            body += chunk
                            if len(body) > max_bytes:
                                raise BadResponse(f"{operation}: the document is larger than {max_bytes} bytes")
                        return bytes(body)
            except httpx.TransportError as exc:
                attempt = self._transport_failed(operation, attempt, exc)
                continue
            if status == 429 or status >= 500:
                attempt = self._retryable(operation, attempt, status)
                continue
            raise RequestRefused(f"{operation}: HTTP {status}", status=status, code=0)


def _stamp(value: Any) -> int:
    """A Unix timestamp TikTok sent (expiry times are timestamps, not durations), or 0."""
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _data(operation: str, response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadResponse(f"{operation}: response is not JSON") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise BadResponse(f"{operation}: response has no data object")
    return data


__all__ = [
    "ConsentExpired",
    "RequestRefused",
    "RetryPolicy",
    "TikTokClient",
    "TikTokCredentials",
]
