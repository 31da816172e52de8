"""Who is signed in, and the guards on dashboard views: signed in, allowed by role, second factor fresh.

The browser's signed session cookie holds only the random token of a server-side session
(:func:`vault.users.resolve_session`) and the CSRF token; between the password and the second factor it
holds the id of the user half-way through signing in (``pending``), for a few minutes at most.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from app.services import db_session, services
from vault.models import DashboardSession, Tenant, User, utcnow
from vault.users.roles import may
from vault.users.sessions import SessionLimits
from vault.users.signin import LoginPolicy

F = TypeVar("F", bound=Callable[..., Any])

#: How long the step between password and second factor (or enrolment) may take.
PENDING_SECONDS = 600


def limits() -> SessionLimits:
    s = services().settings
    return SessionLimits(
        lifetime=timedelta(hours=s.dashboard_session_hours), idle=timedelta(minutes=s.dashboard_idle_minutes)
    )


def login_policy() -> LoginPolicy:
    s = services().settings
    return LoginPolicy(
        max_failures=s.dashboard_max_failed_logins,
        lockout=timedelta(minutes=s.dashboard_lockout_minutes),
        account_max_failures=10 * s.dashboard_max_failed_logins,  # the slower backstop, from any address
    )


def client_ip() -> str | None:
    """The client's address as the global allowlist resolved it (trusted-proxy rule)."""
    ip: str | None = g.get("client_ip")
    return ip


def current_user() -> User:
    """The signed-in user (only inside a :func:`login_required` view)."""
    user: User = g.dashboard_user
    return user


def current_session() -> DashboardSession:
    row: DashboardSession = g.dashboard_session
    return row


def current_tenant() -> Tenant:
    tenant = db_session().get(Tenant, current_user().tenant_id)
    assert tenant is not None
    return tenant


#: What browsers (WHATWG URL parsing) drop from a URL before reading it: ASCII tab, newline, carriage return.
_DROPPED = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))  # stripped from both ends by the same parsing
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None, default: str = "dashboard.overview") -> str:
    """A same-origin path to go on to after signing in (``next=``); anything else goes to ``default``.

    The target is judged as a browser reads it: with tab, newline and carriage return removed, leading and
    trailing C0 controls and spaces stripped, and backslashes as slashes (``next=/%09/evil.example`` and
    ``/\\evil.example`` are both ``//evil.example``, another host). What is left must be an absolute path
    with no scheme, no host and no other control character; the normalised form is returned, so no later
    reading differs.
    """
    if target:
        path = _DROPPED.sub("", target).strip(_C0_AND_SPACE).replace("\\", "/")
        parts = urlsplit(path)
        plain = not _CONTROL.search(path)
        if plain and path.startswith("/") and not path.startswith("//") and not parts.scheme and not parts.netloc:
            return path
    return url_for(default)


def set_pending(user: User) -> None:
    session.clear()
    session["pending"] = {"uid": user.id, "at": int(time.time())}


def pending_user() -> User | None:
    """The user between password and second factor, if that step is still open."""
    pending = session.get("pending")
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        return None
    user = db_session().get(User, int(pending.get("uid", 0)))
    if user is None or user.disabled_at is not None or user.password_hash is None:
        return None
    return user


def login_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("dashboard_user") is None:
            target = request.full_path if request.method == "GET" else None
            return redirect(url_for("dashboard.login", next=target.rstrip("?") if target else None))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def require(permission: str) -> Callable[[F], F]:
    """Signed in, and the user's role allows ``permission`` (else 403)."""

    def decorator(view: F) -> F:
        @login_required
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not may(current_user().role, permission):
                abort(403, _("Your role does not allow this. Ask an owner of your organisation."))
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def second_factor_fresh() -> bool:
    window = timedelta(minutes=services().settings.dashboard_reauth_minutes)
    return utcnow() - current_session().reauth_at <= window


def fresh_second_factor(back: str | None = None) -> Callable[[F], F]:
    """The view needs the second factor entered within ``LABELVAULT_DASHBOARD_REAUTH_MINUTES``.

    A GET goes to the check and comes back; a POST goes to the check, then to the ``back`` endpoint (its
    form must be sent again: nothing of the first one is kept).
    """

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.get("dashboard_user") is not None and not second_factor_fresh():
                if request.method == "GET":
                    target = request.full_path.rstrip("?")
                else:
                    flash(_("Enter a code from your authenticator app to continue."), "info")
                    target = url_for(back or "dashboard.overview", **(request.view_args or {}) if back else {})
                return redirect(url_for("dashboard.reauth", next=target))
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def redirect_to(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values))
