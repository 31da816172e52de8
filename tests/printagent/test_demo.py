"""The README demo's hook: labels printed through the agent to a fake Zebra printer, summed up in one line."""

from __future__ import annotations

import io

import pytest

from printagent.demo import print_via_agent
from tests.support.world import World, assert_no_pii

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")


def test_print_via_agent_prints_the_orders_and_sums_them_up(vault_url: str, world: World) -> None:
    out = io.StringIO()
    summary = print_via_agent(vault_url, world.key, [world.order_ids[0], f"amazon:{world.order_ids[1]}"], out=out)
    assert summary.startswith("labelvault-print: 2 ZPL label(s) at the fake Zebra printer on 127.0.0.1:")
    assert summary.endswith("; SHIFT printed=2 refused=0 printer-problem=0 vault-unavailable=0 invalid-scan=0 "
                            "already-printed=0 station-refused=0")  # fmt: skip
    assert out.getvalue().splitlines() == [
        f"   PRINTED amazon:{world.order_ids[0]} on demo-zebra",
        f"   PRINTED amazon:{world.order_ids[1]} on demo-zebra",
    ]
    assert_no_pii(out.getvalue() + summary)
