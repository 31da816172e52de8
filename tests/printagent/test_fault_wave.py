"""A wave of 200 scans through injected faults prints 200 labels, each exactly once, and the vault counts
each order once: responses and requests lost on the network (a TCP proxy cutting connections at random,
both ways), a printer that drops the connection mid-job, runs out of paper, has its head opened and is
paused. Every label is the one the vault should print for that buyer; no buyer string reaches the console
or a log line."""

from __future__ import annotations

import io
import random
from collections import Counter
from typing import Any

import pytest
from PIL import Image

from printagent.agent import Agent, ExitCode, Outcome
from printagent.client import VaultClient
from printagent.fakeprinter import FakeZebra
from printagent.printers import ZebraPrinter
from tests.support.buyers import MARKED_BUYERS
from tests.support.printing import FaultyProxy, barcode_of, expected_zpl
from tests.support.servers import Database
from tests.support.world import assert_no_pii, build_world
from vault.keys import KeyManager
from vault.models import Order

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_pii_in_logs"), pytest.mark.timeout(900)]

SCANS = 200


def test_a_wave_of_200_scans_prints_200_labels_exactly_once_through_network_and_printer_faults(
    shared_db: Database, keys: KeyManager, vault_url: str, zebra: FakeZebra
) -> None:
    zplkit = pytest.importorskip("zplkit")
    world = build_world(shared_db, keys, n_orders=SCANS)
    proxy = FaultyProxy(int(vault_url.rsplit(":", 1)[1]), rate=0.06, seed=20)
    out = io.StringIO()
    client = VaultClient(proxy.url, world.key, backoff=0.01, attempts=12)
    station = Agent(
        client,
        [ZebraPrinter("zebra-1", zebra.host, zebra.port)],
        out=out,
        printer_wait=30.0,
        poll_interval=0.01,
        send_attempts=5,
    )
    faults: Counter[str] = Counter()
    rng = random.Random(20)
    try:
        for i, order_id in enumerate(world.order_ids):
            if i % 9 == 4:
                zebra.drop_next_job(after_bytes=rng.randint(1, 1500))
                faults["drop"] += 1
            if i % 23 == 11:
                zebra.fail_for(rng.randint(1, 4), paper_out=True)
                faults["paper"] += 1
            if i % 41 == 20:
                zebra.fail_for(2, head_open=True)
                faults["head"] += 1
            if i % 53 == 30:
                zebra.fail_for(3, paused=True)
                faults["pause"] += 1
            assert station.scan(order_id) == Outcome.PRINTED, out.getvalue().splitlines()[-3:]
    finally:
        station.close()
        client.close()
        proxy.stop()

    # The faults happened ...
    assert proxy.cuts["request"] > 5 and proxy.cuts["response"] > 5, proxy.cuts
    assert zebra.dropped >= faults["drop"] // 2 > 0
    # ... and every order was printed once, and counted once by the vault.
    barcodes = [barcode_of(label) for label in zebra.labels]
    assert len(barcodes) == SCANS and sorted(barcodes) == sorted(world.order_ids)
    with world.session() as s:
        assert [s.get_one(Order, o.id).labels_issued for o in world.orders] == [1] * SCANS
    assert station.counts[Outcome.PRINTED] == SCANS and station.exit_code == ExitCode.OK
    # Each label is the one this buyer's order should have; a few rendered as the printer would.
    by_order = dict(zip(barcodes, zebra.labels, strict=True))
    for i, order_id in enumerate(world.order_ids):
        assert by_order[order_id] == expected_zpl(order_id, MARKED_BUYERS[i % len(MARKED_BUYERS)], by_order[order_id])
    for order_id in world.order_ids[:: SCANS // 4]:
        rendered = zplkit.render(by_order[order_id], zplkit.Options(dpi=203, width=812, height=1218))
        image: Any = Image.open(io.BytesIO(rendered.labels[0].png())).convert("L")
        zxingcpp = pytest.importorskip("zxingcpp")
        assert [r.text for r in zxingcpp.read_barcodes(image)] == [order_id]
    text = out.getvalue()
    assert_no_pii(text, "the agent's status lines")
    assert text.count("\nPRINTED ") + text.startswith("PRINTED ") == SCANS
    assert "RETRY " in text and "WAITING for a printer: zebra-1 paper out" in text
