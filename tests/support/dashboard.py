"""Helpers of the dashboard tests: a controllable clock for TOTP steps, codes, CSRF tokens, a seller with users."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pyotp
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.support.buyers import MARKED_BUYERS
from tests.support.vault import T0
from vault.models import MarketplaceAccount, Tenant, User, utcnow
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus
from vault.users import accounts, second_factor

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

    def wrong_code(self) -> str:
        """Six digits that are not the code of the clock's step nor of either step beside it."""
        return wrong_code(self.secret, self.clock())


def wrong_code(secret: str, at: datetime) -> str:
    """A six-digit code the server refuses at ``at``: a fixed guess like 000000 is right one time in a million
    per step, which a suite run thousands of times meets."""
    totp = pyotp.TOTP(secret)
    step = int(at.timestamp()) // totp.interval
    accepted = {totp.at(s * totp.interval) for s in (step - 1, step, step + 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


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


@dataclass
class Seller:
    """A committed tenant in the app's database, and a way to make users of it."""

    app: Any
    tenant: Tenant
    clock: Clock

    def session(self) -> Session:
        return self.app.extensions["labelvault"].sessions()

    @property
    def keys(self) -> Any:
        return self.app.extensions["labelvault"].keys

    def user(
        self, role: str = "owner", *, enrolled: bool = True, email: str | None = None
    ) -> tuple[User, Authenticator | None]:
        """A user with PASSWORD; enrolled in TOTP unless told otherwise (then the authenticator is None)."""
        with self.session() as s:
            tenant = s.get(Tenant, self.tenant.id)
            assert tenant is not None
            user = accounts.create_user(
                s, tenant=tenant, email=email or unique_email(role), role=role, password=PASSWORD, actor="test"
            )
            auth = None
            if enrolled:
                enrolment = second_factor.start_enrolment(s, keys=self.keys, user=user)
                auth = Authenticator(enrolment.secret, self.clock)
                second_factor.confirm_enrolment(s, keys=self.keys, user=user, code=auth.code(), now=self.clock())
            s.commit()
            s.refresh(user)
            s.expunge(user)
        return user, auth

    def login(self, client: FlaskClient, user: User, auth: Authenticator) -> None:
        resp = post(client, "/login", {"email": user.email, "password": PASSWORD})
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/code"), resp.get_data(as_text=True)
        resp = post(client, "/login/code", {"code": auth.code()})
        assert resp.status_code == 302, resp.get_data(as_text=True)


def show_tracebacks(app: Any) -> Any:
    """With LABELVAULT_TEST_TRACEBACKS=1, a view's exception propagates instead of becoming a bare 500."""
    if os.environ.get("LABELVAULT_TEST_TRACEBACKS") == "1":

        @app.errorhandler(Exception)
        def _raise(exc: Exception) -> Any:
            raise exc

    return app


@dataclass
class Shop:
    """A seller with an account and two orders carrying the test buyers, and a signed-in user."""

    seller: Seller
    user: User
    auth: Authenticator
    order_ids: list[str]


def open_shop(seller: Seller, client: FlaskClient, role: str = "owner") -> Shop:
    """``seller`` with a JP Amazon account holding the marked buyers' orders, and a ``role`` user signed in."""
    user, auth = seller.user(role)
    assert auth is not None
    ids = []
    with seller.session() as s:
        account = MarketplaceAccount(
            tenant_id=seller.tenant.id,
            marketplace="amazon",
            name=f"JP {role}",
            region="fe",
            api_version="2026-01-01",
            marketplace_ids=["A1VC38T7YXB528"],
        )
        s.add(account)
        s.flush()
        for i, buyer in enumerate(MARKED_BUYERS):
            order_id = f"503-{seller.tenant.id:07d}-{i:07d}"
            facts = OrderFacts(
                marketplace="amazon",
                external_order_id=order_id,
                status=OrderStatus.UNSHIPPED,
                purchased_at=T0,
                last_updated_at=T0,
                ship_by=T0 + timedelta(days=2),
            )
            store_order(s, keys=seller.keys, account=account, facts=facts, label=buyer)
            ids.append(order_id)
        s.commit()
    seller.login(client, user, auth)
    return Shop(seller, user, auth, ids)
