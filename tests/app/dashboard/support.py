"""Helpers of the dashboard tests: a controllable clock for TOTP steps, codes, CSRF tokens, a signed-in world."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyotp
from flask.testing import FlaskClient

from vault.models import utcnow

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """The dashboard's "now" (vault.users and app.dashboard.state), moved by hand: each TOTP code a new step."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Authenticator:
    """A user's authenticator app: gives the code of the clock's current step, moving the clock 30 s first,
    so no code is ever a replay of the previous one."""

    secret: str = field(repr=False)
    clock: Clock

    def code(self) -> str:
        self.clock.advance(30)
        return pyotp.TOTP(self.secret).at(self.clock())


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match[1]


def csrf(client: FlaskClient, path: str = "/login") -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@seller.example"


def post(
    client: FlaskClient, path: str, data: dict[str, Any] | None = None, *, token: str | None = None, **kw: Any
) -> Any:
    """POST a form with the session's CSRF token (taken from the overview or the login page)."""
    if token is None:
        with client.session_transaction() as s:
            token = s.get("csrf")
        if token is None:
            token = csrf(client)
    return client.post(path, data={"csrf_token": token, **(data or {})}, **kw)
