"""A committed world for the label API tests (tenant, account, orders, client and key), the check that
no marked buyer's PII shows up in a text, and an OpenAPI response checker."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jsonschema
from sqlalchemy.orm import Session

from tests.support.buyers import MARKED_BUYERS
from tests.support.servers import Database
from tests.support.vault import T0
from vault.clients import LABELS_ISSUE, LabelProfile, create_client
from vault.keys import KeyManager
from vault.models import ApiClient, MarketplaceAccount, Order, Tenant
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus
from vault.tenants import create_tenant

#: Every string of the marked buyers that must never appear in a log line, an error body or an export.
PII_STRINGS = tuple(
    s for b in MARKED_BUYERS for s in (b.name, b.address_line1, b.address_line2, b.phone, b.company) if s is not None
)


def assert_no_pii(text: str, where: str = "output") -> None:
    """Fail if ``text`` contains any marked buyer's name, street, company or phone."""
    for needle in PII_STRINGS:
        assert needle not in text, f"buyer PII found in {where}"


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
                label=MARKED_BUYERS[i % len(MARKED_BUYERS)],
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
