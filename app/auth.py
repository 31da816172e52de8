"""API-key authentication for the label API, and the pipeline steps that need the client.

After the allowlist (app/allowlist.py) and the IP rate limit, :func:`require_client` runs, in order:
API key → the client's own CIDRs → the client's rate limit → scope. Each step can refuse, and each refusal
is audited (the repeatable ones throttled). Keys come as ``Authorization: Bearer lv_<id>_<secret>``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from app.allowlist import audit_refusal, forbidden
from app.errors import problem
from app.limits import limit_client
from app.services import db_session
from vault.clients import Principal, authenticate, client_allows, record_use
from vault.errors import InvalidApiKey

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
                # One answer (401, app/errors.py) to a missing, malformed, unknown, wrong, revoked or expired key.
                session.rollback()
                audit_refusal("invalid-api-key", throttled=True)
                raise
            g.api_client = client
            ip = ipaddress.ip_address(g.client_ip)
            if not client_allows(client, ip):
                session.rollback()
                audit_refusal("client-cidr", throttled=True)
                return forbidden()
            if record_use(session, client=client, ip=g.client_ip):
                session.commit()
            limit_client()
            if scope not in client.scopes:
                audit_refusal("scope", throttled=False)
                return problem(403, f"this API key lacks the {scope!r} scope", kind="insufficient-scope")
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
