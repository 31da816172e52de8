"""The connector contract, the same for every platform: each test runs once per harness
(tests/support/harnesses.py) on SQLite and PostgreSQL.

What every connector must do through the sync engine: store exactly what the platform serves (minimised, text
repaired), pick up changes incrementally, renew expired tokens, respect and survive throttling and server
errors, never let one bad order block its account, never log a buyer's data, and lose or duplicate nothing
when its sync process is killed at any moment.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.sync import sync_account
from tests.support.contract import Harness, State, stored
from tests.support.harnesses import HARNESSES
from tests.support.servers import Database
from vault.db import make_session_factory
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, SyncState, Tenant
from vault.records import repair_text
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=[h.code for h in HARNESSES])
def platform(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The fake of one platform, running."""
    harness = next(h for h in HARNESSES if h.code == request.param)
    with harness.running(seed=11) as running:
        yield running


def as_stored(state: State) -> State:
    """The vault's view of what a platform served: text repaired and stripped as every connector does."""

    def clean(value: Any) -> Any:
        return (repair_text(value).strip() or None) if isinstance(value, str) else value

    return {
        oid: (status, None if label is None else {k: clean(v) for k, v in label.items()})
        for oid, (status, label) in state.items()
    }


def _sync(session: Session, keys: KeyManager, platform: Harness, account: MarketplaceAccount) -> Any:
    connector = platform.connector(session, keys, account)
    try:
        return sync_account(session, keys=keys, account=account, connector=connector)
    finally:
        connector.close()


def test_full_sync_stores_what_the_platform_serves(
    session: Session, keys: KeyManager, tenant: Tenant, platform: Harness
) -> None:
    platform.seed_orders(240)
    account = platform.connect(session, keys, tenant)
    summary = _sync(session, keys, platform, account)
    assert summary.orders_new == 240
    assert stored(session, keys, account) == as_stored(platform.expected())
    assert platform.throttled() == 0  # the connector paced itself within the platform's limits


