"""Scenario tests for TikTok Shop: sync processes killed with SIGKILL mid-run, then one run to the end."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.fake_amazon import FakeClock
from connectors.fake_tiktok import FakeTikTok
from tests.support.servers import Database
from tests.support.tiktok import add_tiktok_account, expected_state, stored_state
from vault.db import make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, SyncState
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.mark.timeout(900)
def test_sigkill_at_random_points_loses_and_duplicates_nothing(fresh_db: Database, tmp_path: Path) -> None:
    """TikTok sync processes killed with SIGKILL at random moments, then one run to the end: exactly the
    fake's orders, platform-shipped ones withheld, and the renewed tokens still working."""
    rng = random.Random(11)
    clock = FakeClock()
    keyring = tmp_path / "keyring.json"
    keys = KeyManager(LocalKeyProvider(keyring))
    sessions = make_session_factory(fresh_db.engine)
    speedup = 50.0
    with FakeTikTok(speedup=speedup, seed=5, clock=clock) as fake:
        fake.generate_orders(800, platform_shipped_every=6)
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug="crash", name="Crash", actor="test")
            s.commit()
            account_id = add_tiktok_account(s, keys, tenant, fake).id
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
        for attempt in range(60):
            if killed >= 15 and mid_window >= 3:
                break
            clock.advance(seconds=10)
            if attempt % 5 == 4:
                fake.expire_tokens()  # the next run renews them (and seals the new ones) before it is killed
            proc = worker()
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready"
            # On a loaded machine a run may not store a page within 1.5 s: kill later while no kill has landed
            # mid-window yet, so some do whatever the machine's speed.
            time.sleep(rng.uniform(0.0, 1.5) * (1 + attempt / 8 if mid_window < 3 else 1))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
                with sessions() as s:
                    mid_window += bool(s.scalar(select(SyncState.page_token).where(SyncState.account_id == account_id)))
            else:
                finished += 1
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            for order_id in rng.sample(ids, 60):
                status = fake.orders()[order_id].status
                if status in ("ON_HOLD", "AWAITING_SHIPMENT"):
                    fake.update_order(order_id, status=rng.choice(["AWAITING_COLLECTION", "CANCELLED"]))
                elif status == "AWAITING_COLLECTION":
                    fake.update_order(order_id, status="IN_TRANSIT")
            clock.advance(minutes=3)
        assert killed >= 15 and mid_window >= 3, (killed, finished, mid_window)
        clock.advance(seconds=10)
        proc = worker()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert fake.validation_errors == [] and fake.server_errors == []
        expected = expected_state(fake)
    with sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        assert s.scalar(select(func.count()).where(Order.account_id == account_id)) == len(expected) == 800
        assert stored_state(s, keys, account) == expected
