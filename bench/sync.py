"""Sync benchmark: 10,000 orders from the fake Amazon marketplace, against what its token buckets allow.

``python -m bench.sync [--orders 10000] [--speedup 100] [--api-version 2026-01-01]``; with ``--marketplace ebay``
the eBay benchmark (``bench/sync_ebay.py``) runs instead.

The fake runs in its own process with Amazon's documented usage plans multiplied by ``--speedup``; the
connector runs with the same factor. The least the buckets allow is ``ceil(orders / 100)`` search calls plus
one LWA exchange, taking ``(pages - burst) / (rate * speedup)`` seconds (the burst is free, each further
page waits for a refill). Lost and duplicated orders are measured: the stored order ids are compared with
the fake's (regenerated from the same seed) and with their own distinct count.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import sync_ebay
from connectors.amazon import RetryPolicy, connector_for_account
from connectors.amazon.client import LwaCredentials
from connectors.amazon.endpoints import API_V0, API_V2026, USAGE_PLANS
from connectors.fake_amazon import FakeAmazon
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount, Order
from vault.tenants import create_tenant

SEED = 0
PAGE = 100


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def start_fake(orders: int, speedup: float) -> tuple[subprocess.Popen[str], str]:
    """The fake marketplace in a child process; returns it and its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.fake_amazon",
            *("--port", "0", "--orders", str(orders)),
            *("--speedup", str(speedup), "--seed", str(SEED)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("SP-API endpoint"):
            base = line.split()[-1]
        if line.startswith("Ctrl-C"):
            return proc, base
    raise SystemExit("the fake marketplace did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--speedup", type=float, default=None, help="default: 100 (amazon), 50 (ebay)")
    parser.add_argument("--api-version", choices=[API_V2026, API_V0], default=API_V2026)
    parser.add_argument("--marketplace", choices=["amazon", "ebay"], default="amazon")
    parser.add_argument("--daily-calls", type=int, default=None, help="eBay: the quota a day (default 480)")
    args = parser.parse_args(argv)
    if args.marketplace == "ebay":
        result = sync_ebay.run(
            args.orders, args.speedup or sync_ebay.SPEEDUP, args.daily_calls or sync_ebay.DAILY_CALLS
        )
        print(result.detail)
        print(result.result_line())
        return 0
    args.speedup = args.speedup or 100.0
    operation = "searchOrders" if args.api_version == API_V2026 else "getOrders"
    plan = USAGE_PLANS[operation]

    proc, base = start_fake(args.orders, args.speedup)
    try:
        seller = _get(f"{base}/_fake/seller")
        work = Path(tempfile.mkdtemp(prefix="lv-bench-"))
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        migrate(engine)
        sessions = make_session_factory(engine)
        keys = KeyManager(LocalKeyProvider(work / "keyring.json"))
        with sessions() as session:
            tenant = create_tenant(session, keys=keys, slug="bench", name="Bench", actor="bench")
            account = MarketplaceAccount(
                tenant_id=tenant.id,
                marketplace="amazon",
                name="bench",
                region="na",
                api_version=args.api_version,
                marketplace_ids=seller["marketplace_ids"],
                api_endpoint=base,
                token_endpoint=f"{base}/auth/o2/token",
            )
            session.add(account)
            session.flush()
            credentials = LwaCredentials(seller["client_id"], seller["client_secret"], seller["refresh_token"])
            seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
            session.commit()
            connector = connector_for_account(
                session,
                keys=keys,
                account=account,
                speedup=args.speedup,
                limiter=RateLimiter(USAGE_PLANS, speedup=args.speedup),
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
    pages = math.ceil(args.orders / PAGE)
    min_calls = pages + 1 + (1 if args.api_version == API_V0 else 0)  # + LWA exchange (+ one RDT)
    min_seconds = max(0, pages - plan.burst) / (plan.rate * args.speedup)

    expected = set(FakeAmazon(seed=SEED).generate_orders(args.orders))  # same seed, same ids
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Order)) or 0
        stored = set(session.scalars(select(Order.external_order_id)))
    lost = len(expected - stored)
    duplicated = rows - len(stored) + len(stored - expected)

    print(f"api {args.api_version}, speedup {args.speedup:g}, {operation} {plan.rate}/s burst {plan.burst}")
    print(f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged")
    print(f"calls: {calls} made ({json.dumps(stats['calls'])}), minimum {min_calls}; throttled {stats['throttled']}")
    print(f"time: {seconds:.2f} s, minimum {min_seconds:.2f} s")
    if stats["validation_errors"] or stats["server_errors"]:
        print(f"fake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]}")
    print(
        f"RESULT sync orders={args.orders} calls_vs_min={calls / min_calls:.3f} "
        f"time_vs_min={seconds / min_seconds if min_seconds else float('nan'):.3f} lost={lost} duplicated={duplicated}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
