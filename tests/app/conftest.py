"""Fixtures of the app tests: an app on the shared database, a tenant with a signed-in owner, test argon2 costs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient

from tests.support.dashboard import Clock, Seller, show_tracebacks
from tests.support.servers import Database
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


@pytest.fixture
def dash_app(make_app: Any, shared_db: Database) -> Any:
    return show_tracebacks(make_app(shared_db.app_url))


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
