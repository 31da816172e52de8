"""Sync benchmark: one marketplace's orders from its fake, through the sync engine, against what the
platform's own limits allow.

``python -m bench.sync [--marketplace amazon] [--orders 10000] [--speedup 100] [platform options]``

Each platform's runner (``bench/sync_<code>.py``, listed in :data:`RUNNERS`) starts the platform's fake in a
child process with its documented limits multiplied by ``--speedup``, syncs one account into a fresh SQLite
vault with the same factor, and says the least the platform allows: the calls its page size needs and the
time its rate limit makes them take. Lost and duplicated orders are measured here, the same for every
platform: the stored order ids against the fake's and against their own distinct count.

The last line: ``RESULT sync marketplace=… orders=… calls_vs_min=… time_vs_min=… lost=… duplicated=…``
(targets ≤ 1.05 and ≤ 1.10, 0 and 0).
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from vault.db import make_engine, make_session_factory, migrate
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager
from vault.models import Order
from vault.tenants import create_tenant

#: Each platform's runner module, by marketplace code.
RUNNERS: dict[str, str] = {
    "amazon": "bench.sync_amazon",
    "tiktok": "bench.sync_tiktok",
    "walmart": "bench.sync_walmart",
    "ebay": "bench.sync_ebay",
    "shopify": "bench.sync_shopify",
}


@dataclass(frozen=True, slots=True)
class Workspace:
    """A fresh SQLite vault with one tenant, for one run."""

    sessions: sessionmaker[Session]
    keys: KeyManager
    tenant_id: int
    path: Path


@dataclass(slots=True)
class SyncBenchResult:
    """What a runner measured and the platform's minimum for the same work."""

    orders: int
    calls: int
    min_calls: int
    seconds: float
    min_seconds: float
    #: The order ids the fake holds (what a complete sync stores).
    expected_ids: set[str]
    #: Lines printed before the RESULT line (limits, per-operation calls, the fake's problems).
    details: list[str] = field(default_factory=list)


class Runner(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace, workspace: Workspace) -> SyncBenchResult: ...


@contextmanager
def workspace() -> Iterator[Workspace]:
    """A migrated SQLite vault under a temporary directory, with a local keyring and the tenant ``bench``."""
    with tempfile.TemporaryDirectory(prefix="lv-bench-") as tmp:
        path = Path(tmp)
        engine = make_engine(f"sqlite:///{path / 'bench.db'}")
        migrate(engine)
        sessions = make_session_factory(engine)
        keys = KeyManager(LocalKeyProvider(path / "keyring.json"))
        with sessions() as session:
            tenant = create_tenant(session, keys=keys, slug="bench", name="Bench", actor="bench")
            session.commit()
            tenant_id = tenant.id
        try:
            yield Workspace(sessions=sessions, keys=keys, tenant_id=tenant_id, path=path)
        finally:
            engine.dispose()


def lost_and_duplicated(sessions: Callable[[], Session], expected: set[str]) -> tuple[int, int]:
    """Orders the fake holds that the vault lacks, and rows beyond one per fake order."""
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(Order)) or 0
        stored = set(session.scalars(select(Order.external_order_id)))
    return len(expected - stored), rows - len(stored) + len(stored - expected)


def main(argv: list[str] | None = None) -> int:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--marketplace", choices=sorted(RUNNERS), default="amazon")
    known, _ = first.parse_known_args(argv)
    runner: Runner = importlib.import_module(RUNNERS[known.marketplace])  # type: ignore[assignment]

    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__, parents=[first])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--speedup", type=float, default=100.0)
    runner.add_arguments(parser)
    args = parser.parse_args(argv)

    with workspace() as ws:
        result = runner.run(args, ws)
        lost, duplicated = lost_and_duplicated(ws.sessions, result.expected_ids)
    for line in result.details:
        print(line)
    print(f"calls: {result.calls} made, minimum {result.min_calls}")
    print(f"time: {result.seconds:.2f} s, minimum {result.min_seconds:.2f} s")
    time_ratio = result.seconds / result.min_seconds if result.min_seconds else float("nan")
    print(
        f"RESULT sync marketplace={args.marketplace} orders={result.orders} "
        f"calls_vs_min={result.calls / result.min_calls:.3f} time_vs_min={time_ratio:.3f} "
        f"lost={lost} duplicated={duplicated}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
