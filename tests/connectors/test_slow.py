"""Scenario tests: thousands of orders through faults, and sync processes killed with SIGKILL mid-run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.amazon import RetryPolicy
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.sync import sync_account
from tests.support.amazon import add_amazon_account, expected_state, make_connector, stored_state
from tests.support.servers import Database
from vault.db import make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, SyncState, Tenant
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_ten_thousand_orders_through_429_500_and_token_expiry(
    session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazon
) -> None:
    fake.generate_orders(10_000)
    account = add_amazon_account(session, keys, tenant, fake)
    retry = RetryPolicy(attempts=6, base_delay=1.0, read_timeout=3.0)  # a loaded CI machine answers pages slowly
    connector = make_connector(session, keys, account, fake, retry=retry)

    def chaos(progress: Any) -> None:
        if progress.pages == 10:
            fake.inject(status=429, count=3, operation="searchOrders")
        elif progress.pages == 25:
            fake.inject(status=500, count=2, operation="searchOrders")
            fake.inject(status=503, operation="searchOrders")
        elif progress.pages in (40, 70):
            fake.expire_tokens()
        elif progress.pages == 55:
            fake.inject_delay(6.0, operation="searchOrders")  # beyond the read timeout

    summary = sync_account(session, keys=keys, account=account, connector=connector, progress=chaos)
    assert summary.orders_new == 10_000 and summary.pages == 100
    assert summary.throttled >= 3 and fake.calls["lwaToken"] == 3
    assert session.scalar(select(func.count()).where(Order.account_id == account.id)) == 10_000
    assert stored_state(session, keys, account) == expected_state(fake)


@pytest.mark.timeout(900)
def test_sigkill_at_random_points_loses_and_duplicates_nothing(fresh_db: Database, tmp_path: Path) -> None:
    """Sync processes killed with SIGKILL at random moments, then one run to the end: exactly the fake's orders."""
    rng = random.Random(7)
    clock = FakeClock()
    keyring = tmp_path / "keyring.json"
    keys = KeyManager(LocalKeyProvider(keyring))
    sessions = make_session_factory(fresh_db.engine)
    speedup = 1500.0
    with FakeAmazon(speedup=speedup, seed=3, clock=clock) as fake:
        fake.generate_orders(2000)
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="crash", name="Crash", actor="test")
            s.commit()
            account_id = add_amazon_account(
                s, keys, tenant, fake, api_version="v0" if rng.random() < 0.5 else "2026-01-01"
            ).id
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.sync_worker",
                    f"--db={fresh_db.app_url}",
                    f"--keyring={keyring}",
                    f"--account={account_id}",
                    f"--speedup={speedup}",
                    f"--now={fake.now().isoformat()}",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )

        killed = finished = mid_window = 0
        ids = list(fake.orders())
        # Runs until 20 have been killed mid-flight (a run that finishes before its kill time counts as
        # finished, not killed): how many finish depends on the machine's speed, the kill count doesn't.
        for attempt in range(80):
            if killed >= 20:
                break
            proc = worker()
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready": under load, interpreter start-up alone can take seconds
            # Kill sooner when runs keep finishing first (a fast machine), never later than 1.5 s.
            time.sleep(rng.uniform(0.0, 1.5 if attempt < 25 else 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
                with sessions() as s:
                    mid_window += bool(s.scalar(select(SyncState.page_token).where(SyncState.account_id == account_id)))
            else:
                finished += 1
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            # The marketplace moves on between runs: enough status changes that most runs are killed mid-way.
            # (Not new orders: the fake backdates a new order's lastUpdated, which no real order does.)
            for order_id in rng.sample(ids, 120):
                status = fake.orders()[order_id].status
                if status in ("PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED"):
                    fake.update_order(order_id, status=rng.choice(["SHIPPED", "CANCELLED", "PARTIALLY_SHIPPED"]))
                elif status == "SHIPPED" and rng.random() < 0.3:
                    fake.update_order(order_id, delivered=True)
            clock.advance(minutes=3)
        assert killed >= 20 and mid_window >= 3, (killed, finished, mid_window)
        proc = worker()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert fake.validation_errors == []
        expected = expected_state(fake)
        truth = fake.orders()
    with sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        total = s.scalar(select(func.count()).where(Order.account_id == account_id))
        assert total == len(expected) == len(ids) == 2000
        stored = stored_state(s, keys, account)
    # Amazon stops serving the phone once the latest delivery date passes, without touching lastUpdated, so
    # no incremental sync can see that; with the marketplace clock run on an hour here, some orders cross it.
    # Dropping such phones is the vault's retention job; compare without them.
    for order_id, order in truth.items():
        if order.latest_delivery < fake.now():
            stored[order_id][1]["phone"] = expected[order_id][1]["phone"] = None
    assert stored == expected
