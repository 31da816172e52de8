"""End to end on the production stack: gunicorn (4 workers, deploy/gunicorn.conf.py), PostgreSQL, Redis,
two Celery workers and the scheduler (``flask worker run`` / ``flask worker beat``), AWS KMS (moto's server)
and the fake marketplace over HTTP.

The story: the scheduler queues the account's first sync; the worker syncing it is killed with SIGKILL
mid-sync (its whole process group, as a lost host would be); the other worker gets the task again after the
visibility timeout and syncs the account completely. Then several warehouse clients release labels at once:
the per-client rate limit is shared by all gunicorn workers (Redis), and Redis is restarted in the middle —
requests fail closed (503) while it is down, and no label is ever released without its audit event.

Its own Redis (a subprocess on a free port, no persistence) and its own PostgreSQL schema: the machine's
shared servers are never stopped. Every process started here is stopped in ``finally`` blocks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeAmazon
from tests.support.amazon import add_amazon_account
from tests.support.servers import Database, MotoKms, free_port, require_postgres
from vault.audit import chain_for, verify_chain
from vault.clients import LABELS_ISSUE, create_client
from vault.keys import KeyManager
from vault.models import AuditEvent, MarketplaceAccount, Order, SyncState
from vault.records import OrderStatus
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(420)]

ORDERS = 1500
PAGE_DELAY = 0.6  # seconds the fake marketplace takes per searchOrders page: 15 pages, a ~9 s sync
CLIENT_LIMIT = 40  # labels per minute per client, shared by every gunicorn worker


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Processes:
    """Subprocesses of the test, each in its own session (process group), all stopped at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def kill_group(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str, timeout: float = 15) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        for proc in self.procs.values():  # any straggler of a group (a pool child)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs.values() if p.exists())


