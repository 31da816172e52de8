"""The loop back to the marketplace (connectors/confirmations.py): queued with the bought label, leased by one
worker, retried with backoff, failed visibly, the order shipped with its retention recomputed, audited without
PII."""

from __future__ import annotations

import random
from datetime import timedelta

from connectors import confirmations
from connectors.confirmations import BASE_DELAY, MAX_DELAY, backoff, needs_confirmation


def test_only_marketplaces_with_a_confirmation_call_are_queued() -> None:
    assert not needs_confirmation("amazon", "shippo")  # Amazon's own call is not built yet
    assert not needs_confirmation("nosuchmarket", "shippo")


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    rng = random.Random(1)
    for attempts in range(1, 30):
        delay = backoff(attempts, rng)
        ceiling = min(MAX_DELAY, BASE_DELAY * (1 << min(attempts - 1, 20)))
        assert ceiling / 2 <= delay <= ceiling
    assert backoff(1, rng) <= timedelta(minutes=1) and confirmations.MAX_ATTEMPTS > 1
