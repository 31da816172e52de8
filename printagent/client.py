"""The label API as the agent calls it: one order's label per job, retried with the job's ``Idempotency-Key``.

A job's key is made once, when the job starts, and sent with every attempt, so a response lost on the
network (a reset, a timeout, a proxy's 502) is asked for again and the vault answers with the same label,
redelivered and not counted again (vault/redelivery.py); the packer's reprint allowance is never burnt by the
network. Transport errors, 502/503/504 and 429 are retried with a short backoff (``Retry-After`` honoured up
to a bound); every other answer is final: the label, or a refusal with the API's reason code.

TLS verifies the vault's certificate against the OS's trust store or, if one is configured, a CA bundle; plain ``http://``
is accepted only to this machine's loopback (a vault on the same host, or a test).
"""

from __future__ import annotations

import ipaddress
import ssl
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from printagent.refs import OrderRef

#: The label API's media type of each format the agent asks for.
MEDIA_TYPES = {"zpl": "application/zpl", "pdf": "application/pdf", "png": "image/png"}
#: Statuses that mean "not answered, ask again" rather than a decision about the order.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Refusal codes that say the station itself is misconfigured: no further scan can succeed.
STATION_REFUSALS = frozenset({"invalid-api-key", "insufficient-scope", "forbidden"})
#: Longest wait for one ``Retry-After``: a packer waits at the bench, so a longer one (the key service's 30 s)
#: ends the job as unavailable at once, to be scanned again, rather than holding the station for minutes.
MAX_RETRY_AFTER = 5.0


class VaultUnavailable(Exception):
    """Every attempt failed on the network or with a retryable status; the job's key may be tried again."""


class ConfigError(ValueError):
    """A setting the agent can't run with (a URL, a CA bundle); the message is one line."""


@dataclass(frozen=True, slots=True)
class Label:
    """One released label, in memory only (``repr`` never shows it)."""

    ref: OrderRef
    media_type: str
    document: bytes = field(repr=False)
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The vault's refusal of one order: HTTP status, the reason code and the API's one-line detail."""

    ref: OrderRef
    status: int
    reason: str
    detail: str

    @property
    def station_problem(self) -> bool:
        """Whether the refusal is about the station (its key, address or scope), not the order."""
        return self.reason in STATION_REFUSALS


def new_idempotency_key() -> str:
    """A fresh key for one job (a UUID: visible ASCII, as the API asks)."""
    return str(uuid.uuid4())


def check_base_url(url: str) -> str:
    """The vault's base URL without a trailing slash; https, or http to loopback only."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("the vault URL must look like https://labels.example.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("the vault URL must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError("the vault URL must be https (plain http only to this machine's loopback)")
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class VaultClient:
    """The station's connection to the vault: one keep-alive HTTP client, its API key in a header only."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        attempts: int = 6,
        backoff: float = 0.2,
    ) -> None:
        if not api_key or any(c.isspace() for c in api_key):
            raise ConfigError("the API key is empty or contains whitespace")
        self.base_url = check_base_url(base_url)
        self.attempts = attempts
        self.backoff = backoff
        try:
            # The OS's trust store (Windows' certificate store, Linux's CA bundle), or only the configured CA.
            tls = ssl.create_default_context() if ca_bundle is None else ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"the CA bundle can't be read ({type(exc).__name__})") from None
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "labelvault-print/1"},
            verify=tls,
            timeout=timeout,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def label(self, ref: OrderRef, fmt: str, options: dict[str, str], idempotency_key: str) -> Label | Refused:
        """The order's label in ``fmt``, or the vault's refusal; :class:`VaultUnavailable` after the last retry."""
        params = {"format": fmt, **options}
        headers = {"Idempotency-Key": idempotency_key}
        last = "no attempt made"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 5.0))
            try:
                response = self._http.get(ref.path, params=params, headers=headers)
            except httpx.TransportError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # no retry will make the certificate valid
                    raise VaultUnavailable(
                        "the vault's TLS certificate could not be verified: set --ca-bundle to its CA's certificate"
                    ) from None
                last = f"network error ({type(exc).__name__})"
                continue
            if response.status_code == 200:
                media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
                if media_type != MEDIA_TYPES[fmt]:
                    # Not the vault's answer (a captive portal, a misrouted proxy): never sent to a printer.
                    last = f"the answer was {media_type or 'untyped'}, not a {fmt} label"
                    continue
                return Label(
                    ref,
                    media_type,
                    response.content,
                    replayed=response.headers.get("Idempotent-Replayed") == "true",
                )
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code} ({_reason(response)})"
                wait = _retry_after(response)
                if wait is not None:
                    if wait > MAX_RETRY_AFTER:
                        break
                    time.sleep(wait)
                continue
            return Refused(ref, response.status_code, _reason(response), _detail(response))
        raise VaultUnavailable(f"the vault did not answer after {self.attempts} attempts: {last}")


def _problem(response: httpx.Response) -> dict[str, object]:
    if not response.headers.get("Content-Type", "").startswith(("application/problem+json", "application/json")):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(response: httpx.Response) -> str:
    """The refusal's code: the API's ``reason`` if it gives one, else its problem type's last segment."""
    body = _problem(response)
    reason = body.get("reason") or str(body.get("type", "")).rsplit("/", 1)[-1]
    text = str(reason) if reason else f"http-{response.status_code}"
    return text[:60] if text.isascii() and text.replace("-", "").isalnum() else f"http-{response.status_code}"


def _detail(response: httpx.Response) -> str:
    detail = _problem(response).get("detail")
    return " ".join(str(detail).split())[:200] if detail else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
