"""The IP allowlist: the first check of every request, before rate limits, authentication and routing's view.

The client's address comes from the socket, unless the socket peer is a configured trusted proxy; then
``X-Forwarded-For`` is read from the right, skipping trusted proxies, at most ``LABELVAULT_TRUSTED_PROXY_HOPS``
of them (:func:`vault.netaddr.resolve_client_ip`). The trusted-proxy list has a bound of its own that no setting
lifts (:func:`vault.netaddr.parse_trusted_proxies`); ``LABELVAULT_ACCEPT_BROAD_CIDR_RISK`` is the global
allowlist's alone.
``Forwarded`` and ``X-Real-IP`` are never read: one header, one rule. The address must be inside the global
allowlist (``LABELVAULT_GLOBAL_ALLOWLIST``); the API client's own CIDRs are checked after authentication
(app/api/auth.py). A refusal is a :class:`~app.errors.NetworkRefused`: the same bare 403 for every path,
existing or not, so it tells nothing about what is behind it, audited like every refusal (app/refusals.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from flask import g, request

from app.errors import NetworkRefused
from app.settings import Settings
from vault.errors import RefusalReason
from vault.netaddr import AddressError, IPNetwork, in_any, parse_networks, parse_trusted_proxies, resolve_client_ip

#: What the global allowlist is outside production when the setting is empty (production refuses to start).
LOOPBACK: tuple[IPNetwork, ...] = (ipaddress.IPv4Network("127.0.0.0/8"), ipaddress.IPv6Network("::1/128"))


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The parsed network settings: who may connect at all, and whose X-Forwarded-For is believed."""

    allowlist: tuple[IPNetwork, ...]
    trusted_proxies: tuple[IPNetwork, ...]
    max_proxies: int

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkPolicy:
        allowlist = parse_networks(settings.global_allowlist, allow_broad=settings.accept_broad_cidr_risk)
        if not allowlist and not settings.production:
            allowlist = LOOPBACK
        return cls(allowlist, parse_trusted_proxies(settings.trusted_proxies), settings.trusted_proxy_hops)

    def check_request(self) -> None:
        """Resolve the client's address (``g.client_ip``); :class:`NetworkRefused` unless the allowlist has it."""
        g.client_ip = None
        try:
            chain = resolve_client_ip(
                request.remote_addr or "",
                request.headers.get("X-Forwarded-For"),
                self.trusted_proxies,
                max_proxies=self.max_proxies,
            )
        except AddressError:
            raise NetworkRefused(RefusalReason.MALFORMED_ADDRESS) from None
        g.client_ip = str(chain.client)
        if request.endpoint == "health.liveness" and chain.client.is_loopback:
            return  # local liveness probes need no allowlist entry
        if not in_any(chain.client, self.allowlist):
            raise NetworkRefused(RefusalReason.NOT_ALLOWLISTED)