class OwnRedis:
    """A redis-server of this test alone (free port, no persistence), restartable on the same port."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.procs.start(
            "redis",
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            dict(os.environ),
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)

        def pong() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_for("redis to answer", pong, 10)
        client.close()

    def stop(self) -> None:
        self.procs.stop("redis")


@pytest.fixture
def stack(tmp_path: Path, moto_kms: MotoKms) -> Iterator[dict[str, Any]]:
    require_postgres()
    if not (BIN / "gunicorn").exists() or subprocess.run(["which", "redis-server"], capture_output=True).returncode:
        pytest.skip("gunicorn and redis-server are needed")
    procs = Processes(tmp_path)
    db = Database("postgresql", tmp_path)
    fake = FakeAmazon(speedup=200, seed=11).start()
    try:
        yield {"procs": procs, "db": db, "fake": fake, "kms": moto_kms, "tmp": tmp_path}
    finally:
        procs.stop_all()
        for name, log in procs.logs.items():  # shown by pytest when the test failed
            print(f"--- {name} (last 40 lines) ---", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")
        fake.stop()
        db.drop()


def _env(stack: dict[str, Any], redis_url: str, metrics_dir: Path) -> dict[str, str]:
    kms: MotoKms = stack["kms"]
    db: Database = stack["db"]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LABELVAULT_")},
        "PYTHONPATH": str(ROOT),
        "FLASK_APP": "wsgi:app",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LABELVAULT_ENV": "production",
        "LABELVAULT_SECRET_KEY": "e2e-" + "x" * 40,
        "LABELVAULT_INSTANCE_PATH": str(stack["tmp"] / "instance"),
        "LABELVAULT_DATABASE_URL": db.app_url,
        "LABELVAULT_REDIS_URL": redis_url,
        "LABELVAULT_KEY_PROVIDER": "aws-kms",
        "LABELVAULT_KMS_KEY_ID": kms.key_id,
        "LABELVAULT_KMS_REGION": kms.region,
        "LABELVAULT_KMS_ENDPOINT_URL": kms.endpoint,
        "LABELVAULT_GLOBAL_ALLOWLIST": "127.0.0.1/32",
        "LABELVAULT_RATE_LIMIT_CLIENT": f"{CLIENT_LIMIT}/minute",
        "LABELVAULT_RATE_LIMIT_IP": "100000/minute",
        "LABELVAULT_RATE_LIMIT_STRATEGY": "moving-window",
        "LABELVAULT_LABEL_REISSUE_CAP": "1",
        "LABELVAULT_TASK_VISIBILITY_TIMEOUT": "10",
        "LABELVAULT_WORKER_TICK_SECONDS": "1",
        "LABELVAULT_PURGE_INTERVAL_SECONDS": "2",  # cancelled orders synced mid-run are erased by the schedule
        "LABELVAULT_SYNC_SPEEDUP": str(stack["fake"].speedup),
        "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES": stack["fake"].base_url,  # the operator allows the fake
        "LABELVAULT_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "GUNICORN_WORKERS": "4",
        "GUNICORN_THREADS": "4",
    }


def test_production_stack_end_to_end(stack: dict[str, Any]) -> None:
    procs: Processes = stack["procs"]
    db: Database = stack["db"]
    fake: FakeAmazon = stack["fake"]
    kms: MotoKms = stack["kms"]
    redis = OwnRedis(procs)
    redis.start()
    port = free_port()
    env = _env(stack, redis.url, stack["tmp"] / "metrics")
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    base = f"http://127.0.0.1:{port}"

    # -- the world: a seller on KMS-wrapped keys, its Amazon account on the fake, four warehouse clients --
    fake.generate_orders(ORDERS)
    fake.inject_delay(PAGE_DELAY, count=1000, operation="searchOrders")
    keys = KeyManager(kms.provider())
    with Session(db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=keys, slug=f"e2e-{uuid.uuid4().hex[:6]}", name="E2E Seller", actor="test")
        account_id = add_amazon_account(s, keys, tenant, fake).id
        clients = {
            name: create_client(
                s, tenant=tenant, name=name, scopes=[LABELS_ISSUE], cidrs=["127.0.0.1"], actor="e2e"
            ).key
            for name in ("station-a", "station-b", "station-c", "station-d")
        }
        s.commit()

    # -- workers, scheduler, web -------------------------------------------------------------------------
    flask = [str(BIN / "python"), "-m", "flask"]
    for name in ("worker-1", "worker-2"):
        procs.start(name, [*flask, "worker", "run", "--concurrency", "1", "--name", f"{name}@e2e"], env)
    procs.start("beat", [*flask, "worker", "beat", "--schedule-file", str(stack["tmp"] / "beat")], env)
    procs.start("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py"], env)

    def stored() -> int:
        with Session(db.engine) as s:
            return s.scalar(select(func.count()).where(Order.account_id == account_id)) or 0

    def lease_owner() -> str | None:
        with Session(db.engine) as s:
            return s.scalar(select(SyncState.lease_owner).where(SyncState.account_id == account_id))

    # -- a worker dies mid-sync; the other one finishes the account ---------------------------------------
    owner = wait_for("the scheduled sync to store a few pages", lambda: stored() >= 200 and lease_owner(), 90)
    pid = int(owner.split(":")[1])
    victim = next(n for n in ("worker-1", "worker-2") if os.getsid(pid) == procs.procs[n].pid)
    survivor = "worker-2" if victim == "worker-1" else "worker-1"
    procs.kill_group(victim)
    at_kill = stored()
    assert at_kill < ORDERS, "the sync finished before the worker could be killed; raise PAGE_DELAY"

    def synced() -> bool:
        with Session(db.engine) as s:
            account = s.get(MarketplaceAccount, account_id)
            assert account is not None
            state = s.get(SyncState, account_id)
            done = bool(account.last_sync and account.last_sync.get("ok"))
            return done and state is not None and state.lease_owner is None  # the finishing run let go

    wait_for("another worker to finish the killed sync", synced, 120, interval=0.5)
    assert procs.procs[survivor].poll() is None
    with Session(db.engine) as s:
        ids = set(s.scalars(select(Order.external_order_id).where(Order.account_id == account_id)))
    assert ids == set(fake.orders()), "the account is not synced completely"

    # -- the web app is ready: database, Redis and KMS --------------------------------------------------------
    def ready() -> dict[str, Any] | None:
        try:
            r = httpx.get(base + "/readyz", timeout=5)
        except httpx.TransportError:
            return None
        return r.json() if r.status_code == 200 else None

    assert wait_for("gunicorn to be ready", ready, 60) == {
        "status": "ok",
        "database": "ok",
        "redis": "ok",
        "keys": "ok",
    }

    with Session(db.engine) as s:
        eligible = list(
            s.scalars(
                select(Order.external_order_id)
                .where(
                    Order.account_id == account_id,
                    Order.status.in_([OrderStatus.UNSHIPPED.value, OrderStatus.PARTIALLY_SHIPPED.value]),
                )
                .order_by(Order.external_order_id)
            )
        )
    assert len(eligible) >= 2 * CLIENT_LIMIT + 3 * 45, "not enough eligible orders for the test"
    orders = iter(eligible)
    responses: list[tuple[str, str, int]] = []  # (client, order id, status)
    lock = threading.Lock()

    def fetch(http: httpx.Client, client: str, order_id: str) -> int:
        try:
            r = http.get(f"{base}/v1/labels/amazon/{order_id}", headers={"Authorization": f"Bearer {clients[client]}"})
            status = r.status_code
            if status == 200:
                assert r.headers["Cache-Control"] == "no-store" and r.json()["order_ref"] == order_id
        except httpx.TransportError:
            status = -1
        with lock:
            responses.append((client, order_id, status))
        return status

    # -- one client floods from many threads: its limit holds across the 4 gunicorn workers ----------------
    flood = [next(orders) for _ in range(2 * CLIENT_LIMIT)]
    with httpx.Client(timeout=10) as http, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda o: fetch(http, "station-a", o), flood))
    assert statuses.count(200) == CLIENT_LIMIT and statuses.count(429) == CLIENT_LIMIT, statuses

    # -- three clients at once, Redis restarted in the middle -----------------------------------------------
    batches = {c: [next(orders) for _ in range(45)] for c in ("station-b", "station-c", "station-d")}
    restarted = threading.Event()

    def steady(client: str) -> list[int]:
        out = []
        with httpx.Client(timeout=10) as http:
            for order_id in batches[client]:
                out.append(fetch(http, client, order_id))
                time.sleep(0.1)
        return out

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(steady, c) for c in batches]
        time.sleep(1.5)
        redis.stop()
        time.sleep(1.5)
        redis.start()
        restarted.set()
        concurrent = [f.result(timeout=120) for f in futures]
    seen = {s for out in concurrent for s in out}
    assert seen <= {200, 503}, seen  # fail closed while Redis is down, nothing else
    assert 503 in seen, "no request saw Redis down: the restart came too late"
    assert all(out[-1] == 200 for out in concurrent), "the service did not recover after Redis came back"

    # -- no label released without its audit event ---------------------------------------------------------
    released = {(c, o) for c, o, st in responses if st == 200}
    with Session(db.engine) as s:
        events = s.execute(
            select(AuditEvent.actor, AuditEvent.order_ref).where(
                AuditEvent.tenant_id == tenant.id,
                AuditEvent.action == "label.release",
                AuditEvent.outcome == "released",
            )
        ).all()
        actors = {f"client:{k.split('_')[1]}": name for name, k in clients.items()}
        audited = {(actors[a], ref.split(":", 1)[1]) for a, ref in events}
        assert released == audited and len(events) == len(released)
        assert verify_chain(s, chain=chain_for(tenant.id)).ok
        # The flood's 40 refusals from one address raised one (rate-limited) alarm, audited without PII.
        alarms = s.scalars(select(AuditEvent).where(AuditEvent.action == "alarm.repeated_refusals")).all()
        assert len(alarms) == 1 and alarms[0].details["subject"] == "ip:127.0.0.1"

    # -- metrics: summed over the gunicorn workers ------------------------------------------------------------
    def gauge(text: str, name: str) -> float | None:
        return next((float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " ")), None)

    def drained() -> str | None:
        # The sync stored cancelled orders, due at once: the scheduled purge erases them within a few ticks.
        text = httpx.get(base + "/metrics", timeout=10).text
        return text if gauge(text, "labelvault_purge_backlog_orders") == 0.0 else None

    text = wait_for("the scheduled purge to empty the backlog", drained, 60, interval=0.5)
    total = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("labelvault_labels_released_total{")
    )
    assert total == len(released)
    assert f'labelvault_sync_lag_seconds{{account="{account_id}",tenant="{tenant.id}"}}' in text
    kms_calls = gauge(text, "labelvault_kms_calls_total")
    assert kms_calls is not None and kms_calls >= 1, f"KMS calls counted: {kms_calls}"

    # -- and nothing personal in any log of any process ---------------------------------------------------
    procs.stop_all()
    logs = procs.log_text()
    for needle in fake.buyer_pii_strings():
        assert needle not in logs, "buyer PII in a process log"
    lines = [ln for ln in logs.splitlines() if ln.startswith("{") and '"request_id"' in ln]
    assert lines and all(json.loads(ln)["request_id"] for ln in lines[:50])
