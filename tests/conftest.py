"""Fixtures of more than one test package: databases (SQLite and PostgreSQL), key providers (local keyring,
KMS via moto), apps, and the check that no log line carries buyer PII.

The servers behind them and every other shared helper are in ``tests/support`` (``servers.py`` says how
PostgreSQL and Redis are found, and when a missing one skips or fails).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.support.servers import Database, MotoKms
from tests.support.world import assert_no_pii
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import Tenant
from vault.tenants import create_tenant

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session", params=BACKENDS)
def shared_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated database per backend per xdist worker (tests isolate through ``session``)."""
    db = Database(request.param, tmp_path_factory.mktemp("db"))
    yield db
    db.drop()


@pytest.fixture
def engine(shared_db: Database) -> Engine:
    return shared_db.engine


@pytest.fixture
def session(shared_db: Database) -> Iterator[Session]:
    """A session whose work is rolled back after the test; ``commit()`` inside only releases a savepoint."""
    conn = shared_db.engine.connect()
    outer = conn.begin()
    if shared_db.backend == "sqlite":
        # pysqlite BEGINs only before a write, so the first SAVEPOINT would open the transaction itself and
        # its RELEASE (a commit inside the test) would commit to the shared file for real.
        conn.exec_driver_sql("BEGIN")
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield s
    s.close()
    outer.rollback()
    conn.close()


@pytest.fixture(params=BACKENDS)
def fresh_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database of its own for tests that commit for real (threads, subprocesses, crash tests)."""
    db = Database(request.param, tmp_path)
    yield db
    db.drop()


@pytest.fixture
def postgres_db(tmp_path: Path) -> Iterator[Database]:
    """A PostgreSQL database of its own, for behaviour only PostgreSQL has (advisory locks, SKIP LOCKED)."""
    db = Database("postgresql", tmp_path)
    yield db
    db.drop()


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    return tmp_path / "instance" / "keyring.json"


@pytest.fixture
def local_provider(keyring_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(keyring_path)


@pytest.fixture
def keys(local_provider: LocalKeyProvider) -> KeyManager:
    return KeyManager(local_provider)


@pytest.fixture
def tenant(session: Session, keys: KeyManager) -> Tenant:
    t = create_tenant(session, keys=keys, slug=f"seller-{uuid.uuid4().hex[:6]}", name="Test Seller", actor="test")
    session.commit()
    return t


@pytest.fixture(scope="session")
def moto_kms() -> Iterator[MotoKms]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    kms = MotoKms()
    yield kms
    kms.stop()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    """Build apps on a given database URL with test settings; their engines are disposed afterwards."""
    from app import create_app

    apps: list[Any] = []

    def factory(database_url: str | None = None, **overrides: Any) -> Any:
        settings: dict[str, Any] = {"env": "test", "instance_path": tmp_path / "instance", **overrides}
        if database_url:
            settings["database_url"] = database_url
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["labelvault"].engine.dispose()


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url)


@pytest.fixture
def no_pii_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture every log record of the test (DEBUG and up) and check none carries buyer PII."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert_no_pii(record.getMessage(), "a log line")
        if record.exc_text:
            assert_no_pii(record.exc_text, "a logged traceback")
