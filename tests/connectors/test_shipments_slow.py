"""Label purchases killed with SIGKILL at random moments, on both databases and with each carrier (Shippo
reconciles by the transaction's metadata, EasyPost by the rate's shipment, Amazon Shipping, which has no lookup
by reference, by its idempotent retry under the reference): every order ends bought once or not bought, never
twice, and its purchase audit event exists exactly when its label does. Amazon Merchant Fulfillment, which can
only tell a lost purchase by the order's status, runs its own loop (PostgreSQL): every merchant order ends with
one label at Amazon, recorded, or pending for the seller when the kill came after Amazon bought it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.carriers.amazon_mfn import MerchantFulfillmentPolicy
from connectors.carriers.shipments import LEASE, reconcile_pending
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.fake_amazon_shipping import FakeAmazonShipping
from connectors.fake_easypost import FakeEasyPost
from connectors.fake_shippo import FakeShippo
from tests.support.amazon import SPEEDUP, add_amazon_account, make_connector
from tests.support.carriers import (
    connect_fake_amazon_mfn,
    connect_fake_amazon_shipping,
    connect_fake_easypost,
    connect_fake_shippo,
    fast_carriers,
)
from tests.support.confirmations import synced_orders
from tests.support.servers import Database
from tests.support.vault import make_account, make_orders
from vault.db import make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import AuditEvent, Order, Shipment, utcnow
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 40
#: A moment past Merchant Fulfillment's settle delay, when the order's status is believed after a lost purchase.
MFN_SETTLED = timedelta(seconds=MerchantFulfillmentPolicy().settle_after + 1)
#: Each carrier: its fake (40 ms a call, purchases unthrottled), how to connect an account on it, and the labels
#: it sold per reference.
CARRIERS: dict[str, tuple[Callable[[], Any], Any, Callable[[Any], Counter[str]]]] = {
    "shippo": (
        lambda: FakeShippo(latency=0.04, purchase_rate=1000, purchase_burst=1000),
        connect_fake_shippo,
        lambda fake: fake.purchases_by_metadata(),
    ),
    "easypost": (
        lambda: FakeEasyPost(latency=0.04, purchase_rate=1000, purchase_burst=1000),
        connect_fake_easypost,
        lambda fake: fake.bought(),
    ),
    "amazonshipping": (
        lambda: FakeAmazonShipping(latency=0.04, speedup=100),
        connect_fake_amazon_shipping,
        lambda fake: fake.purchases_by_key(),
    ),
}


#: The loops CI runs, 20 kills each (~1 minute apiece): every carrier on PostgreSQL, the production database,
#: and Shippo on SQLite, the embedded default. What differs between the databases is the shipment's row lock
#: and lease, which the carrier doesn't change; a run per carrier per database would add three minutes to CI.
RUNS = [
    pytest.param("sqlite", "shippo", id="sqlite-shippo"),
    *(pytest.param("postgresql", c, id=f"postgresql-{c}", marks=pytest.mark.postgres) for c in sorted(CARRIERS)),
]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("fresh_db", "carrier"), RUNS, indirect=["fresh_db"])
def test_sigkill_during_purchases_never_buys_twice_and_audits_exactly_what_was_bought(
    fresh_db: Database, tmp_path: Path, carrier: str
) -> None:
    fake_of, connect, sold = CARRIERS[carrier]
    rng = random.Random(18)
    keyring = tmp_path / "keyring.json"
    keys = KeyManager(LocalKeyProvider(keyring))
    sessions = make_session_factory(fresh_db.engine)
    # Each carrier call takes 40 ms, so a purchase (quote, then buy) is ~0.1 s and most kills land inside one.
    with fake_of() as fake:
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="crash", name="Crash", actor="test")
            account = make_account(s, tenant)
            make_orders(s, keys, account, ORDERS)
            s.commit()
            connect(s, keys, tenant.id, fake)
            tenant_id = tenant.id
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "tests.support.ship_worker", f"--db={fresh_db.app_url}",
                   f"--keyring={keyring}", f"--tenant={tenant_id}"]  # fmt: skip
        killed = 0
        for _attempt in range(60):
            if killed >= 20:
                break
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready"
            time.sleep(rng.uniform(0.05, 0.6))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            # A killed buyer's lease runs out; the worker's reconciliation settles what it left pending.
            with sessions() as s:
                reconcile_pending(s, keys=keys, carriers=fast_carriers(), now=utcnow() + LEASE + timedelta(seconds=1))
        assert killed >= 20, killed
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        bought_at_carrier = sold(fake)
        assert fake.validation_errors == [] and fake.server_errors == []
    with sessions() as s:
        shipments = list(s.scalars(select(Shipment).where(Shipment.tenant_id == tenant_id)))
        events = list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.tenant_id == tenant_id,
                    AuditEvent.action == "shipment.purchase",
                    AuditEvent.outcome == "ok",
                )
            )
        )
    assert all(s.status == "bought" for s in shipments), Counter(s.status for s in shipments)
    assert Counter(s.order_id for s in shipments) == Counter({s.order_id: 1 for s in shipments})
    assert len(shipments) == ORDERS  # the last run bought every order still without a label
    # Every label the carrier sold is a recorded shipment, once; nothing bought twice, nothing unrecorded.
    assert bought_at_carrier == Counter({s.reference: 1 for s in shipments})
    assert sorted(e.details["shipment_id"] for e in events if e.details) == sorted(s.id for s in shipments)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(900)
@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_sigkill_during_merchant_fulfillment_purchases_never_buys_an_order_twice(
    fresh_db: Database, tmp_path: Path
) -> None:
    """Amazon Merchant Fulfillment has no look-up of a lost purchase: a kill after Amazon bought the label and
    before the vault recorded it leaves the shipment pending (unsettled, the order Shipped at Amazon), never
    bought again; a kill before Amazon bought it is bought by a later run. Every merchant order ends with one
    label at Amazon, recorded bought or pending for the seller; every recorded label is audited once."""
    rng = random.Random(18)
    keyring = tmp_path / "keyring.json"
    keys = KeyManager(LocalKeyProvider(keyring))
    sessions = make_session_factory(fresh_db.engine)
    with FakeAmazon(speedup=SPEEDUP, seed=18, clock=FakeClock(), latency=0.04) as amazon:
        amazon.generate_orders(ORDERS, countries=("US",), statuses=["UNSHIPPED"])
        # A createShipment takes a quarter second, so some kills land while Amazon is buying: the label is
        # bought after the buyer died, and only the order's status tells.
        amazon.inject_delay(0.25, count=10_000, operation="createShipment")
        merchant = {oid for oid, o in amazon.orders().items() if o.fulfilled_by == "MERCHANT"}
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="crash", name="Crash", actor="test")
            account = add_amazon_account(s, keys, tenant, amazon)
            synced_orders(s, keys, account, make_connector(s, keys, account, amazon))
            connect_fake_amazon_mfn(s, keys, tenant.id, amazon)
            tenant_id = tenant.id
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "tests.support.ship_worker", f"--db={fresh_db.app_url}",
                   f"--keyring={keyring}", f"--tenant={tenant_id}"]  # fmt: skip
        killed = 0
        for _attempt in range(60):
            if killed >= 20:
                break
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready"
            time.sleep(rng.uniform(0.05, 0.6))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            # The lease runs out two minutes later in production, and the order's status is believed only
            # Merchant Fulfillment's settle delay after that, long after Amazon answered the killed request;
            # here the fake's answer (under 0.3 s away) is awaited before the worker reconciles, past both.
            time.sleep(0.5)
            with sessions() as s:
                reconcile_pending(s, keys=keys, carriers=fast_carriers(), now=utcnow() + LEASE + MFN_SETTLED)
        assert killed >= 20, killed
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        bought_at_amazon = amazon.mfn.purchases_by_order()
        tracking_at_amazon = {s["order_id"]: s["tracking_id"] for s in amazon.mfn.shipments()}
        assert amazon.validation_errors == [] and amazon.server_errors == []
    with sessions() as s:
        shipments = list(s.scalars(select(Shipment).where(Shipment.tenant_id == tenant_id)))
        external = {o.id: o.external_order_id for o in s.scalars(select(Order).where(Order.tenant_id == tenant_id))}
        events = list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.tenant_id == tenant_id,
                    AuditEvent.action == "shipment.purchase",
                    AuditEvent.outcome == "ok",
                )
            )
        )
    assert bought_at_amazon == dict.fromkeys(merchant, 1)  # every merchant order bought at Amazon, once
    assert Counter(s.order_id for s in shipments) == Counter({s.order_id: 1 for s in shipments})
    assert {external[s.order_id] for s in shipments} == merchant  # each recorded bought, or pending for the seller
    assert {s.status for s in shipments} <= {"bought", "pending"}
    for shipment in shipments:
        if shipment.status == "bought":
            assert shipment.tracking_number == tracking_at_amazon[external[shipment.order_id]]
    bought = sorted(s.id for s in shipments if s.status == "bought")
    assert sorted(e.details["shipment_id"] for e in events if e.details) == bought
