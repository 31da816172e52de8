"""``python -m bench.sync --marketplace walmart``: 10,000 orders from the fake Walmart against its per-API limit.

The fake runs in its own process with an All orders limit (a bucket of N requests, refilled continuously at
N a minute, the shape of Walmart's documented 5000 a minute) and its refill multiplied by ``--speedup``;
the connector paces itself with the same figures. The least Walmart allows is ``ceil(orders / 200)``
``getAllOrders`` pages plus one token request, taking ``(pages - bucket) / refill`` seconds.

At the documented 5000 a minute that minimum is 0 s for any sync under a million orders (the bucket alone
holds 5000 pages), so the time ratio would be undefined (``nan``) and the run would time the vault's
writes, not the connector's pacing. The default is therefore a seller's limit that binds:
``--orders-per-minute 30 --speedup 1`` (a page every 2 s after a bucket of 30: 50 pages take at least
40 s, while storing a page takes ~0.3-1 s on a busy 2-core machine). ``--orders-per-minute 5000`` runs at
the documented limit (``time_vs_min=nan`` by construction; ``calls_vs_min`` and lost/duplicated still hold).
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
from connectors.fake_walmart import FakeWalmart
from connectors.ratelimit import RateLimiter, UsagePlan
from connectors.sync import sync_account
from connectors.walmart import RetryPolicy, WalmartCredentials, connector_for_account
from connectors.walmart.client import USAGE_PLANS
from connectors.walmart.connector import MAX_PAGE_SIZE
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount

SEED = 0
#: The default limit and speed-up: the limit, not the vault's writes, bounds the sync (see above).
ORDERS_PER_MINUTE = 30
SPEEDUP = 1.0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def start_fake(orders: int, speedup: float, per_minute: int | None) -> tuple[subprocess.Popen[str], str]:
    """The fake Walmart in a child process; returns it and its base URL."""
    limit = ("--orders-per-minute", str(per_minute)) if per_minute else ()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.fake_walmart",
            *("--port", "0", "--orders", str(orders)),
            *("--speedup", str(speedup), "--seed", str(SEED), *limit),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("API endpoint"):
            base = line.split()[-1]
        if line.startswith("Ctrl-C"):
            return proc, base
    raise SystemExit("the fake Walmart did not start")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--orders-per-minute",
        type=int,
        default=ORDERS_PER_MINUTE,
        help="All orders' limit (Walmart documents 5000 a minute; the default binds, see above)",
    )
    parser.set_defaults(speedup=SPEEDUP)


def run(args: argparse.Namespace, ws: Workspace) -> SyncBenchResult:
    documented = USAGE_PLANS["getAllOrders"]
    plan = (
        UsagePlan(rate=args.orders_per_minute / 60, burst=args.orders_per_minute)
        if args.orders_per_minute
        else documented
    )
    proc, base = start_fake(args.orders, args.speedup, args.orders_per_minute)
    try:
        seller = _get(f"{base}/_fake/seller")
        with ws.sessions() as session:
            account = MarketplaceAccount(
                tenant_id=ws.tenant_id,
                marketplace="walmart",
                name="bench",
                region="us",
                api_version="v3",
                marketplace_ids=["WALMART_US"],
                api_endpoint=base,
                token_endpoint=f"{base}/v3/token",
            )
            session.add(account)
            session.flush()
            credentials = WalmartCredentials(seller["client_id"], seller["client_secret"])
            seal_credentials(session, keys=ws.keys, account=account, secrets=credentials.as_secrets())
            session.commit()
            connector = connector_for_account(
                session,
                keys=ws.keys,
                account=account,
                speedup=args.speedup,
                limiter=RateLimiter({**USAGE_PLANS, "getAllOrders": plan}, speedup=args.speedup),
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

    pages = math.ceil(args.orders / MAX_PAGE_SIZE)
    details = [
        f"speedup {args.speedup:g}, getAllOrders {plan.burst}/min (bucket {plan.burst}, "
        f"{plan.rate * args.speedup:g}/s refilled), page {MAX_PAGE_SIZE}",
        f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged",
        f"calls by operation: {json.dumps(stats['calls'])}; throttled {stats['throttled']}",
    ]
    if stats["validation_errors"] or stats["server_errors"]:
        details.append(f"fake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]}")
    return SyncBenchResult(
        orders=args.orders,
        calls=sum(stats["calls"].values()),
        min_calls=pages + 1,  # + the token request
        seconds=seconds,
        min_seconds=max(0, pages - plan.burst) / (plan.rate * args.speedup),
        expected_ids=set(FakeWalmart(seed=SEED).generate_orders(args.orders)),  # same seed, same ids
        details=details,
    )
