"""``flask shipments confirm-due | confirm-retry | confirmations``: run the loop back to the marketplaces now,
queue failed confirmations again, count them. Output is counts and short codes, never PII."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.support.servers import Database
from tests.support.world import World, assert_no_pii, build_world
from vault.keys import KeyManager
from vault.models import CarrierAccount, Shipment, ShipmentConfirmation, utcnow

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


@pytest.fixture
def world(shared_db: Database, keys: KeyManager) -> World:
    return build_world(shared_db, keys, n_orders=1)


@pytest.fixture
def app(make_app: Any, shared_db: Database) -> Any:
    return make_app(shared_db.app_url)


def cli(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def _queue(world: World, status: str = "pending") -> int:
    """A confirmation queued as for a TikTok Shop order (a marketplace with no confirmation call), on one of the
    world's orders."""
    with world.session() as s:
        order = world.orders[0]
        carrier = CarrierAccount(tenant_id=world.tenant.id, carrier="shippo", name="Shippo CLI", ship_from={})
        s.add(carrier)
        s.flush()
        shipment = Shipment(
            tenant_id=world.tenant.id, order_id=order.id, live_order_id=order.id, carrier_account_id=carrier.id,
            key_hash="c" * 64, request_hash="r" * 64, reference=f"ref-cli-{order.id}", status="bought", parcel={},
            service_asked="cheapest", label_format="pdf", tracking_number="9400100000000000000000",
            bought_at=utcnow(),
        )  # fmt: skip
        s.add(shipment)
        s.flush()
        row = ShipmentConfirmation(
            tenant_id=world.tenant.id, shipment_id=shipment.id, order_id=order.id, marketplace="tiktok",
            status=status, attempts=0, next_attempt_at=utcnow(),
        )  # fmt: skip
        s.add(row)
        s.commit()
        return row.id


def test_confirm_due_fails_what_the_marketplace_cant_take_and_retry_queues_it_again(app: Any, world: World) -> None:
    row_id = _queue(world)
    listed = cli(app, "shipments", "confirmations", "--tenant", world.tenant.slug)
    assert listed.exit_code == 0 and "tiktok\tpending\t-\t1" in listed.output
    ran = cli(app, "shipments", "confirm-due", "--tenant", world.tenant.slug)
    assert ran.exit_code == 0, ran.output
    assert "0 confirmed, 0 to retry, 1 failed" in ran.output and "unsupported: 1" in ran.output
    assert_no_pii(ran.output, "the command's output")
    with world.session() as s:
        row = s.get(ShipmentConfirmation, row_id)
        assert row is not None and (row.status, row.last_error) == ("failed", "unsupported")
    assert "tiktok\tfailed\tunsupported\t1" in cli(app, "shipments", "confirmations").output
    retried = cli(app, "shipments", "confirm-retry", "--tenant", world.tenant.slug)
    assert retried.exit_code == 0 and "1 failed confirmations queued again" in retried.output
    with world.session() as s:
        statuses = s.scalars(select(ShipmentConfirmation.status).where(ShipmentConfirmation.id == row_id)).all()
    assert statuses == ["pending"]
    assert cli(app, "shipments", "confirm-retry", "--tenant", "no-such-tenant").exit_code != 0
