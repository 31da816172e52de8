"""Sync benchmark for TikTok Shop: orders from the fake TikTok Shop, against what its rate limits allow.

``python -m bench.sync --marketplace tiktok [--orders 10000] [--speedup 0.05]`` (bench/sync.py's runner protocol)

The fake runs in its own process with its rate limits (orders/search 10 requests a second per shop, burst
10) multiplied by ``--speedup``; the connector runs with the same factor. The account is connected first,
the way a seller connects one (the auth code traded for tokens, the shops listed), and the fake's counters
reset, so what is measured is the sync alone. The least the limits allow is ``ceil(orders / 100)`` searches
(the access token sealed at connect lasts seven days: no token exchange), taking ``(pages - burst) /
(rate * speedup)`` seconds, the burst counted as free. Storing an order (sealing its label, the upsert,
its retention deadline) costs ~10-15 ms on a shared 2-core machine, so at TikTok's own 10 pages a second
the run would time SQLite, not the connector: the default speed-up (0.05: half a page a second, about
Amazon's searchOrders pace in bench.sync) makes the platform's limit the bottleneck, which is what the
time ratio is about. Lost and duplicated orders are counted against the fake's own order ids.
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
from connectors.fake_tiktok.marketplace import RATE_LIMITS
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from connectors.tiktok import RetryPolicy, connector_for_account
from connectors.tiktok.accounts import connect_tiktok_account
from connectors.tiktok.endpoints import USAGE_PLANS
from vault.marketplace_accounts import parse_endpoint_overrides

SEED = 0
PAGE = 100
DEFAULT_SPEEDUP = 0.05


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str) -> None:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def start_fake(orders: int, speedup: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The fake TikTok Shop in a child process; returns it and what it printed (endpoint, app, auth code)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.fake_tiktok",
            *("--port", "0", "--orders", str(orders), "--platform-shipped-every", "5"),
            *("--speedup", str(speedup), "--seed", str(SEED)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    for line in proc.stdout:
        for label in ("Open API endpoint", "app key", "app secret", "auth code"):
            if line.startswith(label):
                printed[label] = line[len(label) :].split()[0]
        if line.startswith("Ctrl-C"):
            return proc, printed
    raise SystemExit("the fake TikTok Shop did not start")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # TikTok's own pace would time SQLite, not the connector (see above): half a page a second by default.
    parser.set_defaults(speedup=DEFAULT_SPEEDUP)


def run(args: argparse.Namespace, ws: Workspace) -> SyncBenchResult:
    """Sync ``args.orders`` orders of one shop from a fake in a child process into the workspace's vault."""
    orders, speedup = args.orders, args.speedup
    proc, printed = start_fake(orders, speedup)
    base = printed["Open API endpoint"]
    try:
        overrides = parse_endpoint_overrides(base)
        with ws.sessions() as session:
            account = connect_tiktok_account(
                session,
                keys=ws.keys,
                tenant_id=ws.tenant_id,
                name="bench",
                app_key=printed["app key"],
                app_secret=printed["app secret"],
                auth_code=printed["auth code"],
                api_endpoint=base,
                token_endpoint=base,
                endpoint_overrides=overrides,
                actor="bench",
            )
            session.commit()
            account_id = account.id
            connector = connector_for_account(
                session,
                keys=ws.keys,
                account=account,
                speedup=speedup,
                limiter=RateLimiter(USAGE_PLANS, speedup=speedup),
                retry=RetryPolicy(),
                endpoint_overrides=overrides,
            )
        _post(f"{base}/_fake/reset-stats")  # the connect's token exchange and shop list are not the sync's
        started = time.monotonic()
        summary = sync_account(ws.sessions, keys=ws.keys, account=account_id, connector=connector)
        seconds = time.monotonic() - started
        connector.close()
        stats = _get(f"{base}/_fake/stats")
        expected = set(_get(f"{base}/_fake/order-ids")["order_ids"])
    finally:
        proc.terminate()
        proc.wait(10)

    pages = max(1, math.ceil(orders / PAGE))
    rate, burst = RATE_LIMITS["orders.search"]
    details = [
        f"speedup {speedup:g}, orders/search {rate * speedup:g}/s burst {burst}",
        f"orders: {summary.orders_new} new, {summary.orders_updated} updated, {summary.orders_unchanged} unchanged",
        f"calls by operation: {json.dumps(stats['calls'])}; throttled {stats['throttled']}",
    ]
    if stats["validation_errors"] or stats["server_errors"]:
        details.append(f"fake problems: {stats['validation_errors'][:3]} {stats['server_errors'][:3]}")
    return SyncBenchResult(
        orders=orders,
        calls=sum(stats["calls"].values()),
        min_calls=pages,  # the access token sealed at connect lasts seven days: no exchange
        seconds=seconds,
        min_seconds=max(0, pages - burst) / (rate * speedup),
        expected_ids=expected,
        details=details,
    )
