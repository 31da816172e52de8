"""Sync benchmark for TikTok Shop: orders from the fake TikTok Shop, against what its rate limits allow.

``python -m bench.sync --marketplace tiktok [--orders 10000] [--speedup 0.05]`` (or ``python -m bench.sync_tiktok``)

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
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connectors.fake_tiktok.marketplace import RATE_LIMITS
from connectors.ratelimit import RateLimiter
from connectors.sync import sync_account
from connectors.tiktok import RetryPolicy, connector_for_account
from connectors.tiktok.accounts import connect_tiktok_account
from connectors.tiktok.endpoints import USAGE_PLANS
from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.marketplace_accounts import parse_endpoint_overrides
from vault.models import Order
from vault.tenants import create_tenant

SEED = 0
PAGE = 100
DEFAULT_ORDERS = 10_000
DEFAULT_SPEEDUP = 0.05


@dataclass(frozen=True, slots=True)
class SyncBenchResult:
    """One benchmark run: what was made and spent against the least the platform's limits allow."""

    orders: int
    calls: int
    min_calls: int
    seconds: float
    min_seconds: float
    lost: int
    duplicated: int
    throttled: int
    detail: str

    def result_line(self) -> str:
        """The ``RESULT`` line every sync benchmark prints."""
        time_ratio = self.seconds / self.min_seconds if self.min_seconds else float("nan")
        return (
            f"RESULT sync marketplace=tiktok orders={self.orders} calls_vs_min={self.calls / self.min_calls:.3f} "
            f"time_vs_min={time_ratio:.3f} lost={self.lost} duplicated={self.duplicated}"
        )


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


def run(orders: int = DEFAULT_ORDERS, speedup: float = DEFAULT_SPEEDUP) -> SyncBenchResult:
    """Sync ``orders`` orders of one shop from a fake in a child process into a fresh SQLite vault."""
    proc, printed = start_fake(orders, speedup)
    base = printed["Open API endpoint"]
    try:
        work = Path(tempfile.mkdtemp(prefix="lv-bench-tiktok-"))
        engine = make_engine(f"sqlite:///{work / 'bench.db'}")
        migrate(engine)
        sessions = make_session_factory(engine)
        keys = KeyManager(LocalKeyProvider(work / "keyring.json"))
        overrides = parse_endpoint_overrides(base)
        with sessions() as session:
            tenant = create_tenant(session, keys=keys, slug="bench", name="Bench", actor="bench")
            account = connect_tiktok_account(
                session,
                keys=keys,
                tenant_id=tenant.id,
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
                keys=keys,
                account=account,
                speedup=speedup,
                limiter=RateLimiter(USAGE_PLANS, speedup=speedup),
                retry=RetryPolicy(),
                endpoint_overrides=overrides,
            )
        _post(f"{base}/_fake/reset-stats")
        started = time.monotonic()
        sync_account(sessions, keys=keys, account=account_id, connector=connector)
        seconds = time.monotonic() - started
        connector.close()
        stats = _get(f"{base}/_fake/stats")
        expected = set(_get(f"{base}/_fake/order-ids")["order_ids"])
    finally:
        proc.terminate()
        proc.wait(10)

    if stats["validation_errors"] or stats["server_errors"]:
        raise SystemExit(f"the fake served bodies off its schemas: {stats['validation_errors'][:3]}")
    pages = max(1, math.ceil(orders / PAGE))
    rate, burst = RATE_LIMITS["orders.search"]
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Order)) or 0
        stored = set(session.scalars(select(Order.external_order_id)))
    return SyncBenchResult(
        orders=orders,
        calls=sum(stats["calls"].values()),
        min_calls=pages,
        seconds=seconds,
        min_seconds=max(0, pages - burst) / (rate * speedup),
        lost=len(expected - stored),
        duplicated=rows - len(stored) + len(stored - expected),
        throttled=sum(stats["throttled"].values()),
        detail=f"calls {json.dumps(stats['calls'])}, orders/search {rate * speedup:g}/s burst {burst}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_tiktok", description=__doc__)
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS)
    parser.add_argument("--speedup", type=float, default=DEFAULT_SPEEDUP)
    args = parser.parse_args(argv)
    result = run(args.orders, args.speedup)
    print(f"{result.detail}; throttled {result.throttled}")
    print(f"time: {result.seconds:.2f} s, minimum {result.min_seconds:.2f} s")
    print(f"calls: {result.calls}, minimum {result.min_calls}")
    print(result.result_line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
