"""Fleet benchmark: how many marketplace accounts one worker process keeps fresh, on the real task queue.

``python -m bench.fleet [--accounts 2000] [--marketplaces amazon] [--speedup 1] [--concurrency 64]``

The stack: PostgreSQL (a database of its own, ``lv_fleet_<pid>`` on the server of
``LABELVAULT_TEST_POSTGRES_URL``, dropped at the end), Redis (``--redis``, default DB 9 of the local server,
flushed before and after: use a DB nobody else does), one Celery worker process (``flask worker run --pool
threads``) and the scheduler (``flask worker beat``), and each platform's fake in a child process with the
platform's documented rate limits times ``--speedup`` and ``--latency`` seconds per call divided by it.

Each account is a seller of its own at the fake (its own credentials and rate-limit buckets) with a few
orders, and gets about ``--new-orders`` new orders per sync interval while the bench runs. The accounts'
``sync_interval_seconds`` is ``--interval`` (default 240 s: a sync that becomes due waits for the next tick,
the queue and the marketplace, and must still land within the 5 minutes) divided by the speed-up.

Measured, in this order:

1. the sequential loop: ``--sequential`` accounts of their own (same fake, same latency, same limits) synced
   one after another in one thread of this process with the worker's own code (``app.worker.run_sync``),
   twice: seconds per first sync and per next sync. These accounts are then removed: the worker never
   sees them.
2. the worker: started with every fleet account due at once (never synced): the first round, all accounts
   synced as fast as the worker goes; then ``--rounds`` sync intervals of steady state, in which the oldest
   successful sync of any account is tracked (polled every second); then the warm round: every account's
   last sync moved back by its interval, so all are due at once, synced as fast as the worker goes.

``fresh_within_s``: the oldest an account's last successful sync got in the steady state, in platform
seconds (wall seconds times the speed-up): the fleet is fresh within 5 minutes if it is ≤ 300.
``cpu_ms_per_account_sync``: the worker process's CPU time (user + system, from /proc, after start-up) per
sync it ran, in wall milliseconds (not scaled). ``vs_sequential``: how many times faster one worker process
gets through the same accounts' syncs than one sync after another, in the steady state (an account's next
sync: its connector kept, its new orders stored): the sequential loop's seconds per next sync times the
accounts, over the worker's warm round (every account made due at once after the steady state). The same
ratio for first syncs (token exchange, 30 days of orders; the first round) is printed before the RESULT.

Last line: ``RESULT fleet accounts=N workers=1 fresh_within_s=… cpu_ms_per_account_sync=… vs_sequential=…``
(targets: ≥ 2,000 accounts all fresh within 300 s, vs_sequential ≥ 20).

Platforms: :data:`PLATFORMS` has one :class:`FleetPlatform` per marketplace code: how to start its fake,
add accounts to it and to the vault, and give an account a new order: Amazon (a selling partner per
account), Shopify (a shop with a custom app's Admin API access token per account: each its own cost bucket)
and eBay (a consenting seller per account, all under the fake's one app and its daily quotas).
``--marketplaces amazon,shopify,ebay`` spreads the accounts round-robin over them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
from celery import Celery
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.services import Services
from app.settings import Settings
from app.worker import ConnectorCache, run_sync
from connectors.amazon import API_V2026, LwaCredentials
from connectors.ebay import EbayCredentials
from connectors.shopify import API_VERSION as SHOPIFY_API_VERSION
from connectors.shopify.tokens import ShopifyToken
from tests.support.servers import POSTGRES_URL
from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.marketplace_accounts import seal_credentials
from vault.models import MarketplaceAccount, utcnow
from vault.tenants import create_tenant

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FRESH_TARGET = 300.0  # platform seconds: "fresh within 5 minutes"


# -- the platforms -------------------------------------------------------------------------------------------


class Fake(Protocol):
    """One platform's fake, running in a child process, as the bench drives it."""

    #: The origins the operator must allow (LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES) for its accounts.
    origins: tuple[str, ...]
    #: The fake's process (its CPU is the machine's too: the bench reports it beside the worker's).
    pid: int

    def add_accounts(self, session: Session, keys: KeyManager, tenant_id: int, names: Sequence[str]) -> list[int]:
        """Create one seller (shop, user) per name at the fake, with a few orders, and its stored, sealed
        account in the vault (not committed); the accounts' ids, in order."""
        ...

    def new_order(self, account_index: int) -> None:
        """Give the ``account_index``-th account added a new order (placed now)."""
        ...

    def stats(self) -> dict[str, Any]:
        """Calls per operation, throttled calls and the fake's own problems (schema violations, 500s)."""
        ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FleetPlatform:
    """What the bench needs of a platform: ``start(speedup, latency, orders_per_account) -> Fake``."""

    code: str
    start: Callable[[float, float, int], Fake]


