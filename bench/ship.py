"""Carrier label purchases: the vault's own time per purchase, and a 500-order wave at the carrier's limit.

Both against the fake Shippo on loopback, with a fixed latency per carrier call (``--latency``), through the
purchase path every client takes (connectors/carriers/shipments.py: ship-to unsealed, quote, intent with its
rate committed, purchase, label and audit event committed), with the carrier clients pooled per account as
the API pools them (connectors/carriers/pool.py):

- **overhead**: ``--purchases`` purchases one after another; each one's wall time minus the time spent inside
  the carrier client's calls (measured around each call by a delegating carrier), so what is left is the
  vault's own work: lookups, unsealing, two commits, the audit append. p50 and p99 in milliseconds.
- **wave**: 500 orders bought with :func:`~connectors.carriers.shipments.buy_wave` (chunks in flight sized
  to the limit, or ``--concurrency``) against the fake's purchase limit (``--rate`` per second, burst
  ``--burst``), the client pacing itself at that limit. The fake runs in a thread of this process unless
  ``--carrier-process`` serves it from its own, as a carrier is: in-process, its own CPU (werkzeug, and
  validating every body against Shippo's document: 5-7 ms of CPU per order, measured on a loaded machine)
  competes with the vault's for one interpreter, and a wave of 100 purchases a second at 1.2 × the minimum
  has ~12 ms per order for both. ``wave_vs_min`` is the wave's time over the least the limit allows,
  ``(orders - burst) / rate``.

``RESULT ship overhead_p50_ms=… overhead_p99_ms=… wave_s=… wave_vs_min=… double_purchases=…``; targets:
overhead p50 ≤ 10 ms, wave ≤ 1.2 × the minimum, no order bought twice.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bench.schema import fresh_schema
from connectors.carriers.interfaces import Carrier, LabelFormat, Parcel
from connectors.carriers.pool import CarrierPool
from connectors.carriers.registry import SHIPPO
from connectors.carriers.shipments import ShipmentRequest, buy_shipment, buy_wave, key_hash
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials, ShippoPolicy
from connectors.fake_shippo import DEFAULT_TOKEN, FakeShippo
from connectors.samples import sample_label
from vault.carrier_accounts import connect_carrier_account
from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount, MarketplaceAccount, Order, Shipment
from vault.orders import store_order
from vault.records import OrderFacts, OrderStatus
from vault.tenants import create_tenant

T = TypeVar("T")
SHIP_FROM = {"name": "Bench Dispatch", "street1": "215 Clayton St.", "city": "San Francisco", "state": "CA",
             "postal_code": "94117", "country_code": "US"}  # fmt: skip
PARCEL = Parcel(weight_g=850, length_mm=300, width_mm=200, height_mm=120)


class TimedCarrier:
    """A carrier that delegates every call and adds the time spent in it to ``spent`` (per thread)."""

    def __init__(self, inner: Carrier, spent: threading.local) -> None:
        self.carrier = inner.carrier
        self.purchase_rate = getattr(inner, "purchase_rate", None)
        self._inner = inner
        self._spent = spent

    def _timed(self, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return call()
        finally:
            self._spent.seconds = getattr(self._spent, "seconds", 0.0) + time.perf_counter() - start

    def quote(self, **kwargs: Any) -> Any:
        return self._timed(lambda: self._inner.quote(**kwargs))

    def purchase(self, rate: Any, **kwargs: Any) -> Any:
        return self._timed(lambda: self._inner.purchase(rate, **kwargs))

    def find_purchase(self, **kwargs: Any) -> Any:
        return self._timed(lambda: self._inner.find_purchase(**kwargs))

    def label(self, purchase: Any) -> Any:
        return self._timed(lambda: self._inner.label(purchase))

    def void(self, purchase: Any) -> Any:
        return self._timed(lambda: self._inner.void(purchase))

    def tracking(self, purchase: Any) -> Any:
        return self._timed(lambda: self._inner.tracking(purchase))

    def close(self) -> None:
        self._timed(self._inner.close)


def _factory(policy: ShippoPolicy, spent: threading.local) -> CarrierPool:
    def build(account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        assert account.api_endpoint is not None
        inner = ShippoCarrier(ShippoCredentials.from_secrets(secrets), api_base=account.api_endpoint, policy=policy)
        timed: Carrier = TimedCarrier(inner, spent)
        return timed

    return CarrierPool(build)


def _seed(engine: Engine, keys: KeyManager, fake: FakeShippo | RemoteFake, orders: int) -> tuple[int, list[Order]]:
    t0 = datetime.now(UTC) - timedelta(hours=1)
    with Session(engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=keys, slug=f"ship-{uuid.uuid4().hex[:6]}", name="Ship bench", actor="bench")
        account = MarketplaceAccount(tenant_id=tenant.id, marketplace="amazon", name="US", region="na",
                                     api_version="2026-01-01", marketplace_ids=["ATVPDKIKX0DER"])  # fmt: skip
        s.add(account)
        s.flush()
        made = [
            store_order(
                s, keys=keys, account=account, label=sample_label(i, "US"),
                facts=OrderFacts(marketplace="amazon", external_order_id=f"113-{i:07d}-{i:07d}",
                                 status=OrderStatus.UNSHIPPED, purchased_at=t0, last_updated_at=t0),
            ).order
            for i in range(orders)
        ]  # fmt: skip
        connect_carrier_account(
            s, keys=keys, tenant_id=tenant.id, carrier="shippo", name="Shippo", secrets={"api_token": DEFAULT_TOKEN},
            ship_from=SHIP_FROM, test_mode=True, api_endpoint=fake.base_url,
            endpoints=EndpointPolicy(api=SHIPPO.api_hosts, overrides=frozenset({fake.base_url})), actor="bench",
        )  # fmt: skip
        s.commit()
        return tenant.id, made


def _request(order: Order) -> ShipmentRequest:
    return ShipmentRequest(order.marketplace, order.external_order_id, PARCEL, "cheapest", LabelFormat.ZPL)


def overhead(engine: Engine, keys: KeyManager, *, purchases: int, latency: float) -> list[float]:
    """The vault's own milliseconds per purchase, one purchase at a time."""
    spent = threading.local()
    with FakeShippo(latency=latency, purchase_rate=10_000, purchase_burst=10_000) as fake:
        tenant_id, orders = _seed(engine, keys, fake, purchases + 5)
        carriers = _factory(ShippoPolicy(), spent)
        out: list[float] = []
        with Session(engine, expire_on_commit=False) as s:
            for n, order in enumerate(orders):
                spent.seconds = 0.0
                start = time.perf_counter()
                buy_shipment(s, keys=keys, carriers=carriers, tenant_id=tenant_id, client_id=None, actor="bench",
                             idempotency_key_hash=key_hash(f"o-{order.id}"), request=_request(order))  # fmt: skip
                if n >= 5:  # the first few warm the key cache, connections and the fake's validators
                    out.append((time.perf_counter() - start - spent.seconds) * 1000)
        carriers.close()
        return out


