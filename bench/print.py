"""Scans per second at a packing station, from the scan to the label's bytes at the printer, through the
print agent, against the same requests made with a bare HTTP client.

One vault (``gunicorn -w W 'app:create_app()'`` on loopback, a SQLite file in a temporary folder, or a fresh
PostgreSQL schema) and a fake Zebra printer (:mod:`printagent.fakeprinter`, in this process, on loopback).
Two loops, one scan at a time as a station scans, over the same orders, in alternating blocks of
:data:`BLOCK` scans (so the shared machine's noise lands on both), for ``--rounds`` rounds:

- agent: :meth:`printagent.agent.Agent.scan` per order: the reference parsed, ``~HS`` asked of the printer,
  ``GET /v1/labels/amazon/{id}?format=zpl&dpi=203`` with a fresh ``Idempotency-Key``, the ZPL sent to the
  printer and confirmed with a second ``~HS``;
- bare: ``httpx.Client.get`` of the same URL with the same headers, the body read; no printer at all.

Each scan is a new release (its own key; the reissue cap is lifted for the run), so both loops do the same
work in the vault. ``RESULT print scans_per_s=N vs_bare=X``: N = the agent's best round, X = the median of
the rounds' agent / bare ratios (target ≥ 0.9). The first order of each round opens both loops'
connections before the clock starts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.labels import Server, build_database
from bench.schema import fresh_schema
from printagent.agent import Agent, Outcome
from printagent.client import VaultClient
from printagent.fakeprinter import FakeZebra
from printagent.printers import ZebraPrinter


class _Discard(io.TextIOBase):
    """The agent's console during timing: status lines are written (that is part of a scan) and dropped."""

    def write(self, text: str) -> int:
        return len(text)


#: Scans per block: a round alternates a block of agent scans with a block of bare GETs of the same orders, so
#: a neighbour's burst of CPU on the shared machine lands on both loops alike.
BLOCK = 10


def measure_round(url: str, key: str, order_ids: list[str], printer: FakeZebra) -> tuple[float, float]:
    """(agent scans per second, bare GETs per second) over ``order_ids``; every scan must end printed."""
    client = VaultClient(url, key)
    agent = Agent(client, [ZebraPrinter("bench", printer.host, printer.port)], out=_Discard(), printer_wait=0)
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    params = {"format": "zpl", "dpi": "203"}

    def scans(block: list[str]) -> None:
        for order_id in block:
            if agent.scan(order_id) != Outcome.PRINTED:
                raise RuntimeError(f"scan not printed: {agent.summary()}")

    def bare(block: list[str]) -> None:
        for order_id in block:
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            response = http.get(f"/v1/labels/amazon/{order_id}", params=params, headers=headers)
            if response.status_code != 200 or not response.content.startswith(b"^XA"):
                raise RuntimeError(f"bare request failed: HTTP {response.status_code}")

    try:
        # Connections made (vault and printer) before the clock starts.
        scans(order_ids[:1])
        bare(order_ids[:1])
        before = len(printer.labels)
        spent = {scans: 0.0, bare: 0.0}
        for number, first in enumerate(range(1, len(order_ids), BLOCK)):
            block = order_ids[first : first + BLOCK]
            for loop in (scans, bare) if number % 2 else (bare, scans):
                start = time.perf_counter()
                loop(block)
                spent[loop] += time.perf_counter() - start
        if len(printer.labels) - before != len(order_ids) - 1:
            raise RuntimeError("the printer did not receive every label")
    finally:
        agent.close()
        client.close()
        http.close()
    n = len(order_ids) - 1
    return n / spent[scans], n / spent[bare]


def warm_up(url: str, key: str, order_ids: list[str]) -> None:
    """Every gunicorn worker imports, connects, loads the label font and caches its tenant key first."""
    headers = {"Authorization": f"Bearer {key}"}
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda i: httpx.get(
                    f"{url}/v1/labels/amazon/{order_ids[i % len(order_ids)]}?format=zpl", headers=headers
                ),
                range(40),
            )
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scans", type=int, default=300, help="scans per loop per round (bounded load)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of both loops; the ratio is their median")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument(
        "--database-url", default="", help="default: a SQLite file in a temporary folder; PostgreSQL: a fresh schema"
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lv-bench-print-") as tmp, contextlib.ExitStack() as stack:
        instance = Path(tmp) / "instance"
        instance.mkdir()
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        if url.startswith("postgresql"):
            url = stack.enter_context(fresh_schema(url))[1]
        order_ids, key = build_database(url, instance, args.scans)
        env = {
            "LABELVAULT_ENV": "development",
            "LABELVAULT_DATABASE_URL": url,
            "LABELVAULT_INSTANCE_PATH": str(instance),
            "LABELVAULT_LABEL_REISSUE_CAP": str(10**9),
            "LABELVAULT_RATE_LIMIT_IP": "1000000/minute",
            "LABELVAULT_RATE_LIMIT_CLIENT": "1000000/minute",
            "LABELVAULT_RATE_LIMIT_PREFIX": f"bench-{os.urandom(4).hex()}",
        }
        server = Server("app:create_app()", env, args.workers)
        stack.callback(server.stop)
        printer = stack.enter_context(FakeZebra())
        warm_up(server.url, key, order_ids)
        ratios: list[float] = []
        best = 0.0
        for round_no in range(args.rounds):
            agent, bare = measure_round(server.url, key, order_ids, printer)
            printer.labels.clear()
            ratios.append(agent / bare)
            best = max(best, agent)
            print(f"round {round_no + 1}  agent {agent:7.1f} scans/s  bare {bare:7.1f} req/s  ratio {agent / bare:.3f}")
    print(f"RESULT print scans_per_s={best:.1f} vs_bare={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