def _start_child(argv: list[str], ready: str) -> tuple[subprocess.Popen[str], list[str]]:
    """A fake's CLI in a child process; returns it and its start-up lines up to the one starting ``ready``."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith(ready):
            return proc, lines
    raise SystemExit(f"the fake did not start: {' '.join(argv)}")


def _stop_child(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class ChildFake:
    """What every platform's fake in a child process shares: its CLI started, its ``/_fake`` control API."""

    def __init__(self, module: str, speedup: float, latency: float, endpoint_line: str) -> None:
        self.proc, lines = _start_child(
            [
                sys.executable,
                "-m",
                module,
                *("--port", "0", "--orders", "0", "--speedup", repr(speedup), "--latency", repr(latency)),
            ],
            "Ctrl-C",
        )
        # Every fake's CLI prints its control API as <base>/_fake/stats, and its API endpoint on ``endpoint_line``.
        self.base = next(line.split()[-1] for line in lines if line.startswith("control API")).removesuffix(
            "/_fake/stats"
        )
        self.endpoint = next(line.split()[-1] for line in lines if line.startswith(endpoint_line))
        self.origins: tuple[str, ...] = (self.base,)
        self.pid = self.proc.pid
        self.control = httpx.Client(base_url=f"{self.base}/_fake", timeout=30)
        self._lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            found: dict[str, Any] = self.control.get("/stats").json()
        return found

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        with self._lock:
            answer = self.control.post(path, json=body)
        if answer.status_code >= 300:
            raise SystemExit(f"the fake refused {path}: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def stop(self) -> None:
        self.control.close()
        _stop_child(self.proc)


def _just_now() -> str:
    """A start for one generated order: it is placed (and last updated) within the second before now."""
    return (datetime.now(UTC) - timedelta(seconds=1)).isoformat()


class AmazonFake(ChildFake):
    """The fake Amazon (connectors.fake_amazon) in a child process, one selling partner per account."""

    def __init__(self, speedup: float, latency: float, orders_per_account: int) -> None:
        super().__init__("connectors.fake_amazon", speedup, latency, "SP-API endpoint")
        self.orders_per_account = orders_per_account
        self.sellers: list[str] = []

    def add_accounts(self, session: Session, keys: KeyManager, tenant_id: int, names: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for name in names:
            spid = "A" + uuid.uuid4().hex[:13].upper()
            seller = self._post("/sellers", {"selling_partner_id": spid, "marketplace_ids": ["ATVPDKIKX0DER"]})
            if self.orders_per_account:
                self._post("/orders", {"n": self.orders_per_account, "seller": spid})
            account = MarketplaceAccount(
                tenant_id=tenant_id,
                marketplace="amazon",
                name=name,
                region="na",
                api_version=API_V2026,
                marketplace_ids=seller["marketplace_ids"],
                api_endpoint=self.base,
                token_endpoint=f"{self.base}/auth/o2/token",
            )
            session.add(account)
            session.flush()
            credentials = LwaCredentials(seller["client_id"], seller["client_secret"], seller["refresh_token"])
            seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
            self.sellers.append(spid)
            ids.append(account.id)
        return ids

    def new_order(self, account_index: int) -> None:
        self._post("/orders", {"n": 1, "seller": self.sellers[account_index], "start": _just_now()})


class ShopifyFake(ChildFake):
    """The fake Shopify (connectors.fake_shopify) in a child process: one shop per account, each with a custom
    app's Admin API access token (its own cost bucket, as every app on every shop has at Shopify)."""

    def __init__(self, speedup: float, latency: float, orders_per_account: int) -> None:
        super().__init__("connectors.fake_shopify", speedup, latency, "GraphQL endpoint")
        self.orders_per_account = orders_per_account
        self.shops: list[str] = []

    def add_accounts(self, session: Session, keys: KeyManager, tenant_id: int, names: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for name in names:
            domain = f"fleet-{uuid.uuid4().hex[:12]}.myshopify.com"
            shop = self._post("/shops", {"domain": domain, "orders": self.orders_per_account})
            account = MarketplaceAccount(
                tenant_id=tenant_id,
                marketplace="shopify",
                name=name,
                region="global",
                api_version=SHOPIFY_API_VERSION,
                marketplace_ids=[shop["domain"]],
                api_endpoint=self.base,
            )
            session.add(account)
            session.flush()
            token = ShopifyToken(shop["token"])
            seal_credentials(session, keys=keys, account=account, secrets=token.as_secrets())
            self.shops.append(shop["domain"])
            ids.append(account.id)
        return ids

    def new_order(self, account_index: int) -> None:
        self._post("/orders", {"n": 1, "shop": self.shops[account_index], "start": _just_now()})


class EbayFake(ChildFake):
    """The fake eBay (connectors.fake_ebay) in a child process: one consenting seller (refresh token good for
    eBay's 18 months) per account, all under the fake's one app, whose daily quotas they share."""

    def __init__(self, speedup: float, latency: float, orders_per_account: int) -> None:
        super().__init__("connectors.fake_ebay", speedup, latency, "token URL")
        self.orders_per_account = orders_per_account
        self.sellers: list[str] = []

    def add_accounts(self, session: Session, keys: KeyManager, tenant_id: int, names: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for name in names:
            username = f"fleet_{uuid.uuid4().hex[:12]}"
            seller = self._post(
                "/sellers", {"username": username, "marketplace_ids": ["EBAY_US"], "orders": self.orders_per_account}
            )
            account = MarketplaceAccount(
                tenant_id=tenant_id,
                marketplace="ebay",
                name=name,
                region="global",
                api_version="v1",
                marketplace_ids=seller["marketplace_ids"],
                api_endpoint=self.base,
                token_endpoint=self.endpoint,
                grant_expires_at=datetime.fromisoformat(seller["refresh_token_expires_at"]),
            )
            session.add(account)
            session.flush()
            credentials = EbayCredentials(
                seller["client_id"], seller["client_secret"], seller["ru_name"], seller["refresh_token"]
            )
            seal_credentials(session, keys=keys, account=account, secrets=credentials.as_secrets())
            self.sellers.append(seller["username"])
            ids.append(account.id)
        return ids

    def new_order(self, account_index: int) -> None:
        self._post("/orders", {"n": 1, "seller": self.sellers[account_index], "start": _just_now()})


def start_amazon(speedup: float, latency: float, orders_per_account: int) -> Fake:
    """The fake Amazon with its usage plans times ``speedup`` and ``latency`` wall seconds per call."""
    return AmazonFake(speedup, latency, orders_per_account)


def start_shopify(speedup: float, latency: float, orders_per_account: int) -> Fake:
    """The fake Shopify with every bucket's restore rate times ``speedup`` and ``latency`` per call."""
    return ShopifyFake(speedup, latency, orders_per_account)


def start_ebay(speedup: float, latency: float, orders_per_account: int) -> Fake:
    """The fake eBay with its quotas' day divided by ``speedup`` and ``latency`` per call."""
    return EbayFake(speedup, latency, orders_per_account)


#: One entry per marketplace (docs/fleet.md, "Other marketplaces": a fake CLI with ``--latency`` and
#: ``--speedup``, sellers added over its control API, credentials sealed as the platform's own say).
PLATFORMS: dict[str, FleetPlatform] = {
    "amazon": FleetPlatform(code="amazon", start=start_amazon),
    "shopify": FleetPlatform(code="shopify", start=start_shopify),
    "ebay": FleetPlatform(code="ebay", start=start_ebay),
}


# -- the stack -----------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """The database, Redis, keys and the child processes of one run; everything is undone by :meth:`close`."""

    tmp: Path
    database_url: str
    redis_url: str
    keys: KeyManager
    tenant_id: int
    fakes: dict[str, Fake] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)

    def env(self, speedup: float, interval: float, concurrency: int) -> dict[str, str]:
        """The worker's and the scheduler's environment (settings as an operator would set them)."""
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("LABELVAULT_")},
            "PYTHONPATH": str(ROOT),
            "FLASK_APP": "wsgi",
            "LABELVAULT_ENV": "development",
            "LABELVAULT_SECRET_KEY": "fleet-" + "x" * 40,
            "LABELVAULT_INSTANCE_PATH": str(self.tmp / "instance"),
            "LABELVAULT_DATABASE_URL": self.database_url,
            "LABELVAULT_DATABASE_POOL_SIZE": str(concurrency),
            "LABELVAULT_DATABASE_MAX_OVERFLOW": "4",
            "LABELVAULT_KEYRING_PATH": str(self.tmp / "keyring.json"),
            "LABELVAULT_REDIS_URL": self.redis_url,
            "LABELVAULT_RATE_LIMIT_PREFIX": f"lv-fleet-{os.getpid()}",
            "LABELVAULT_WORKER_TICK_SECONDS": f"{max(0.5, interval / 40):g}",
            "LABELVAULT_SYNC_SPEEDUP": repr(speedup),
            "LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES": ",".join(o for f in self.fakes.values() for o in f.origins),
            "LABELVAULT_LOG_FORMAT": "json",
        }

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        self.logs.append(log)
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


@contextlib.contextmanager
def stack(redis_url: str) -> Iterator[Stack]:
    """A fresh PostgreSQL database and a flushed Redis DB for one run; both removed at the end."""
    admin_url = make_url(POSTGRES_URL)
    name = f"lv_fleet_{os.getpid()}"
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    _flush_redis(redis_url)
    engine = make_engine(database_url)
    with tempfile.TemporaryDirectory(prefix="lv-fleet-") as tmp_name:
        tmp = Path(tmp_name)
        st: Stack | None = None
        try:
            migrate(engine)
            keys = KeyManager(LocalKeyProvider(tmp / "keyring.json"))
            with Session(engine) as session:
                tenant = create_tenant(session, keys=keys, slug="fleet", name="Fleet", actor="bench")
                session.commit()
                tenant_id = tenant.id
            st = Stack(tmp=tmp, database_url=database_url, redis_url=redis_url, keys=keys, tenant_id=tenant_id)
            yield st
        finally:
            if st is not None:
                for proc_name in list(st.procs):
                    st.stop(proc_name)
                for fake in st.fakes.values():
                    fake.stop()
                for log in st.logs:
                    log.close()
            engine.dispose()
            _flush_redis(redis_url)
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


# -- measuring -----------------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """A process's CPU seconds so far (user + system, its reaped children included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime (fields 14-17)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Fleet:
    """Every fleet account's successful syncs as the bench saw them (polled from the database)."""

    ids: list[int]
    started: float  # wall clock (time.time) when the accounts were created: the age of a never-synced one
    last: dict[int, datetime] = field(default_factory=dict)
    failed_at: dict[int, datetime] = field(default_factory=dict)
    began: dict[int, float] = field(default_factory=dict)  # when each account's last seen sync started
    syncs: int = 0
    failures: int = 0
    first_began: float | None = None  # when the first sync of the first round started
    first_round_done: float | None = None  # when the last account's first sync was seen

    def poll(self, session: Session) -> tuple[float, int]:
        """Read every account's last sync; returns the oldest successful one's age (s) and how many never had one."""
        rows = session.execute(
            select(MarketplaceAccount.id, MarketplaceAccount.last_sync).where(MarketplaceAccount.id.in_(self.ids))
        ).all()
        now = time.time()
        oldest = 0.0
        never = 0
        for account_id, last in rows:
            finished = _finished(last)
            if finished is not None and last and last.get("ok"):
                if finished != self.last.get(account_id):
                    began = finished.timestamp() - float(last.get("seconds") or 0.0)
                    if account_id not in self.last:  # its first sync: when did it start?
                        self.first_began = min(self.first_began or began, began)
                    self.began[account_id] = began
                    self.syncs += 1
                    self.last[account_id] = finished
            elif finished is not None and finished != self.failed_at.get(account_id):
                self.failures += 1
                self.failed_at[account_id] = finished
            seen = self.last.get(account_id)
            if seen is None:
                never += 1
                oldest = max(oldest, now - self.started)
            else:
                oldest = max(oldest, now - seen.timestamp())
        if never == 0 and self.first_round_done is None:
            self.first_round_done = max(seen.timestamp() for seen in self.last.values())
        return oldest, never

    def round_since(self, t0: float) -> float | None:
        """If every account has synced since ``t0``: from the first of those syncs' start to the last's end."""
        if any(self.last[i].timestamp() <= t0 for i in self.ids):
            return None
        return max(self.last[i].timestamp() for i in self.ids) - min(self.began[i] for i in self.ids)


def _finished(last: dict[str, Any] | None) -> datetime | None:
    if not last or not last.get("finished_at"):
        return None
    return datetime.fromisoformat(str(last["finished_at"]))


class Churn:
    """New orders at the fakes while the worker runs: about ``per_interval`` per account per sync interval."""

    def __init__(self, fakes: list[tuple[Fake, int]], per_interval: float, interval: float) -> None:
        self.fakes = fakes
        self.rate = per_interval * sum(n for _, n in fakes) / interval  # orders per wall second
        self.stopping = threading.Event()
        self.orders = 0
        self.thread = threading.Thread(target=self._run, name="fleet-churn", daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        started = time.monotonic()
        while not self.stopping.wait(0.2):
            due = int((time.monotonic() - started) * self.rate) - self.orders
            for _ in range(max(0, due)):
                fake, n = rng.choice(self.fakes)
                fake.new_order(rng.randrange(n))
                self.orders += 1

    def __enter__(self) -> Churn:
        if self.rate > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(30)


@dataclass(frozen=True, slots=True)
class Sequential:
    """The sequential loop's seconds per sync: first syncs (cold) and the next ones (warm), and failures."""

    cold: float
    warm: float
    failures: int


def sequential(st: Stack, platforms: list[FleetPlatform], count: int, speedup: float) -> Sequential:
    """Sync ``count`` accounts of their own one after another in this thread, twice: seconds per sync.

    The worker's own code path (``run_sync`` with the same settings and a :class:`ConnectorCache`, as each
    worker process has), one thread, no pool, no overlap. The first pass is every account's first sync
    (token exchange, 30 days of orders), the second pass its next one, as in the worker's steady state. The
    accounts are removed afterwards: the worker must not sync them.
    """
    engine = make_engine(st.database_url)
    sessions = make_session_factory(engine)
    ids: list[int] = []
    with sessions() as session:
        for i in range(count):
            platform = platforms[i % len(platforms)]
            name = f"sequential-{uuid.uuid4().hex[:8]}"
            ids += st.fakes[platform.code].add_accounts(session, st.keys, st.tenant_id, [name])
        session.commit()
    settings = Settings(
        env="development",
        database_url=st.database_url,
        instance_path=st.tmp / "instance",
        keyring_path=st.tmp / "keyring.json",
        sync_speedup=speedup,
        marketplace_endpoint_overrides=",".join(o for f in st.fakes.values() for o in f.origins),
    )
    services = Services(settings=settings, engine=engine, sessions=sessions)
    connectors = ConnectorCache()
    failures = 0
    passes: list[float] = []
    for _ in range(2):
        started = time.monotonic()
        for account_id in ids:
            try:
                if run_sync(services, account_id, connectors=connectors) is None:
                    failures += 1
            except Exception as exc:
                print(f"sequential sync of account {account_id} failed: {type(exc).__name__}", file=sys.stderr)
                failures += 1
        passes.append((time.monotonic() - started) / max(1, count))
    connectors.clear()
    with sessions() as session:
        for account_id in ids:
            account = session.get(MarketplaceAccount, account_id)
            assert account is not None
            account.removed_at = utcnow()
        session.commit()
    engine.dispose()
    return Sequential(cold=passes[0], warm=passes[1], failures=failures)


def make_all_due(session: Session, fleet: Fleet, interval: float) -> float:
    """Move every account's last sync back by its interval, so all are due at once; returns when (wall).

    The fleet's record follows, so the move is not counted as a sync; a sync finishing meanwhile overwrites
    the moved time with its own, and counts.
    """
    now = time.time()
    for account in session.scalars(select(MarketplaceAccount).where(MarketplaceAccount.id.in_(fleet.ids))):
        last = dict(account.last_sync or {})
        finished = _finished(last)
        if finished is not None and last.get("ok"):
            moved = finished - timedelta(seconds=interval)
            last["finished_at"] = moved.isoformat()
            account.last_sync = last
            fleet.last[account.id] = moved
    session.commit()
    return now


def _wait_for_worker(st: Stack, timeout: float = 120) -> None:
    """Until the worker answers a ping on the broker (it has started and consumes the queue)."""
    client = Celery("fleet-bench", broker=st.redis_url, set_as_current=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            proc = st.procs["worker"]
            if proc.poll() is not None:
                raise SystemExit(f"the worker exited ({proc.returncode}):\n{st.tail('worker')}")
            if client.control.ping(timeout=1.0):
                return
        raise SystemExit(f"the worker did not start in {timeout:g} s:\n{st.tail('worker')}")
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=2000, help="fleet accounts (spread over the marketplaces)")
    ap.add_argument("--marketplaces", default="amazon", help=f"comma-separated, among {', '.join(PLATFORMS)}")
    ap.add_argument("--speedup", type=float, default=1.0, help="divide latency and interval, multiply rate limits")
    ap.add_argument("--latency", type=float, default=0.150, help="platform seconds per call at the fake")
    ap.add_argument("--interval", type=float, default=240.0, help="accounts' sync interval, platform seconds")
    ap.add_argument("--rounds", type=float, default=2.0, help="steady-state sync intervals measured")
    ap.add_argument("--concurrency", type=int, default=64, help="the worker's threads")
    ap.add_argument("--sequential", type=int, default=100, help="accounts synced by the sequential loop")
    ap.add_argument("--orders", type=int, default=3, help="orders per account at the start")
    ap.add_argument("--new-orders", type=float, default=1.0, help="new orders per account per sync interval")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/9", help="a Redis DB of the bench's own")
    args = ap.parse_args(argv)
    codes = [c.strip() for c in args.marketplaces.split(",") if c.strip()]
    unknown = [c for c in codes if c not in PLATFORMS]
    if unknown or not codes:
        ap.error(f"--marketplaces: unknown {', '.join(unknown) or '(none)'}; known: {', '.join(PLATFORMS)}")
    if args.accounts < 1 or args.speedup <= 0 or args.concurrency < 1 or args.sequential < 1:
        ap.error("--accounts, --speedup, --concurrency and --sequential must be positive")
    platforms = [PLATFORMS[c] for c in codes]
    interval = args.interval / args.speedup  # wall seconds
    if round(interval) < 1:
        ap.error("--interval / --speedup must be at least 1 s (sync_interval_seconds is whole seconds)")
    interval = float(round(interval))

    with stack(args.redis) as st:
        for platform in platforms:
            st.fakes[platform.code] = platform.start(args.speedup, args.latency / args.speedup, args.orders)
        print(
            f"fakes: {', '.join(codes)}; latency {args.latency * 1000:g} ms / {args.speedup:g}, "
            f"rate limits x {args.speedup:g}; interval {interval:g} s wall"
        )

        seq = sequential(st, platforms, args.sequential, args.speedup)
        print(
            f"sequential: {args.sequential} accounts, {seq.cold * 1000:.1f} ms per first sync, "
            f"{seq.warm * 1000:.1f} ms per next sync, {seq.failures} failed"
        )

        # The fleet: accounts created in batches, committed together, all due at once.
        engine = make_engine(st.database_url)
        sessions = make_session_factory(engine)
        ids: list[int] = []
        counts: dict[str, int] = dict.fromkeys(codes, 0)
        created = time.monotonic()
        with sessions() as session:
            for i in range(args.accounts):
                platform = platforms[i % len(platforms)]
                ids += st.fakes[platform.code].add_accounts(session, st.keys, st.tenant_id, [f"fleet-{i}"])
                counts[platform.code] += 1
            session.execute(
                update(MarketplaceAccount)
                .where(MarketplaceAccount.id.in_(ids))
                .values(sync_interval_seconds=int(interval))
            )
            session.commit()
        print(f"fleet: {args.accounts} accounts ({json.dumps(counts)}) in {time.monotonic() - created:.0f} s")

        env = st.env(args.speedup, interval, args.concurrency)
        flask = [str(BIN / "python"), "-m", "flask"]
        worker = st.start(
            "worker",
            [*flask, "worker", "run", "--pool", "threads", "--concurrency", str(args.concurrency),
             "--loglevel", "WARNING", "--name", f"fleet-{os.getpid()}@bench"],
            env,
        )  # fmt: skip
        _wait_for_worker(st)
        cpu_start = process_cpu(worker.pid)
        fakes_cpu_start = sum(process_cpu(f.pid) for f in st.fakes.values())
        fleet = Fleet(ids=ids, started=time.time())
        st.start("beat", [*flask, "worker", "beat", "--schedule-file", str(st.tmp / "beat")], env)
        fakes = [(st.fakes[c], counts[c]) for c in codes if counts[c]]
        worst_steady = 0.0
        first_round_s: float | None = None
        began = time.time()
        steady_until: float | None = None
        with Churn(fakes, args.new_orders, interval) as churn:
            while True:
                time.sleep(1.0)
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited ({worker.returncode}):\n{st.tail('worker')}")
                with sessions() as session:
                    oldest, never = fleet.poll(session)
                now = time.time()
                if fleet.first_round_done is not None and steady_until is None:
                    assert fleet.first_began is not None
                    first_round_s = fleet.first_round_done - fleet.first_began
                    steady_until = now + args.rounds * interval
                    print(f"first round: {args.accounts} accounts synced in {first_round_s:.1f} s")
                elif steady_until is not None:
                    worst_steady = max(worst_steady, oldest)
                    if now >= steady_until:
                        break
                elif now - began > max(3 * interval, 600):
                    raise SystemExit(f"the first round did not finish: {never} accounts never synced")
            # The warm round: every account due at once again, its connector kept from its last sync.
            cpu_steady = process_cpu(worker.pid) - cpu_start
            syncs_steady = fleet.syncs
            with sessions() as session:
                t0 = make_all_due(session, fleet, interval)
            warm_round_s: float | None = None
            while warm_round_s is None:
                time.sleep(1.0)
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited ({worker.returncode}):\n{st.tail('worker')}")
                with sessions() as session:
                    fleet.poll(session)
                warm_round_s = fleet.round_since(t0)
                if warm_round_s is None and time.time() - t0 > max(3 * interval, 600):
                    raise SystemExit("the warm round did not finish")
            print(f"warm round: {args.accounts} accounts synced in {warm_round_s:.1f} s")
            new_orders = churn.orders
        cpu = process_cpu(worker.pid) - cpu_start
        fakes_cpu = sum(process_cpu(f.pid) for f in st.fakes.values()) - fakes_cpu_start
        st.stop("beat")
        st.stop("worker")
        with sessions() as session:
            fleet.poll(session)
        engine.dispose()
        stats = {code: fake.stats() for code, fake in st.fakes.items()}

    assert first_round_s is not None
    for code, found in stats.items():
        print(f"{code} fake: calls {json.dumps(found['calls'])}, throttled {json.dumps(found['throttled'])}")
        if found.get("validation_errors") or found.get("server_errors"):
            print(f"{code} fake problems: {found['validation_errors'][:3]} {found['server_errors'][:3]}")
    print(f"worker: {fleet.syncs} syncs ok, {fleet.failures} failed, {new_orders} new orders during the run")
    print(
        f"worker CPU: {cpu:.1f} s over {fleet.syncs} syncs; first round and steady state "
        f"{cpu_steady * 1000 / max(1, syncs_steady):.2f} ms per sync, warm round "
        f"{(cpu - cpu_steady) * 1000 / max(1, fleet.syncs - syncs_steady):.2f} ms per sync"
    )
    calls = sum(sum(found["calls"].values()) for found in stats.values())
    print(
        f"fakes CPU (on the same cores): {fakes_cpu:.1f} s, {fakes_cpu * 1000 / max(1, calls):.2f} ms per call "
        f"({calls} calls, the sequential loop's included)"
    )
    fresh = worst_steady * args.speedup
    cold_ratio = seq.cold * args.accounts / first_round_s
    warm_ratio = seq.warm * args.accounts / warm_round_s
    print(
        f"capacity: first syncs {args.accounts / first_round_s:.1f}/s vs sequential {1 / seq.cold:.2f}/s "
        f"(x {cold_ratio:.1f}); next syncs {args.accounts / warm_round_s:.1f}/s vs sequential "
        f"{1 / seq.warm:.2f}/s (x {warm_ratio:.1f})"
    )
    print(
        f"steady state: oldest sync {worst_steady:.1f} s wall = {fresh:.1f} platform s "
        f"({'fresh' if fresh <= FRESH_TARGET else 'NOT fresh'} within {FRESH_TARGET:g} s)"
    )
    print(
        f"RESULT fleet accounts={args.accounts} workers=1 fresh_within_s={fresh:.1f} "
        f"cpu_ms_per_account_sync={cpu * 1000 / max(1, fleet.syncs):.2f} "
        f"vs_sequential={warm_ratio:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
