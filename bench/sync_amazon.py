"""``python -m bench.sync --marketplace amazon``: 10,000 orders from the fake Amazon against its token buckets.

The fake runs in its own process with Amazon's documented usage plans multiplied by ``--speedup``; the
connector runs with the same factor. The least the buckets allow is ``ceil(orders / 100)`` search calls plus
one LWA exchange (plus one RDT on Orders v0), taking ``(pages - burst) / (rate * speedup)`` seconds (the burst
is free, each further page waits for a refill).
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
from connectors.amazon import RetryPolicy, connector_for_account
from connectors.amazon.client import LwaCredentials
from connectors.amazon.endpoints import API_V0, API_V2026, USAGE_PLANS
from connectors.fake_amazon import FakeAmazon
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-version", choices=[API_V2026, API_V0], default=API_V2026)


def run(args: argparse.Namespace, ws: Workspace) -> SyncBenchResult:
    operation = "searchOrders" if args.api_version == API_V2026 else "getOrders"
    plan = USAGE_PLANS[operation]
    proc, base = start_fake(args.orders, args.speedup)
    try:
        seller = _get(f"{base}/_fake/seller")
        with ws.sessions() as session:
            account = MarketplaceAccount(
                tenant_id=ws.tenant_id,
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
            seal_credentials(session, keys=ws.keys, account=account, secrets=credentials.as_secrets())
            session.commit()
            connector = connector_for_account(
                session,
                keys=ws.keys,
                account=account,
                speedup=args.speedup,
                limiter=RateLimiter(USAGE_PLANS, speedup=args.speedup),
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

    pages = math.ceil(args.orders / PAGE)
    details = [
        f"api {args.api_version}, speedup {args.speedup:g}, {operation} {plan.rate}/s burst {plan.burst}",
        f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged",
        f"calls by operation: {json.dumps(stats['calls'])}; throttled {stats['throttled']}",
    ]
    if stats["validation_errors"] or stats["server_errors"]:
        details.append(f"fake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]}")
    return SyncBenchResult(
        orders=args.orders,
        calls=sum(stats["calls"].values()),
        min_calls=pages + 1 + (1 if args.api_version == API_V0 else 0),  # + LWA exchange (+ one RDT)
        seconds=seconds,
        min_seconds=max(0, pages - plan.burst) / (plan.rate * args.speedup),
        expected_ids=set(FakeAmazon(seed=SEED).generate_orders(args.orders)),  # same seed, same ids
        details=details,
    )
