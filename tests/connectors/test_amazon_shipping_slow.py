"""Amazon Shipping purchases killed with SIGKILL at random moments, on both databases: every order ends bought
once or not bought, never twice, and its purchase audit event exists exactly when its label does. Amazon has no
lookup by reference, so what a killed buyer left is settled by Amazon's idempotent retry under its reference."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.carriers.shipments import LEASE, reconcile_pending
from connectors.fake_amazon_shipping import FakeAmazonShipping
from tests.support.carriers import connect_fake_amazon_shipping, fast_amazon_carriers
from tests.support.servers import Database
from tests.support.vault import make_account, make_orders
from vault.db import make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import AuditEvent, Shipment, utcnow
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 30


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_during_amazon_purchases_never_buys_twice_and_audits_exactly_what_was_bought(
    fresh_db: Database, tmp_path: Path
) -> None:
    rng = random.Random(18)
    keyring = tmp_path / "keyring.json"
    keys = KeyManager(LocalKeyProvider(keyring))
    sessions = make_session_factory(fresh_db.engine)
    # Each carrier call takes 40 ms, so a purchase (quote, then buy) is ~0.1 s and most kills land inside one.
    with FakeAmazonShipping(latency=0.04, speedup=100) as fake:
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="crash", name="Crash", actor="test")
            account = make_account(s, tenant)
            make_orders(s, keys, account, ORDERS)
            s.commit()
            connect_fake_amazon_shipping(s, keys, tenant.id, fake)
            tenant_id = tenant.id
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "tests.support.ship_worker", f"--db={fresh_db.app_url}",
                   f"--keyring={keyring}", f"--tenant={tenant_id}", "--carrier=amazonshipping"]  # fmt: skip
        killed = 0
        for _attempt in range(60):
            if killed >= 20:
                break
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready"
            time.sleep(rng.uniform(0.05, 0.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            with sessions() as s:
                reconcile_pending(
                    s, keys=keys, carriers=fast_amazon_carriers(), now=utcnow() + LEASE + timedelta(seconds=1)
                )
        assert killed >= 20, killed
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        bought_at_carrier = fake.purchases_by_key()
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
    assert len(shipments) == ORDERS
    assert bought_at_carrier == Counter({s.reference: 1 for s in shipments})
    assert sorted(e.details["shipment_id"] for e in events if e.details) == sorted(s.id for s in shipments)
