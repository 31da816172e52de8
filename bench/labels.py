"""Label JSON releases per second through the whole label API pipeline, under gunicorn on loopback.

Three servers, each ``gunicorn -w W`` on 127.0.0.1, run one after the other against the same database rows
with the same bounded load (``--requests`` GETs from ``--concurrency`` client threads):

- ours: the shipped app (``app:create_app()``): allowlist → IP limit → key → client CIDRs → client limit →
  scope → lookup → eligibility → reissue count → unseal → profile → audit append → render → commit;
- pipeline-plain (first control, built here, never a route of the shipped app): the very same app and
  pipeline, except that the label is read from a plaintext copy of the record instead of being unsealed,
  so ours / this one is the price of encryption alone;
- bare (second control, built here): a Flask route that reads the same order's plaintext record with one
  query and returns it as JSON: no allowlist, key, limit, audit or rendering.

``RESULT labels rps=N crypto_cost=X vs_plain=Y p99_ms=Z``: N = our releases per second, X = ours over the
first control's throughput (target ≥ 0.9), Y = ours over the bare route's (target ≥ 0.5), Z = our p99 latency.
Load goes to loopback only and is bounded by ``--requests``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from flask import Flask, Response, jsonify
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import vault.release
from app import create_app
from bench.schema import fresh_schema
from connectors.samples import sample_label
from vault.clients import create_client
from vault.db import make_engine, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order
from vault.orders import store_order
from vault.records import LabelRecord, OrderFacts, OrderStatus
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parent.parent
PLAIN_TABLE = "bench_plain_labels"


# -- the two controls (gunicorn imports these factories) --------------------------------------------


def pipeline_plain_app() -> Flask:
    """The shipped app with unsealing swapped for a plaintext read: the first control."""

    def plain_label(session: Session, *, keys: Any, order: Order) -> LabelRecord:
        row = session.execute(text(f"SELECT plaintext FROM {PLAIN_TABLE} WHERE order_id = :id"), {"id": order.id})
        return LabelRecord.from_bytes(row.scalar_one().encode())

    vault.release.unseal_label = plain_label  # type: ignore[assignment]
    return create_app()


def bare_app() -> Flask:
    """One route, one query, the plaintext record as JSON: the second control."""
    engine = make_engine(os.environ["LABELVAULT_DATABASE_URL"])
    app = Flask("bench_bare")
    query = text(
        f"SELECT o.external_order_id, p.plaintext FROM orders o JOIN {PLAIN_TABLE} p ON p.order_id = o.id "
        "WHERE o.marketplace = :m AND o.external_order_id = :o"
    )

    @app.get("/v1/labels/<marketplace>/<order_id>")
    def label(marketplace: str, order_id: str) -> Response:
        import json

        with engine.connect() as conn:
            row = conn.execute(query, {"m": marketplace, "o": order_id}).one()
        return jsonify(order_ref=row[0], marketplace=marketplace, ship_to=json.loads(row[1]))

    return app


# -- setup ------------------------------------------------------------------------------------------


def build_database(url: str, instance: Path, n_orders: int) -> tuple[list[str], str]:
    """Migrate, then one tenant with ``n_orders`` sealed orders (and their plaintext copies) and a client."""
    engine: Engine = make_engine(url)
    migrate(engine)
    keys = KeyManager(LocalKeyProvider(instance / "keyring.json"))
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with Session(engine) as s:
        s.execute(text(f"CREATE TABLE IF NOT EXISTS {PLAIN_TABLE} (order_id INTEGER PRIMARY KEY, plaintext TEXT)"))
        tenant = create_tenant(s, keys=keys, slug=f"bench-{os.urandom(3).hex()}", name="Bench Seller", actor="bench")
        account = MarketplaceAccount(
            tenant_id=tenant.id, marketplace="amazon", name="US", region="na", api_version="v0", marketplace_ids=["x"]
        )
        s.add(account)
        s.flush()
        ids = []
        for i in range(n_orders):
            label = sample_label(i, "US")
            facts = OrderFacts("amazon", f"111-{i:07d}-0000000", OrderStatus.UNSHIPPED, t0, t0)
            order = store_order(s, keys=keys, account=account, facts=facts, label=label).order
            s.execute(
                text(f"INSERT INTO {PLAIN_TABLE} (order_id, plaintext) VALUES (:id, :p)"),
                {"id": order.id, "p": label.to_bytes().decode()},
            )
            ids.append(facts.external_order_id)
        key = create_client(
            s, tenant=tenant, name="bench station", scopes=["labels:issue"], cidrs=["127.0.0.1"], actor="bench"
        ).key
        s.commit()
    engine.dispose()
    return ids, key


# -- load -------------------------------------------------------------------------------------------


class Server:
    def __init__(self, target: str, env: dict[str, str], workers: int) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                target,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/nothing", timeout=1)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_load(url: str, order_ids: list[str], key: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """Send ``requests`` label GETs from ``concurrency`` threads; returns (requests/second, latencies)."""
    headers = {"Authorization": f"Bearer {key}"}
    counter = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[int] = []

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                status = http.get(f"/v1/labels/amazon/{order_ids[i % len(order_ids)]}").status_code
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        errors.append(status)

    # Warm-up: every worker process imports, connects and caches its tenant key before timing starts.
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: httpx.get(f"{url}/v1/labels/amazon/{order_ids[i]}", headers=headers), range(40)))
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. HTTP {errors[0]}")
    return requests / wall, latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000, help="requests per server (bounded load)")
    ap.add_argument("--concurrency", type=int, default=4, help="client threads")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes per server")
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the three servers; the best of each counts")
    ap.add_argument(
        "--database-url", default="", help="default: a SQLite file in a temporary folder; PostgreSQL: a fresh schema"
    )
    ap.add_argument("--redis-url", default="", help="rate-limit store for ours and the first control")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lv-bench-") as tmp, contextlib.ExitStack() as stack:
        instance = Path(tmp) / "instance"
        instance.mkdir()
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if url.startswith("postgresql"):  # a schema of its own, dropped at the end: nothing left in the database
            url = stack.enter_context(fresh_schema(url))[1]
        order_ids, key = build_database(url, instance, args.orders)
        env = {
            "LABELVAULT_ENV": "development",
            "LABELVAULT_DATABASE_URL": url,
            "LABELVAULT_INSTANCE_PATH": str(instance),
            "LABELVAULT_LABEL_REISSUE_CAP": str(10**9),
            "LABELVAULT_RATE_LIMIT_IP": "1000000/minute",
            "LABELVAULT_RATE_LIMIT_CLIENT": "1000000/minute",
            "LABELVAULT_RATE_LIMIT_PREFIX": f"bench-{os.urandom(4).hex()}",
            **({"LABELVAULT_REDIS_URL": args.redis_url} if args.redis_url else {}),
        }
        targets = {
            "ours": "app:create_app()",
            "plain": "bench.labels:pipeline_plain_app()",
            "bare": "bench.labels:bare_app()",
        }
        best: dict[str, float] = {}
        our_latencies: list[float] = []
        for round_no in range(args.rounds):
            for name, target in targets.items():
                server = Server(target, env, args.workers)
                try:
                    rps, latencies = run_load(server.url, order_ids, key, args.requests, args.concurrency)
                finally:
                    server.stop()
                print(
                    f"round {round_no + 1} {name:6} {rps:8.1f} req/s  p50 {statistics.median(latencies) * 1000:.1f} ms"
                )
                if rps > best.get(name, 0.0):
                    best[name] = rps
                    if name == "ours":
                        our_latencies = latencies
    p99 = statistics.quantiles(our_latencies, n=100)[98] * 1000
    print(
        f"RESULT labels rps={best['ours']:.0f} crypto_cost={best['ours'] / best['plain']:.2f} "
        f"vs_plain={best['ours'] / best['bare']:.2f} p99_ms={p99:.1f}"
    )


if __name__ == "__main__":
    main()
