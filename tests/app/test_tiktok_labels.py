"""A TikTok-shipped order printed from a warehouse client through the label API: TikTok's own label, fetched
at label time with the account's token, audited as a release, and no recipient string ever in the database
or the logs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeClock
from connectors.fake_tiktok import FakeTikTok, Recipient
from connectors.fake_tiktok.marketplace import market
from connectors.sync import sync_account
from tests.support.servers import Database
from tests.support.tiktok import SPEEDUP, add_tiktok_account, make_connector
from vault.clients import LABELS_ISSUE, create_client
from vault.models import AuditEvent, Base, Order
from vault.tenants import create_tenant

#: The recipient of the TikTok-shipped order: strings that occur nowhere else, so finding one is a leak.
PARCEL_RECIPIENT = Recipient(
    name="Quillon Vasquez-Thornbury",
    first_name="Quillon",
    last_name="Vasquez-Thornbury",
    address_line1="4417 Marigold Crescent",
    address_line2="Unit 9Q",
    region_code="US",
    districts=market("US").districts,
    postal_code="90012",
    phone_number="(+1)2135550987",
)


@dataclass
class Shop:
    app: Any
    fake: FakeTikTok
    tenant_id: int
    key: str
    platform_order: str
    seller_order: str

    def stored_order(self, session: Session) -> Order:
        """The TikTok-shipped order as the vault stored it."""
        query = select(Order).where(Order.tenant_id == self.tenant_id, Order.external_order_id == self.platform_order)
        return session.scalars(query).one()

    def get(self, order_id: str, **query: str) -> Any:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        url = f"/v1/labels/tiktok/{order_id}" + (f"?{q}" if q else "")
        return self.app.test_client().get(url, headers={"Authorization": f"Bearer {self.key}"})


@pytest.fixture
def shop(make_app: Any, shared_db: Database) -> Iterator[Shop]:
    """A tenant whose TikTok Shop account (on the fake) is synced, and a warehouse client with its key."""
    clock = FakeClock()
    with FakeTikTok(speedup=SPEEDUP, seed=7, clock=clock) as fake:
        app = make_app(shared_db.app_url, marketplace_endpoint_overrides=fake.base_url)
        svc = app.extensions["labelvault"]
        platform_order = fake.add_order(recipient=PARCEL_RECIPIENT, shipping_type="TIKTOK")
        seller_order = fake.add_order()
        fake.generate_orders(20, platform_shipped_every=3)
        clock.advance(seconds=10)
        with svc.sessions() as s:
            tenant = create_tenant(s, keys=svc.keys, slug=f"tt-{uuid.uuid4().hex[:8]}", name="TT Seller", actor="test")
            account = add_tiktok_account(s, svc.keys, tenant, fake)
            connector = make_connector(s, svc.keys, account, fake)
            sync_account(s, keys=svc.keys, account=account, connector=connector)
            connector.close()
            issued = create_client(
                s, tenant=tenant, name="station-1", scopes=[LABELS_ISSUE], cidrs=["127.0.0.1"], actor="test"
            )
            s.commit()
            yield Shop(app, fake, tenant.id, issued.key, platform_order, seller_order)
        assert fake.validation_errors == [] and fake.server_errors == []


def _database_text(db: Database) -> list[str]:
    """Every value of every row of every table, as text (bytes both as UTF-8 and as Latin-1)."""
    out: list[str] = []
    with Session(db.engine) as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        out += [value.decode("utf-8", "replace"), value.decode("latin-1")]
                    elif value is not None:
                        out.append(str(value))
    return out


def test_a_tiktok_shipped_order_prints_tiktoks_label_and_no_recipient_string_is_ever_stored_or_logged(
    shop: Shop, shared_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with Session(shared_db.engine) as s:
        stored = shop.stored_order(s)
        assert stored.label_withheld == "platform-shipped" and stored.label is None

    resp = shop.get(shop.platform_order, format="pdf")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/pdf" and resp.headers["Cache-Control"] == "no-store"
    assert resp.data == shop.fake.shipping_document(shop.platform_order)  # TikTok's label, passed through
    assert PARCEL_RECIPIENT.name.encode() in resp.data  # the address reached the warehouse on it

    with Session(shared_db.engine) as s:
        release = s.scalars(
            select(AuditEvent).where(AuditEvent.chain == f"tenant:{shop.tenant_id}").order_by(AuditEvent.seq.desc())
        ).first()
        assert release is not None
        assert (release.action, release.outcome, release.order_ref, release.purpose) == (
            "label.release",
            "released",
            f"tiktok:{shop.platform_order}",
            "shipping-label",
        )
        assert release.details == {"fields": ["platform-document"], "issue": 1, "format": "pdf"}
        stored = shop.stored_order(s)
        assert stored.labels_issued == 1 and stored.label is None

    recipient = [
        PARCEL_RECIPIENT.name,
        PARCEL_RECIPIENT.last_name,
        PARCEL_RECIPIENT.address_line1,
        PARCEL_RECIPIENT.address_line2,
        "2135550987",
    ]
    assert [n for n in recipient if n and any(n in value for value in _database_text(shared_db))] == []
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert [n for n in shop.fake.buyer_pii_strings() if n in logged] == []
    assert shop.fake.calls["shipping_document"] == 1 and shop.fake.calls["document"] == 1


def test_tiktoks_label_is_released_as_pdf_only_and_seller_shipped_orders_print_from_the_vault(shop: Shop) -> None:
    refused = shop.get(shop.platform_order)
    assert refused.status_code == 406 and refused.get_json()["type"].endswith("/platform-document-pdf-only")
    assert shop.fake.calls["shipping_document"] == 0
    own = shop.get(shop.seller_order)
    assert own.status_code == 200 and own.get_json()["marketplace"] == "tiktok"
    assert shop.fake.calls["shipping_document"] == 0


def test_an_order_tiktok_has_no_label_for_now_is_refused_and_nothing_is_counted(
    shop: Shop, shared_db: Database
) -> None:
    shop.fake.update_order(shop.platform_order, status="IN_TRANSIT")  # collected: the vault still says unshipped
    resp = shop.get(shop.platform_order, format="pdf")
    assert resp.status_code == 409 and resp.get_json()["reason"] == "no-label-data"
    with Session(shared_db.engine) as s:
        stored = shop.stored_order(s)
        assert stored.labels_issued == 0


def test_tiktok_unreachable_releases_nothing(shop: Shop, shared_db: Database) -> None:
    shop.fake.inject(status=503, count=10, operation="orders.detail")
    resp = shop.get(shop.platform_order, format="pdf")
    assert resp.status_code == 503 and resp.mimetype == "application/problem+json"
    assert "could not be fetched; nothing was released" in resp.get_json()["detail"]
    with Session(shared_db.engine) as s:
        assert shop.stored_order(s).labels_issued == 0
