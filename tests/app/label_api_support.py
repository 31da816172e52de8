"""Shared helpers of the label API tests: a committed world (tenant, orders, client), buyers whose PII must
never show up in a log line, and an OpenAPI response checker."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from sqlalchemy.orm import Session

from tests.conftest import Database
from vault.clients import LABELS_ISSUE, LabelProfile, create_client
from vault.keys import KeyManager
from vault.models import ApiClient, MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import LabelRecord, OrderFacts, OrderStatus
from vault.tenants import create_tenant

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

#: Test buyers. Their names, streets and phones must never appear in a log line or an error body.
BUYERS = (
    LabelRecord(
        name="試験 花子",
        address_line1="試験町1-2-3",
        address_line2="テストビル4階",
        city="千代田区",
        state_or_region="東京都",
        postal_code="100-0001",
        country_code="JP",
        phone="+81 90-5555-0123",
    ),
    LabelRecord(
        name="Quentin Zebulon Testbuyer",
        company="Zebulon Widgets",
        address_line1="4417 Marigold Testbuyer Lane",
        city="Seattle",
        state_or_region="WA",
        postal_code="98101",
        country_code="US",
        phone="+1 206-555-0199",
    ),
)
PII_STRINGS = tuple(
    s for b in BUYERS for s in (b.name, b.address_line1, b.address_line2, b.phone, b.company) if s is not None
)


def assert_no_pii(text: str, where: str = "output") -> None:
    """Fail if ``text`` contains any test buyer's name, street, company or phone."""
    for needle in PII_STRINGS:
        assert needle not in text, f"buyer PII found in {where}"


@pytest.fixture
def no_pii_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture every log record of the test (DEBUG and up) and check none carries buyer PII."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert_no_pii(record.getMessage(), "a log line")
        if record.exc_text:
            assert_no_pii(record.exc_text, "a logged traceback")


@pytest.fixture
def make_api_app(make_app: Any) -> Iterator[Callable[..., Any]]:
    """``make_app`` whose apps' database engines are disposed after the test (no connection left open)."""
    apps: list[Any] = []

    def factory(*args: Any, **kwargs: Any) -> Any:
        app = make_app(*args, **kwargs)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["labelvault"].engine.dispose()


@dataclass
class World:
    """A committed tenant with an account, orders with sealed labels and an API client with its key."""

    db: Database
    tenant: Tenant
    account: MarketplaceAccount
    orders: list[Order]
    client: ApiClient
    key: str = field(repr=False)

    @property
    def order_ids(self) -> list[str]:
        return [o.external_order_id for o in self.orders]

    def url(self, i: int = 0, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return f"/v1/labels/amazon/{self.order_ids[i]}" + (f"?{q}" if q else "")

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def session(self) -> Session:
        return Session(self.db.engine, expire_on_commit=False)

    def add_client(self, keys: KeyManager, **kwargs: Any) -> tuple[ApiClient, str]:
        with self.session() as s:
            tenant = s.get(Tenant, self.tenant.id)
            assert tenant is not None
            kwargs.setdefault("name", f"client-{uuid.uuid4().hex[:6]}")
            kwargs.setdefault("scopes", [LABELS_ISSUE])
            kwargs.setdefault("cidrs", ["127.0.0.1"])
            issued = create_client(s, tenant=tenant, actor="test", **kwargs)
            s.commit()
            return issued.client, issued.key


def facts(order_id: str, status: OrderStatus = OrderStatus.UNSHIPPED) -> OrderFacts:
    return OrderFacts(
        marketplace="amazon",
        external_order_id=order_id,
        status=status,
        purchased_at=T0,
        last_updated_at=T0 + timedelta(minutes=1),
        marketplace_id="A1VC38T7YXB528",
    )


def build_world(
    db: Database,
    keys: KeyManager,
    *,
    n_orders: int = 2,
    cidrs: Iterable[str] = ("127.0.0.1",),
    scopes: Iterable[str] = (LABELS_ISSUE,),
    profile: LabelProfile | None = None,
    statuses: dict[int, OrderStatus] | None = None,
) -> World:
    """Commit a new tenant (unique slug), ``n_orders`` orders alternating JP/US buyers, and a client."""
    statuses = statuses or {}
    with Session(db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=keys, slug=f"seller-{uuid.uuid4().hex[:8]}", name="Test Seller", actor="test")
        account = MarketplaceAccount(
            tenant_id=tenant.id,
            marketplace="amazon",
            name="JP store",
            region="fe",
            api_version="2026-01-01",
            marketplace_ids=["A1VC38T7YXB528"],
        )
        s.add(account)
        s.flush()
        prefix = uuid.uuid4().hex[:7]
        orders = [
            store_order(
                s,
                keys=keys,
                account=account,
                facts=facts(f"503-{prefix}-{i:07d}", statuses.get(i, OrderStatus.UNSHIPPED)),
                label=BUYERS[i % len(BUYERS)],
            ).order
            for i in range(n_orders)
        ]
        issued = create_client(
            s, tenant=tenant, name="station-1", scopes=scopes, cidrs=cidrs, profile=profile, actor="test"
        )
        s.commit()
        return World(db, tenant, account, orders, issued.client, issued.key)


# -- OpenAPI ----------------------------------------------------------------------------------------


@functools.cache
def _openapi() -> dict[str, Any]:
    from app.api.openapi import openapi_document

    return openapi_document()


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = _openapi()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def assert_matches_openapi(response: Any, path: str, method: str = "get") -> None:
    """Check a Flask test response against the document: status, media type, body schema, headers."""
    operation = _openapi()["paths"][path][method]
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method.upper()} {path} answered {status}, not in the document"
    spec = _resolve(documented[status])
    media_type = response.mimetype
    assert media_type in spec["content"], f"{status} as {media_type} is not documented"
    schema = spec["content"][media_type]["schema"]
    if media_type.endswith("json"):
        wrapped = {**schema, "components": _openapi()["components"]}  # so "#/components/..." refs resolve
        jsonschema.Draft202012Validator(wrapped, format_checker=jsonschema.FormatChecker()).validate(
            response.get_json()
        )
    for name, header in spec.get("headers", {}).items():
        value = response.headers.get(name)
        assert value is not None, f"documented header {name} missing"
        jsonschema.Draft202012Validator(_resolve(header)["schema"]).validate(value)


# -- gunicorn on loopback --------------------------------------------------------------------------


class Gunicorn:
    """``gunicorn -w N 'app:create_app()'`` on a loopback port, with LABELVAULT_* settings from ``env``."""

    def __init__(self, env: dict[str, str], *, workers: int = 4, log_path: Any = None) -> None:
        import os
        import subprocess
        import sys
        from pathlib import Path

        from tests.conftest import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root = Path(__file__).resolve().parents[2]
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
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        import time

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
        import subprocess

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
