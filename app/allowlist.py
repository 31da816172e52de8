"""The IP allowlist: the first step of every request, before authentication and before routing.

The client's address comes from the socket, unless the socket peer is a configured trusted proxy; then
``X-Forwarded-For`` is read from the right, skipping trusted proxies (:func:`vault.netaddr.resolve_client_ip`).
``Forwarded`` and ``X-Real-IP`` are never read: one header, one rule. The address must be inside the global
allowlist (``LABELVAULT_GLOBAL_ALLOWLIST``); the API client's own CIDRs are checked after authentication
(app/auth.py). A refusal is the same bare 403 for every path, existing or not, so it tells nothing about
what is behind it. Refusals are audited, at most one per address and reason per interval.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from limits.errors import StorageError
from sqlalchemy.exc import SQLAlchemyError

from app.errors import problem
from app.services import services
from app.settings import Settings
from vault.netaddr import AddressError, IPNetwork, in_any, parse_networks, resolve_client_ip
from vault.release import RELEASE_ACTION, client_actor, record_refusal

log = logging.getLogger(__name__)

#: What the global allowlist is outside production when the setting is empty (production refuses to start).
LOOPBACK: tuple[IPNetwork, ...] = (ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128"))
#: At most this many refusals per minute are audited in all, whatever the number of addresses refused.
REFUSAL_AUDITS_PER_MINUTE = 120


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The parsed network settings: who may connect at all, and whose X-Forwarded-For is believed."""

    allowlist: tuple[IPNetwork, ...]
    trusted_proxies: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkPolicy:
        broad = settings.accept_broad_cidr_risk
        allowlist = parse_networks(settings.global_allowlist, allow_broad=broad)
        if not allowlist and not settings.production:
            allowlist = LOOPBACK
        return cls(allowlist, parse_networks(settings.trusted_proxies, allow_broad=broad))


def forbidden() -> Response:
    """The one refusal body of the network checks: no detail, the same for every path."""
    return problem(403)


def check_request() -> Response | None:
    """Resolve the client's address (``g.client_ip``) and refuse it unless the global allowlist has it."""
    policy: NetworkPolicy = current_app.extensions["labelvault.network"]
    g.client_ip = None
    try:
        chain = resolve_client_ip(
            request.remote_addr or "", request.headers.get("X-Forwarded-For"), policy.trusted_proxies
        )
    except AddressError:
        audit_refusal("malformed-address", throttled=True)
        return forbidden()
    g.client_ip = str(chain.client)
    if request.endpoint == "health.liveness" and chain.client.is_loopback:
        return None  # local liveness probes need no allowlist entry
    if not in_any(chain.client, policy.allowlist):
        audit_refusal("not-allowlisted", throttled=True)
        return forbidden()
    return None


def _may_audit(reason: str, tenant_id: int | None) -> bool:
    from app.limits import throttle

    settings: Settings = services().settings
    who = g.get("client_ip") or "unknown"
    try:
        return throttle(f"refusal:{tenant_id}:{reason}:{who}", settings.refusal_audit_interval) and throttle(
            "refusal:all", 60, REFUSAL_AUDITS_PER_MINUTE
        )
    except StorageError:
        return False  # the limiter's own check will refuse with 503; don't let a dead store flood the chain


def audit_refusal(reason: str, *, throttled: bool, marketplace: str | None = None, order_id: str | None = None) -> None:
    """Append a refusal of the current request to the audit chain (the client's tenant's, else the platform's).

    ``throttled`` refusals (network, key, rate limit: the ones an outsider can repeat at will) are audited
    at most once per address and reason per ``LABELVAULT_REFUSAL_AUDIT_INTERVAL``. A refusal stands even if
    its event can't be written; that failure is logged.
    """
    client = g.get("api_client")
    tenant_id = None if client is None else client.tenant_id
    if throttled and not _may_audit(reason, tenant_id):
        return
    log.info("refused %s: %s from %s", request.endpoint or "unrouted", reason, g.get("client_ip") or "unknown")
    try:
        with services().sessions() as session:
            record_refusal(
                session,
                tenant_id=tenant_id,
                actor="anonymous" if client is None else client_actor(client),
                reason=reason,
                ip=g.get("client_ip"),
                action=RELEASE_ACTION if request.endpoint == "api.get_label" else "request",
                marketplace=marketplace,
                order_id=order_id,
                details={"endpoint": request.endpoint},
            )
            session.commit()
    except SQLAlchemyError as exc:
        log.error("could not audit a refusal (%s); the request was refused all the same", type(exc).__name__)


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["labelvault.network"] = NetworkPolicy.from_settings(settings)
    # First of all before_request functions, whoever registered theirs earlier.
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)
