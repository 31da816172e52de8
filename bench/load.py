"""A bounded load test of label releases on the production stack, on loopback, against a bare control.

``python -m bench.load [--seconds 60] [--concurrency 8] [--workers 4]``

The stack: gunicorn with deploy/gunicorn.conf.py (``--workers`` processes × 4 threads), PostgreSQL (a fresh
schema of ``LABELVAULT_TEST_POSTGRES_URL``, dropped at the end), a Redis of its own (a redis-server
subprocess on a free port: rate limits, alarm windows, the task queue), a Celery worker and the scheduler,
and AWS KMS (moto's server) as root key. Several sellers' warehouse clients (one API key each; each seller
has its own audit chain) request JSON labels of distinct orders, round-robin, from ``--concurrency``
threads for ``--seconds`` seconds (and at most ``--max-requests``); every release passes the whole
pipeline and is audited.

Then the same load for the same time against the bare control of bench/labels.py (``bare_app``: one route,
one query of the same order's plaintext copy, no allowlist, key, limit, audit or rendering), served by the
same gunicorn configuration.

Last line: ``RESULT load rps=N vs_plain=X p50_ms=A p99_ms=B errors=E`` — N our releases per second, X ours
over the control's, A and B our latency percentiles, E our failed requests (target: 0; X ≥ 0.5).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bench.labels import PLAIN_TABLE
from bench.schema import fresh_schema
from connectors.samples import sample_label
from tests.support.servers import MotoKms, free_port
from vault.clients import create_client
from vault.keys import KeyManager
from vault.models import MarketplaceAccount
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    """The processes of one run; all stopped (their whole process groups) by :meth:`stop`."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def seed(engine: Engine, keys: KeyManager, n_orders: int, n_tenants: int) -> tuple[list[list[str]], list[str]]:
    """``n_tenants`` sellers, each with ``n_orders`` sealed unshipped orders (plus the control's plaintext
    copies) and one warehouse client; returns each client's order ids and the clients' API keys."""
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    orders: list[list[str]] = []
    client_keys: list[str] = []
    with Session(engine) as s:
        s.execute(text(f"CREATE TABLE {PLAIN_TABLE} (order_id INTEGER PRIMARY KEY, plaintext TEXT)"))
        for t in range(n_tenants):
            tenant = create_tenant(
                s, keys=keys, slug=f"load-{t}-{os.urandom(3).hex()}", name=f"Load Seller {t}", actor="bench"
            )
            account = MarketplaceAccount(
                tenant_id=tenant.id, marketplace="amazon", name="JP", region="fe", api_version="2026-01-01",
                marketplace_ids=["A1VC38T7YXB528"], sync_interval_seconds=10**8,
            )  # fmt: skip
            s.add(account)
            s.flush()
            ids = []
            for i in range(n_orders):
                label = sample_label(i, "US")
                facts = OrderFacts("amazon", f"503-{t:02d}{i:05d}-0000000", OrderStatus.UNSHIPPED, t0, t0)
                order = store_order(s, keys=keys, account=account, facts=facts, label=label).order
                s.execute(
                    text(f"INSERT INTO {PLAIN_TABLE} (order_id, plaintext) VALUES (:id, :p)"),
                    {"id": order.id, "p": label.to_bytes().decode()},
                )
                ids.append(facts.external_order_id)
            orders.append(ids)
            client_keys.append(
                create_client(
                    s, tenant=tenant, name="station", scopes=["labels:issue"], cidrs=["127.0.0.1"], actor="bench"
                ).key
            )
        s.commit()
    return orders, client_keys


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    first_error: str = ""

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds

    def pct(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


def run_load(
    url: str, orders: list[list[str]], client_keys: list[str], *, seconds: float, concurrency: int, max_requests: int
) -> LoadResult:
    """``concurrency`` threads request labels round-robin over orders and clients, for ``seconds`` at most."""
    counter = iter(range(max_requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                c = i % len(client_keys)
                key, order_id = client_keys[c], orders[c][(i // len(client_keys)) % len(orders[c])]
                started = time.perf_counter()
                try:
                    r = http.get(f"/v1/labels/amazon/{order_id}", headers={"Authorization": f"Bearer {key}"})
                    ok, what = r.status_code == 200, f"HTTP {r.status_code}"
                except httpx.TransportError as exc:
                    ok, what = False, type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if not ok:
                        errors.append(what)

    # Warm-up (not timed): every worker process connects and caches its tenant key.
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(60):
            c = i % len(client_keys)
            http.get(f"/v1/labels/amazon/{orders[c][-1 - i]}", headers={"Authorization": f"Bearer {client_keys[c]}"})
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return LoadResult(len(latencies), len(errors), wall, latencies, errors[0] if errors else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of each run (bounded load)")
    ap.add_argument("--max-requests", type=int, default=500_000, help="upper bound of requests per run")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads")
    ap.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    ap.add_argument("--orders", type=int, default=1000, help="orders per seller")
    ap.add_argument("--tenants", type=int, default=4, help="sellers, each with one warehouse client")
    args = ap.parse_args()

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    kms = MotoKms()
    stack = Stack()
    tmp = Path(tempfile.mkdtemp(prefix="lv-load-"))
    try:
        redis_port = free_port()
        stack.start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no"], dict(os.environ))  # fmt: skip
        with fresh_schema() as (engine, db_url):
            orders, client_keys = seed(engine, KeyManager(kms.provider()), args.orders, args.tenants)
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("LABELVAULT_", "GUNICORN_"))},
                "PYTHONPATH": str(ROOT),
                "FLASK_APP": "wsgi:app",
                "LABELVAULT_ENV": "production",
                "LABELVAULT_SECRET_KEY": uuid.uuid4().hex * 2,
                "LABELVAULT_INSTANCE_PATH": str(tmp / "instance"),
                "LABELVAULT_DATABASE_URL": db_url,
                "LABELVAULT_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "LABELVAULT_KEY_PROVIDER": "aws-kms",
                "LABELVAULT_KMS_KEY_ID": kms.key_id,
                "LABELVAULT_KMS_REGION": kms.region,
                "LABELVAULT_KMS_ENDPOINT_URL": kms.endpoint,
                "LABELVAULT_GLOBAL_ALLOWLIST": "127.0.0.1/32",
                "LABELVAULT_LABEL_REISSUE_CAP": str(10**9),
                "LABELVAULT_RATE_LIMIT_IP": "10000000/minute",
                "LABELVAULT_RATE_LIMIT_CLIENT": "10000000/minute",
                "LABELVAULT_ALARM_RATE_MIN": str(10**9),
                "LABELVAULT_LOG_FORMAT": "json",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": str(args.workers),
            }
            flask = [str(BIN / "python"), "-m", "flask"]
            stack.start([*flask, "worker", "run", "--concurrency", "1"], env)
            stack.start([*flask, "worker", "beat", "--schedule-file", str(tmp / "beat")], env)
            ours_proc = stack.start([str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py"], env)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/healthz")
            ours = run_load(url, orders, client_keys, seconds=args.seconds, concurrency=args.concurrency,
                            max_requests=args.max_requests)  # fmt: skip
            print(
                f"ours   {ours.rps:8.1f} req/s  p50 {ours.pct(50):.1f} ms  p99 {ours.pct(99):.1f} ms  "
                f"{ours.requests} requests, {ours.errors} errors {ours.first_error}",
                flush=True,
            )
            os.killpg(ours_proc.pid, signal.SIGTERM)
            ours_proc.wait(timeout=30)

            bare_port = free_port()
            stack.start(
                [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "bench.labels:bare_app()"],
                {**env, "GUNICORN_BIND": f"127.0.0.1:{bare_port}"},
            )
            bare_url = f"http://127.0.0.1:{bare_port}"
            wait_ready(bare_url + "/nothing")
            bare = run_load(bare_url, orders, client_keys, seconds=args.seconds, concurrency=args.concurrency,
                            max_requests=args.max_requests)  # fmt: skip
            print(
                f"plain  {bare.rps:8.1f} req/s  p50 {bare.pct(50):.1f} ms  p99 {bare.pct(99):.1f} ms  "
                f"{bare.requests} requests, {bare.errors} errors {bare.first_error}",
                flush=True,
            )
            stack.stop()
    finally:
        stack.stop()
        kms.stop()
    print(
        f"RESULT load rps={ours.rps:.0f} vs_plain={ours.rps / bare.rps:.2f} p50_ms={ours.pct(50):.1f} "
        f"p99_ms={ours.pct(99):.1f} errors={ours.errors}"
    )


if __name__ == "__main__":
    main()
