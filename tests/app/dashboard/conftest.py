"""Fixtures of the dashboard tests: an app on the shared database, a tenant with a signed-in owner."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.app.dashboard.support import PASSWORD, Authenticator, Clock, post, unique_email
from tests.conftest import Database
from vault.models import Tenant, User
from vault.tenants import create_tenant
from vault.users import accounts, invitations, passwords, second_factor, sessions, signin


@pytest.fixture(autouse=True)
def fast_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with test parameters (the production ones cost ~60 ms and 64 MiB per hash)."""
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(passwords, "_DUMMY_HASH", [])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import app.dashboard.state

    c = Clock()
    for module in (accounts, invitations, second_factor, sessions, signin):  # every users module reading the time
        monkeypatch.setattr(module, "utcnow", c)
    monkeypatch.setattr(app.dashboard.state, "utcnow", c)
    return c


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


@pytest.fixture
def dash_app(make_app: Any, shared_db: Database) -> Any:
    return show_tracebacks(make_app(shared_db.app_url))


def show_tracebacks(app: Any) -> Any:
    """With LABELVAULT_TEST_TRACEBACKS=1, a view's exception propagates instead of becoming a bare 500."""
    if os.environ.get("LABELVAULT_TEST_TRACEBACKS") == "1":

        @app.errorhandler(Exception)
        def _raise(exc: Exception) -> Any:
            raise exc

    return app


@pytest.fixture
def seller(dash_app: Any, clock: Clock) -> Seller:
    svc = dash_app.extensions["labelvault"]
    with svc.sessions() as s:
        tenant = create_tenant(
            s, keys=svc.keys, slug=f"seller-{uuid.uuid4().hex[:8]}", name="Sakura Trading", actor="test"
        )
        s.commit()
        s.expunge(tenant)
    return Seller(dash_app, tenant, clock)


@pytest.fixture
def client(dash_app: Any) -> FlaskClient:
    c: FlaskClient = dash_app.test_client()
    return c
