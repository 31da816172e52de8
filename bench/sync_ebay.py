"""Sync benchmark for eBay: orders from the fake eBay, against what eBay's daily quota allows.

``python -m bench.sync --marketplace ebay [--orders 10000] [--speedup 50] [--daily-calls 480]``

The fake runs in its own process; its quota's day lasts ``86400 / speedup`` seconds, and the connector paces
on the same quota and day (connectors/ebay/endpoints.py: a bucket of an hour's share, refilled at the rest
of the day's). eBay's default quota (100,000 calls a day) never binds one account's sync, so the benchmark
takes an application's quota as one account's share of it: ``--daily-calls`` (480 by default: an app of
100,000 calls a day shared by about 200 sellers). The least the quota allows is one token refresh plus
``ceil(orders / 200)`` getOrders calls (200: eBay's largest page), taking ``(pages - burst) / rate`` seconds.
Lost and duplicated orders are measured against the fake's ids, regenerated from the same seed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connectors.ebay import EbayCredentials, RetryPolicy, connector_for_account
from connectors.ebay.endpoints import usage_plans
from connectors.fake_ebay import FakeEbay
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount, Order
from vault.tenants import create_tenant

SEED = 0
PAGE = 200
DAILY_CALLS = 480
#: A day of the quota in 1,728 s: the pacing, not the vault's writes, bounds a 10,000-order sync.
SPEEDUP = 50.0


@dataclass(frozen=True, slots=True)
class SyncBenchResult:
    """One benchmark run: what was made and stored against the least the platform's limits allow."""

    orders: int
    calls: int
    min_calls: int
    seconds: float
    min_seconds: float
    lost: int
    duplicated: int
    detail: str

    def result_line(self) -> str:
        """The ``RESULT sync ...`` line."""
        time_vs_min = self.seconds / self.min_seconds if self.min_seconds else float("nan")
        return (
            f"RESULT sync marketplace=ebay orders={self.orders} calls_vs_min={self.calls / self.min_calls:.3f} "
            f"time_vs_min={time_vs_min:.3f} lost={self.lost} duplicated={self.duplicated}"
        )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def start_fake(orders: int, speedup: float, daily_calls: int) -> tuple[subprocess.Popen[str], str]:
    """The fake eBay in a child process; returns it and its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.fake_ebay",
            *("--port", "0", "--orders", str(orders), "--seed", str(SEED)),
            *("--speedup", str(speedup), "--daily-calls", str(daily_calls)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base = ""
    for line in proc.stdout:
        if line.startswith("API endpoint"):
            base = line.split()[-1]
        if line.startswith("Ctrl-C"):
            return proc, base
    raise SystemExit("the fake eBay did not start")


def run(orders: int, speedup: float, daily_calls: int = DAILY_CALLS) -> SyncBenchResult:
    """Sync ``orders`` orders from a fresh fake into a fresh SQLite vault; the counts against the minimum."""
    plan = usage_plans(daily_calls)["fulfillment"]
    proc, base = start_fake(orders, speedup, daily_calls)
    try:
        seller = _get(f"{base}/_fake/seller")
        work = Path(tempfile.mkdtemp(prefix="lv-bench-ebay-"))
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        migrate(engine)
        sessions = make_session_factory(engine)
        keys = KeyManager(LocalKeyProvider(work / "keyring.json"))
        with sessions() as session:
            tenant = create_tenant(session, keys=keys, slug="bench", name="Bench", actor="bench")
            account = MarketplaceAccount(
                tenant_id=tenant.id,
                marketplace="ebay",
                name="bench",
                region="global",
                api_version="v1",
                marketplace_ids=seller["marketplace_ids"],
                api_endpoint=base,
                token_endpoint=f"{base}/identity/v1/oauth2/token",
            )
            session.add(account)
            session.flush()
            credentials = EbayCredentials(
                seller["client_id"], seller["client_secret"], seller["ru_name"], seller["refresh_token"]
            )
            seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
            session.commit()
            connector = connector_for_account(
                session,
                keys=keys,
                account=account,
                speedup=speedup,
                endpoint_overrides={base},
                limiter=RateLimiter(usage_plans(daily_calls), speedup=speedup),
                retry=RetryPolicy(),
            )
        started = time.monotonic()
        summary = sync_account(sessions, keys=keys, account=account.id, connector=connector)
        seconds = time.monotonic() - started
        stats = _get(f"{base}/_fake/stats")
    finally:
        proc.terminate()
        proc.wait(10)

    calls = sum(stats["calls"].values())
    pages = max(1, math.ceil(orders / PAGE))
    min_calls = pages + 1  # + the token refresh
    min_seconds = max(0, pages - plan.burst) / (plan.rate * speedup)
    expected = set(FakeEbay(seed=SEED).generate_orders(orders))  # same seed, same ids
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Order)) or 0
        stored = set(session.scalars(select(Order.external_order_id)))
    detail = (
        f"quota {daily_calls}/day, speedup {speedup:g}: "
        f"getOrders bucket {plan.rate * speedup:.2f}/s burst {plan.burst}\n"
        f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged\n"
        f"calls: {calls} made ({json.dumps(stats['calls'])}), minimum {min_calls}; throttled {stats['throttled']}\n"
        f"time: {seconds:.2f} s, minimum {min_seconds:.2f} s"
    )
    if stats["validation_errors"] or stats["server_errors"]:
        detail += f"\nfake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]}"
    return SyncBenchResult(
        orders=orders,
        calls=calls,
        min_calls=min_calls,
        seconds=seconds,
        min_seconds=min_seconds,
        lost=len(expected - stored),
        duplicated=rows - len(stored) + len(stored - expected),
        detail=detail,
    )
