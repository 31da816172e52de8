"""Browser-facing protections: security headers on every response, CSRF tokens, the session cookie's settings.

- Content-Security-Policy without any inline script or style (``script-src 'self'``, ``style-src 'self'``),
  ``frame-ancestors 'none'``, no referrer, no MIME sniffing; HSTS in production (which runs behind TLS).
- CSRF: a synchronizer token per browser session (in the signed session cookie), required in every unsafe
  request to the dashboard (form field ``csrf_token`` or header ``X-CSRF-Token``), plus an Origin check.
- The session cookie is HttpOnly, SameSite=Lax, and Secure with the ``__Host-`` prefix in production. It
  carries only a random token (the session itself is server side, see :mod:`vault.users`) and the CSRF token.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Request, Response, abort, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from app.settings import Settings

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=63072000; includeSubDomains"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token() -> str:
    """This browser session's CSRF token (created on first use); put it in every form."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def rotate_csrf_token() -> None:
    """A new token (at sign-in and sign-out, with the new session)."""
    session["csrf"] = secrets.token_urlsafe(32)


def check_csrf() -> None:
    """Refuse (400) an unsafe request without the session's CSRF token, or from another origin."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        abort(400, "the request came from another site")
    expected = session.get("csrf")
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, "the form has expired; reload the page and try again")


def _secret_key(settings: Settings) -> str:
    """The configured secret, or (outside production) one kept in the instance folder, made on first start."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.instance_path) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def cookie_secure(settings: Settings) -> bool:
    """Whether cookies are marked Secure (HTTPS only): the setting, else on in production."""
    return settings.production if settings.dashboard_cookie_secure is None else settings.dashboard_cookie_secure


class BrowserSessions(SecureCookieSessionInterface):
    """The signed session cookie, for the dashboard only: the label API (``/v1/``) authenticates by key.

    An API request gets Flask's null session (readable and empty; writing to it raises), so it neither
    verifies nor sets a cookie.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/v1/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


class SecurityHeaders:
    """The after-request hook that adds the security headers to every response (``create_app`` declares it).

    A view that set one of them keeps its own.
    """

    def __init__(self, settings: Settings) -> None:
        defaults = [
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
        ]
        if settings.production:
            defaults.append(("Strict-Transport-Security", HSTS))
        self._by_lower_name = [(name.lower(), name, value) for name, value in defaults]

    def __call__(self, resp: Response) -> Response:
        # Added in one pass over the response's headers (Headers.setdefault looks each name up, raising and
        # catching a KeyError per missing one).
        present = {name.lower() for name, _ in resp.headers}
        resp.headers.extend([(name, value) for lower, name, value in self._by_lower_name if lower not in present])
        return resp


def no_store(resp: Response) -> Response:
    """Mark a response that carries (or might carry) label data as never to be cached anywhere."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def init_app(app: Flask, settings: Settings) -> None:
    """The browser session: the session interface and the cookie's settings."""
    secure = cookie_secure(settings)
    app.session_interface = BrowserSessions()
    app.config.update(
        SECRET_KEY=_secret_key(settings),
        SESSION_COOKIE_NAME="__Host-lv_session" if secure else "lv_session",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
    )