def test_only_a_sync_of_many_pages_starts_a_prefetch_thread(
    session: Session, keys: KeyManager, tenant: Tenant, platform: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connectors.prefetch

    started: list[str] = []

    class Counted(connectors.prefetch.ThreadPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(kwargs.get("thread_name_prefix", ""))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(connectors.prefetch, "ThreadPoolExecutor", Counted)
    platform.seed_orders(240)
    account = platform.connect(session, keys, tenant)
    first = _sync(session, keys, platform, account)
    assert first.orders_new == 240
    assert (len(started) >= 1) == (first.pages > 1)  # the next page fetched while this one was stored
    before = len(started)
    quiet = _sync(session, keys, platform, account)  # nothing changed: one page, fetched in the caller's thread
    assert quiet.pages == 1 and quiet.orders_new == 0 and len(started) == before


def test_incremental_sync_picks_up_changes_and_only_them(
    session: Session, keys: KeyManager, tenant: Tenant, platform: Harness
) -> None:
    platform.seed_orders(200)
    account = platform.connect(session, keys, tenant)
    first = _sync(session, keys, platform, account)
    platform.advance(10)
    changed = platform.move_on(random.Random(5), 30)
    assert changed
    platform.advance(10)
    second = _sync(session, keys, platform, account)
    assert stored(session, keys, account) == as_stored(platform.expected())
    assert second.orders_new == 0
    assert second.orders_updated >= len(set(changed)) - 0  # every change seen (overlap may add unchanged)
    assert second.calls < first.calls or first.calls <= 2


def test_expired_tokens_are_renewed(session: Session, keys: KeyManager, tenant: Tenant, platform: Harness) -> None:
    platform.seed_orders(60)
    account = platform.connect(session, keys, tenant)
    _sync(session, keys, platform, account)
    grants = platform.token_grants()
    platform.expire_tokens()
    platform.advance(5)
    platform.move_on(random.Random(2), 10)
    platform.advance(5)
    _sync(session, keys, platform, account)
    assert platform.token_grants() > grants
    assert stored(session, keys, account) == as_stored(platform.expected())


def test_throttling_and_server_errors_are_waited_out(
    session: Session, keys: KeyManager, tenant: Tenant, platform: Harness
) -> None:
    platform.seed_orders(150)
    account = platform.connect(session, keys, tenant)
    platform.throttle_next(2)
    platform.fail_next(2)
    summary = _sync(session, keys, platform, account)
    assert summary.orders_new == 150
    assert platform.throttled() >= 2 and summary.retries >= 2
    assert stored(session, keys, account) == as_stored(platform.expected())


def test_a_bad_order_never_blocks_its_account(
    session: Session, keys: KeyManager, tenant: Tenant, platform: Harness
) -> None:
    platform.seed_orders(50)
    bad = platform.add_bad_order()
    account = platform.connect(session, keys, tenant)
    summary = _sync(session, keys, platform, account)
    assert summary.orders_new == 51
    state = stored(session, keys, account)
    assert state == as_stored(platform.expected())
    label = state[bad][1]
    assert label is not None and "\ufffd" in label["name"] and "\x00" not in label["address_line1"]
    order = session.scalar(select(Order).where(Order.account_id == account.id, Order.external_order_id == bad))
    assert order is not None and order.text_repaired


def test_no_buyer_string_reaches_the_logs(
    session: Session, keys: KeyManager, tenant: Tenant, platform: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    platform.seed_orders(80)
    platform.add_bad_order()
    account = platform.connect(session, keys, tenant)
    platform.throttle_next(1)
    platform.fail_next(1)
    with caplog.at_level(logging.DEBUG):
        _sync(session, keys, platform, account)
        platform.expire_tokens()
        _sync(session, keys, platform, account)
    text = caplog.text + repr([r.args for r in caplog.records])
    leaked = sorted(s for s in platform.pii_strings() if len(s) >= 4 and s in text)
    assert leaked == []


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("code", [h.code for h in HARNESSES])
def test_sigkill_at_random_points_loses_and_duplicates_nothing(code: str, fresh_db: Database, tmp_path: Path) -> None:
    """20 sync processes killed with SIGKILL at random moments, the platform moving on between them, then
    one run to the end: exactly the platform's orders, each once, as it serves them."""
    harness = next(h for h in HARNESSES if h.code == code)
    db, work = fresh_db, tmp_path
    rng = random.Random(7)
    keyring = work / "keyring.json"
    keys = KeyManager(LocalKeyProvider(keyring))
    sessions = make_session_factory(db.engine)
    with harness.running(seed=3, speedup=1500.0) as platform:
        platform.seed_orders(800)
        with sessions() as s:
            tenant = create_tenant(s, keys=keys, slug=f"crash-{harness.code}", name="Crash", actor="test")
            s.commit()
            account_id = platform.connect(s, keys, tenant).id
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.sync_worker",
                    f"--db={db.app_url}",
                    f"--keyring={keyring}",
                    f"--account={account_id}",
                    "--speedup=1500",
                    f"--now={platform.now().isoformat()}",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )

        killed = finished = 0
        for attempt in range(80):
            if killed >= 20:
                break
            proc = worker()
            assert proc.stdout is not None
            proc.stdout.readline()  # "ready": the kill timer starts once the process is up
            time.sleep(rng.uniform(0.0, 1.2 if attempt < 25 else 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            else:
                finished += 1
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
            platform.move_on(rng, 40)
            platform.advance(3)
        assert killed >= 20, (harness.code, killed, finished)
        proc = worker()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
        expected = as_stored(platform.expected())
    with sessions() as s:
        account = s.get(MarketplaceAccount, account_id)
        assert account is not None
        assert s.scalar(select(func.count()).where(Order.account_id == account_id)) == len(expected) == 800
        assert s.scalar(select(SyncState.page_token).where(SyncState.account_id == account_id)) is None
        assert stored(s, keys, account) == expected, harness.code
