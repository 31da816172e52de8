"""Rate-limit buckets shared by every process through Redis (connectors.ratelimit.RedisBuckets): eBay's quotas
are the application's, so a fleet of workers must draw on one bucket, not one each."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.ebay import shared_limiter
from connectors.ratelimit import BucketStoreUnavailable, RateLimiter, RedisBuckets, UsagePlan
from tests.support.servers import require_redis


@pytest.fixture
def store() -> Iterator[RedisBuckets]:
    s = RedisBuckets.from_url(require_redis(), prefix=f"lv-test-{uuid.uuid4().hex[:8]}:")
    yield s
    s.close()


def _limiter(store: RedisBuckets, *, rate: float, burst: int, sleeps: list[float] | None = None) -> RateLimiter:
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        time.sleep(seconds)

    return RateLimiter({"op": UsagePlan(rate=rate, burst=burst)}, shared=store, name="t", sleep=sleep)


def test_two_limiters_on_one_store_share_the_bucket(store: RedisBuckets) -> None:
    # Two "processes" (limiters) of one store: the burst is theirs together, not each one's.
    sleeps: list[float] = []
    a = _limiter(store, rate=0.5, burst=3)
    b = _limiter(store, rate=0.5, burst=3, sleeps=sleeps)
    assert [a.acquire("app", "op") for _ in range(3)] == [0.0, 0.0, 0.0]
    # The burst is gone for b too: one step of the script says b must wait about 2 s for a token.
    assert store.run(store.prefix + "t:app:op", 0.5, 3, "take") > 1.5
    # Another scope or operation is another bucket.
    assert b.acquire("other-app", "op") == 0.0
    assert sleeps == []


def test_a_throttled_answer_drains_the_bucket_for_everyone(store: RedisBuckets) -> None:
    a = _limiter(store, rate=50.0, burst=20)
    b = _limiter(store, rate=50.0, burst=20)
    a.acquire("app", "op")
    a.throttled("app", "op")
    assert b.acquire("app", "op") > 0  # b waits for a fresh token although it never called


def _take(url: str, prefix: str, n: int, out: Any) -> None:
    store = RedisBuckets.from_url(url, prefix=prefix)
    limiter = RateLimiter({"op": UsagePlan(rate=40.0, burst=4)}, shared=store, name="t")
    limiter.acquire("app", "op")
    first = time.monotonic()
    for _ in range(n - 1):
        limiter.acquire("app", "op")
    out.put((first, time.monotonic()))
    store.close()


def test_processes_together_never_exceed_the_rate(store: RedisBuckets) -> None:
    # 4 processes × 10 tokens at 40/s with a burst of 4. Shared, the 40 tokens take at least (40 - 4) / 40 =
    # 0.9 s from the first one, however the processes interleave; a bucket each would let them finish in
    # (10 - 4) / 40 = 0.15 s. (A lower bound: a slow machine can only make it longer.)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(require_redis(), store.prefix, 10, out)) for _ in range(4)]
    for p in procs:
        p.start()
    spans = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert max(end for _, end in spans) - min(first for first, _ in spans) >= 0.85


def test_an_unreachable_store_refuses_the_call() -> None:
    store = RedisBuckets.from_url("redis://127.0.0.1:1/0")
    limiter = RateLimiter({"op": UsagePlan(rate=1.0, burst=1)}, shared=store, name="t")
    with pytest.raises(BucketStoreUnavailable) as caught:
        limiter.acquire("app", "op")
    assert "unreachable" in str(caught.value)


def test_ebay_pacing_uses_the_fleet_store(store: RedisBuckets) -> None:
    limiter = shared_limiter(25.0, 480, store)
    assert limiter.shared is store
    assert shared_limiter(25.0, 480, store) is limiter
    assert shared_limiter(25.0, 480).shared is None
