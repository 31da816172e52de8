"""``python -m bench.sync --marketplace shopify``: orders from the fake Shopify against its cost bucket.

The fake runs in its own process with Shopify's standard plan (a 2,000-point bucket restoring 100 points/s)
and its restore rate multiplied by ``--speedup``; the connector runs with the same factor. The least the
platform allows: ``ceil(orders / page)`` queries (the page being the largest whose requested cost Shopify
accepts in one query, 110 orders at 992 points), and the time the bucket needs to let the last one run:
every query before it spends its actual cost, the last needs its whole requested cost in the bucket, the
bucket starts full, so ``(spent - last actual + requested - 2,000) / (100 * speedup)`` seconds.

Shopify's pace makes the fake's own work (executing and validating ~110 orders a query) part of every
call; it stays below the bucket's refill time only at modest speed-ups, hence this runner's default of 1
(Shopify's own pace).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from typing import Any

from bench.sync import SyncBenchResult, Workspace
from connectors.fake_shopify import FakeShopify, legacy_id
from connectors.shopify import RetryPolicy, connector_for_account
from connectors.shopify.pacing import STANDARD_MAXIMUM, STANDARD_RESTORE_RATE, CostPacer
from connectors.shopify.query import MAX_PAGE_SIZE, requested_cost
from connectors.shopify.tokens import ShopifyToken
from connectors.sync import sync_account
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount

SEED = 0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def start_fake(orders: int, speedup: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The fake Shopify in a child process; returns it and what it printed (endpoint, shop, token)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.fake_shopify",
            *("--port", "0", "--orders", str(orders)),
            *("--speedup", str(speedup), "--seed", str(SEED)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    for line in proc.stdout:
        if line.startswith("Ctrl-C"):
            return proc, printed
        key, _, value = line.rstrip().partition("  ")
        printed[key.strip()] = value.strip()
    raise SystemExit("the fake Shopify did not start")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(speedup=1.0)


def run(args: argparse.Namespace, ws: Workspace) -> SyncBenchResult:
    proc, printed = start_fake(args.orders, args.speedup)
    base = printed["GraphQL endpoint"].split("/admin/", 1)[0]
    try:
        with ws.sessions() as session:
            account = MarketplaceAccount(
                tenant_id=ws.tenant_id,
                marketplace="shopify",
                name="bench",
                region="global",
                api_version="2026-07",
                marketplace_ids=[printed["shop"]],
                api_endpoint=base,
            )
            session.add(account)
            session.flush()
            token = ShopifyToken(printed["admin API token"])
            seal_credentials(session, keys=ws.keys, account=account, secrets=token.as_secrets())
            session.commit()
            connector = connector_for_account(
                session,
                keys=ws.keys,
                account=account,
                speedup=args.speedup,
                pacer=CostPacer(speedup=args.speedup),
                retry=RetryPolicy(),
                endpoint_overrides=[base],
                initial_lookback=timedelta(days=30),
                settle_margin=timedelta(seconds=1),
            )
        started = time.monotonic()
        summary = sync_account(ws.sessions, keys=ws.keys, account=account.id, connector=connector)
        seconds = time.monotonic() - started
        stats = _get(f"{base}/_fake/stats")
    finally:
        proc.terminate()
        proc.wait(10)

    pages = max(1, math.ceil(args.orders / MAX_PAGE_SIZE))
    spent = int(stats["cost_spent"])
    rate = STANDARD_RESTORE_RATE * args.speedup
    last_actual = spent / pages  # the pages cost alike; the last is at most a full one
    min_seconds = max(0.0, spent - last_actual + requested_cost(MAX_PAGE_SIZE) - STANDARD_MAXIMUM) / rate
    details = [
        f"speedup {args.speedup:g}, standard plan: {STANDARD_MAXIMUM:g} points restored at {rate:g}/s; "
        f"page {MAX_PAGE_SIZE} orders, requested {requested_cost(MAX_PAGE_SIZE)} points",
        f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged",
        f"calls: {json.dumps(stats['calls'])}; throttled {stats['throttled']}; actual cost {spent} points",
    ]
    if stats["validation_errors"] or stats["server_errors"] or stats["unserved_fields"]:
        details.append(
            f"fake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]} {stats['unserved_fields']}"
        )
    expected = {str(legacy_id(g)) for g in FakeShopify(seed=SEED).generate_orders(args.orders)}  # same seed, same ids
    return SyncBenchResult(
        orders=args.orders,
        calls=sum(stats["calls"].values()),
        min_calls=pages,
        seconds=seconds,
        min_seconds=min_seconds,
        expected_ids=expected,
        details=details,
    )