def _serve(conn: Connection, latency: float, rate: float, burst: int) -> None:
    """The fake carrier in a process of its own: its base URL out, then, when asked, what it sold."""
    with FakeShippo(latency=latency, purchase_rate=rate, purchase_burst=burst) as fake:
        conn.send(fake.base_url)
        conn.recv()
        conn.send(dict(fake.purchases_by_metadata()))


class RemoteFake:
    """:class:`FakeShippo` served from another process, as a carrier is: its CPU (werkzeug, and validating
    every body against Shippo's document) no longer shares this process's interpreter with the vault."""

    def __init__(self, *, latency: float, purchase_rate: float, purchase_burst: int) -> None:
        self._conn, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, latency, purchase_rate, purchase_burst), daemon=True
        )
        self.base_url = ""

    def __enter__(self) -> RemoteFake:
        self._process.start()
        self.base_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)

    def purchases_by_metadata(self) -> Counter[str]:
        self._conn.send("stop")
        return Counter(self._conn.recv())


def wave(
    engine: Engine,
    keys: KeyManager,
    *,
    orders: int,
    latency: float,
    rate: float,
    burst: int,
    concurrency: int | None,
    carrier_process: bool = False,
) -> tuple[float, float, int]:
    """The wave's seconds, the least the carrier's limit allows, and the orders bought more than once."""
    spent = threading.local()
    serve = RemoteFake if carrier_process else FakeShippo
    with serve(latency=latency, purchase_rate=rate, purchase_burst=burst) as fake:
        tenant_id, made = _seed(engine, keys, fake, orders)
        policy = ShippoPolicy(purchase_rate=rate, purchase_burst=burst, attempts=6, base_delay=0.05)
        sessions = make_session_factory(engine)
        carriers = _factory(policy, spent)
        start = time.perf_counter()
        results = buy_wave(
            sessions, keys=keys, carriers=carriers, tenant_id=tenant_id, client_id=None, actor="bench",
            idempotency_key_hash=key_hash("wave-1"), requests=[_request(o) for o in made], concurrency=concurrency,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        carriers.close()
        failed = [r.error for r in results if r.error]
        if failed:
            raise SystemExit(f"{len(failed)} orders of the wave failed: {Counter(failed)}")
        sold = fake.purchases_by_metadata()
    with Session(engine) as s:
        bought = Counter(s.scalars(select(Shipment.order_id).where(Shipment.tenant_id == tenant_id)))
    doubles = sum(1 for n in sold.values() if n > 1) + sum(1 for n in bought.values() if n > 1)
    return elapsed, max(orders - burst, 1) / rate, doubles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--purchases", type=int, default=200, help="sequential purchases timed (default 200)")
    parser.add_argument("--latency", type=float, default=0.02, help="the fake carrier's seconds per call (0.02)")
    parser.add_argument("--orders", type=int, default=500, help="orders in the wave (default 500)")
    parser.add_argument("--rate", type=float, default=100.0, help="the carrier's purchases per second (100)")
    parser.add_argument("--burst", type=int, default=10, help="the carrier's purchase burst (10)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="the wave's chunks in flight (default: sized to the carrier's limit, wave_concurrency)",
    )
    parser.add_argument(
        "--carrier-process",
        action="store_true",
        help="serve the wave's fake carrier from a process of its own (default: a thread of this one)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyManager(LocalKeyProvider(Path(tmp) / "keyring.json"))

        def run(engine: Engine) -> tuple[list[float], tuple[float, float, int]]:
            cost = overhead(engine, keys, purchases=args.purchases, latency=args.latency)
            waved = wave(engine, keys, orders=args.orders, latency=args.latency, rate=args.rate, burst=args.burst,
                         concurrency=args.concurrency, carrier_process=args.carrier_process)  # fmt: skip
            return cost, waved

        if args.backend == "sqlite":
            engine = make_engine(f"sqlite:///{Path(tmp) / 'ship.db'}")
            migrate(engine)
            cost, (wave_s, least, doubles) = run(engine)
            engine.dispose()
        else:
            with fresh_schema() as (engine, _url):
                cost, (wave_s, least, doubles) = run(engine)
    p50 = statistics.median(cost)
    p99 = statistics.quantiles(cost, n=100)[98] if len(cost) >= 100 else max(cost)
    print(
        f"RESULT ship overhead_p50_ms={p50:.2f} overhead_p99_ms={p99:.2f} wave_s={wave_s:.2f} "
        f"wave_vs_min={wave_s / least:.2f} double_purchases={doubles}"
    )


if __name__ == "__main__":
    main()
