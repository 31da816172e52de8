"""``python -m bench.sync --marketplace ebay``: orders from the fake eBay against eBay's daily quota.

``python -m bench.sync --marketplace ebay [--orders 10000] [--speedup 25] [--daily-calls 480]``

The fake runs in its own process; its quota's day lasts ``86400 / speedup`` seconds, and the connector paces
on the same quota and day (``connectors/ebay/endpoints.py``: a bucket of an hour's share, refilled at the rest
of the day's). eBay's default quota (100,000 calls a day per application) never binds one account's sync, so
the benchmark gives the seller its share of an app's quota: ``--daily-calls`` (480 by default: an app of
100,000 calls a day shared by about 200 sellers). The least that allows is one token refresh plus
``ceil(orders / 200)`` getOrders calls (200: eBay's largest page), taking ``(pages - burst) / rate`` seconds
(the bucket's burst is free, each further page waits for its refill). The default speed-up (25) makes a day
3,456 s, so the quota, not the vault's writes, bounds a 10,000-order sync (as it does in production), even
on a busy machine where the writes run at half their speed.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import urllib.request
from typing import Any

from bench.sync import SyncBenchResult, Workspace
from connectors.ebay import EbayCredentials, RetryPolicy, connector_for_account
from connectors.ebay.endpoints import usage_plans
from connectors.fake_ebay import FakeEbay
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount

SEED = 0
PAGE = 200
DAILY_CALLS = 480
SPEEDUP = 25.0


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--daily-calls", type=int, default=DAILY_CALLS, help="the seller's share of the quota")
    parser.set_defaults(speedup=SPEEDUP)


def run(args: argparse.Namespace, ws: Workspace) -> SyncBenchResult:
    plan = usage_plans(args.daily_calls)["fulfillment"]
    proc, base = start_fake(args.orders, args.speedup, args.daily_calls)
    try:
        seller = _get(f"{base}/_fake/seller")
        with ws.sessions() as session:
            account = MarketplaceAccount(
                tenant_id=ws.tenant_id,
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
            seal_credentials(session, keys=ws.keys, account=account, secrets=credentials.as_secrets())
            session.commit()
            connector = connector_for_account(
                session,
                keys=ws.keys,
                account=account,
                speedup=args.speedup,
                limiter=RateLimiter(usage_plans(args.daily_calls), speedup=args.speedup),
                retry=RetryPolicy(),
                endpoint_overrides=[base],
            )
        started = time.monotonic()
        summary = sync_account(ws.sessions, keys=ws.keys, account=account.id, connector=connector)
        seconds = time.monotonic() - started
        stats = _get(f"{base}/_fake/stats")
    finally:
        proc.terminate()
        proc.wait(10)

    pages = max(1, math.ceil(args.orders / PAGE))
    details = [
        f"quota {args.daily_calls}/day, speedup {args.speedup:g}: getOrders bucket "
        f"{plan.rate * args.speedup:.3f}/s burst {plan.burst}",
        f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged",
        f"calls by operation: {json.dumps(stats['calls'])}; throttled {stats['throttled']}",
    ]
    if stats["validation_errors"] or stats["server_errors"]:
        details.append(f"fake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]}")
    return SyncBenchResult(
        orders=args.orders,
        calls=sum(stats["calls"].values()),
        min_calls=pages + 1,  # + the token refresh
        seconds=seconds,
        min_seconds=max(0, pages - plan.burst) / (plan.rate * args.speedup),
        expected_ids=set(FakeEbay(seed=SEED).generate_orders(args.orders)),  # same seed, same ids
        details=details,
    )
