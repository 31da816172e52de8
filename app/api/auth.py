"""API-key authentication for the label API, and the pipeline steps that need the client.

After the allowlist (app/allowlist.py) and the IP rate limit (app/limits.py), :func:`require_client` runs,
in order: API key → the client's own CIDRs → the client's rate limit → scope. Each step can refuse with a
:class:`~vault.errors.Refusal` carrying its reason (audited in app/refusals.py, the repeatable ones
throttled). Keys come as ``Authorization: Bearer lv_<id>_<secret>``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from app.errors import MissingScope, NetworkRefused
from app.limits import limit_client
from app.services import db_session
from vault.clients import Principal, authenticate, client_allows, record_use
from vault.errors import InvalidApiKey, RefusalReason

F = TypeVar("F", bound=Callable[..., Any])


def _bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        return None
    return key.strip()


def current_client() -> Principal:
    """The authenticated client of this request (only inside a :func:`require_client` view)."""
    client: Principal = g.api_client
    return client


def require_client(scope: str) -> Callable[[F], F]:
    """Decorate a view: authenticate the key, check the client's CIDRs, count its rate limit, check ``scope``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            key = _bearer_key()
            session = db_session()
            try:
                if key is None:
                    raise InvalidApiKey()
                client = authenticate(session, key=key)
            except InvalidApiKey:
                # One answer (401) to a missing, malformed, unknown, wrong, revoked or expired key.
                session.rollback()
                raise
            g.api_client = client
            if not client_allows(client, ipaddress.ip_address(g.client_ip)):
                session.rollback()
                raise NetworkRefused(RefusalReason.CLIENT_CIDR)
            if record_use(session, client=client, ip=g.client_ip):
                session.commit()
            limit_client(client.id)
            if scope not in client.scopes:
                raise MissingScope(scope)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
