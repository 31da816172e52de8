"""Shared fixtures: databases (SQLite and PostgreSQL), key providers (local keyring, KMS via moto), app.

PostgreSQL and Redis tests run against real servers named by LABELVAULT_TEST_POSTGRES_URL /
LABELVAULT_TEST_REDIS_URL (defaults: the local servers). Where a server is absent they skip with the reason;
with LABELVAULT_TEST_REQUIRE_SERVERS=1 (CI) they fail instead, so nothing skips silently there.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from vault.db import make_engine, migrate
from vault.keyproviders import AwsKmsKeyProvider, LocalKeyProvider
from vault.keys import KeyManager
from vault.models import Tenant
from vault.tenants import create_tenant

POSTGRES_URL = os.environ.get("LABELVAULT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LABELVAULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVERS = os.environ.get("LABELVAULT_TEST_REQUIRE_SERVERS") == "1"


def server_missing(what: str, reason: str) -> None:
    """Skip (or, in CI, fail) because a server the test needs is not there."""
    message = f"{what} not reachable ({reason}); set LABELVAULT_TEST_{what.upper()}_URL to run this test"
    if REQUIRE_SERVERS:
        pytest.fail(message + " [LABELVAULT_TEST_REQUIRE_SERVERS=1]")
    pytest.skip(message)


_pg_checked: dict[str, str | None] = {}


def require_postgres() -> str:
    """The PostgreSQL URL, after checking the server answers (once per process)."""
    if POSTGRES_URL not in _pg_checked:
        try:
            eng = make_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with eng.connect() as c:
                c.execute(text("SELECT 1"))
            eng.dispose()
            _pg_checked[POSTGRES_URL] = None
        except Exception as exc:
            _pg_checked[POSTGRES_URL] = type(exc).__name__
    err = _pg_checked[POSTGRES_URL]
    if err:
        server_missing("postgres", err)
    return POSTGRES_URL


def require_redis() -> str:
    """The Redis URL, after checking the server answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        server_missing("redis", type(exc).__name__)
    return REDIS_URL


class Database:
    """A migrated, empty database of one backend, isolated from other tests and xdist workers."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        if backend == "sqlite":
            self.url = f"sqlite:///{tmp / f'lv-{uuid.uuid4().hex[:8]}.db'}"
            self.engine = make_engine(self.url)
            self.schema = None
        else:
            base = require_postgres()
            self.schema = f"lvt_{uuid.uuid4().hex[:12]}"
            admin = make_engine(base)
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            self.url = base
            self.engine = make_engine(base, connect_args={"options": f"-csearch_path={self.schema}"})
        migrate(self.engine)

    @property
    def app_url(self) -> str:
        """A URL another process can use to reach this same database (schema in the options)."""
        if self.schema is None:
            return self.url
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        self.engine.dispose()
        if self.schema:
            admin = make_engine(self.url)
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            admin.dispose()


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class MotoServer:
    """moto's server mode: real HTTP AWS endpoints on loopback, stoppable and restartable (an outage).

    moto keeps its state in process memory, so keys and buckets survive a stop and a :meth:`restart`.
    """

    region = "eu-west-1"

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.restart()

    def restart(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def client(self, service: str, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}, **config),
        )

    def stop(self) -> None:
        self.server.stop()


class MotoKms(MotoServer):
    """A KMS endpoint with one root key made for the tests."""

    def __init__(self) -> None:
        super().__init__()
        self.key_id = self.client().create_key(Description="labelvault test root")["KeyMetadata"]["KeyId"]

    def client(self, service: str = "kms", **config: Any) -> Any:
        return super().client(service, **config)

    def provider(self, key_id: str | None = None) -> AwsKmsKeyProvider:
        return AwsKmsKeyProvider(key_id or self.key_id, client=self.client())


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
