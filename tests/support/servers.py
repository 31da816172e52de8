"""Servers the tests (and the benchmarks) run against: PostgreSQL and Redis, moto's AWS endpoints, gunicorn.

PostgreSQL and Redis are real servers named by LABELVAULT_TEST_POSTGRES_URL / LABELVAULT_TEST_REDIS_URL
(defaults: the local servers). Where a server is absent a test skips with the reason; with
LABELVAULT_TEST_REQUIRE_SERVERS=1 (CI) it fails instead, so nothing skips silently there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from vault.db import make_engine, migrate
from vault.keyproviders import AwsKmsKeyProvider

ROOT = Path(__file__).resolve().parents[2]

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


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
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


class MotoS3(MotoServer):
    """An S3 endpoint (moto's server mode), for the audit export."""

    def client(self, service: str = "s3", **config: Any) -> Any:
        return super().client(service, **config)


# -- gunicorn on loopback --------------------------------------------------------------------------


class Gunicorn:
    """``gunicorn -w N 'app:create_app()'`` on a loopback port, with LABELVAULT_* settings from ``env``."""

    def __init__(self, env: dict[str, str], *, workers: int = 4, log_path: Any = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--graceful-timeout",
                "5",
                "app:create_app()",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> Gunicorn:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
