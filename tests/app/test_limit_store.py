"""The embedded rate-limit store: counts as limits' own memory storage does, for every strategy, without threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES

from app.limit_store import ProcessMemoryStorage

ITEMS: tuple[RateLimitItem, ...] = (
    RateLimitItemPerSecond(3, 1),
    RateLimitItemPerSecond(5, 10),
    RateLimitItemPerMinute(2),
)


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def frozen_time(clock: Clock) -> Iterator[None]:
    """Both storages and limits' strategies read ``time.time()``: all of them follow ``clock`` meanwhile."""
    real = time.time
    time.time = clock
    try:
        yield
    finally:
        time.time = real


#: Waits between steps. Every one is a multiple of 0.0123 s away from a whole second, so no run of them adds
#: up to a window's exact length: at that instant the reference storage answers either way, depending on
#: whether its sweep thread has run.
WAITS = [0.0123, 0.2091, 0.492, 1.0123, 3.2091, 9.492, 30.0123, 61.2091]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("hit"), st.integers(0, len(ITEMS) - 1), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("test"), st.integers(0, len(ITEMS) - 1), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("stats"), st.integers(0, len(ITEMS) - 1), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("clear"), st.integers(0, len(ITEMS) - 1), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("wait"), st.sampled_from(WAITS), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@settings(max_examples=150, deadline=None)
@given(steps=STEPS)
def test_counts_exactly_as_the_reference_memory_storage(
    strategy: str, steps: list[tuple[str, float, int, int]]
) -> None:
    clock = Clock()
    with frozen_time(clock):
        reference, ours = MemoryStorage(), ProcessMemoryStorage()
        try:
            limiters = [STRATEGIES[strategy](reference), STRATEGIES[strategy](ours)]
            for op, arg, who, cost in steps:
                if op == "wait":
                    clock.now += arg
                    continue
                item, key = ITEMS[int(arg)], f"station-{who}"
                if op == "hit":
                    got = [lim.hit(item, key, cost=cost) for lim in limiters]
                elif op == "test":
                    got = [lim.test(item, key, cost=cost) for lim in limiters]
                elif op == "stats":
                    got = [tuple(lim.get_window_stats(item, key)) for lim in limiters]
                    if got[0][1] == got[1][1] == item.amount:
                        # An empty window resets whenever: the reference answers with an expired entry's
                        # time until its sweep thread has dropped it, and with now after. The count is what holds.
                        got = [g[1:] for g in got]
                else:
                    got = [lim.clear(item, key) for lim in limiters]
                assert got[0] == got[1], (op, item, key)
        finally:
            reference.timer.cancel()


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_counts_without_timer_threads_and_sweeps_what_expired(strategy: str) -> None:
    storage = storage_from_string("lv-memory://")  # the name settings may use
    assert isinstance(storage, ProcessMemoryStorage)
    limiter = STRATEGIES[strategy](storage)
    item = RateLimitItemPerSecond(5, 1)
    before = threading.active_count()
    assert [limiter.hit(item, "station") for _ in range(7)] == [True] * 5 + [False] * 2
    for n in range(50):
        limiter.hit(item, f"other-{n}")
    assert threading.active_count() == before  # limits' own memory storage starts a sweep thread here
    time.sleep(2.05)  # past every window, and past the sweep interval
    assert limiter.hit(item, "station")  # the window passed: counted afresh
    # The sweep ran inline on that hit and dropped what had expired: only this station's count is left.
    assert len(storage) == 1


def test_concurrent_hits_are_counted_exactly() -> None:
    limiter = STRATEGIES["fixed-window"](ProcessMemoryStorage())
    item = RateLimitItemPerHour(1000)
    allowed: list[bool] = []
    lock = threading.Lock()

    def station() -> None:
        mine = [limiter.hit(item, "shared") for _ in range(300)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=station) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1000 and len(allowed) == 2400


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_full_window_refuses_until_it_has_moved_on(strategy: str) -> None:
    clock = Clock()
    with frozen_time(clock):
        limiter = STRATEGIES[strategy](ProcessMemoryStorage())
        item = RateLimitItemPerMinute(3)
        clock.now += 0.25  # inside a fixed window, not at its start
        assert [limiter.hit(item, "station") for _ in range(4)] == [True, True, True, False]
        clock.now += 30
        assert not limiter.hit(item, "station") and limiter.get_window_stats(item, "station").remaining == 0
        clock.now += 31.5  # more than a minute after the three: every strategy has freed them
        assert limiter.hit(item, "station")


def test_a_moving_window_frees_each_request_a_window_after_it() -> None:
    clock = Clock()
    with frozen_time(clock):
        limiter = STRATEGIES["moving-window"](ProcessMemoryStorage())
        item = RateLimitItemPerSecond(2, 10)
        assert limiter.hit(item, "station")
        clock.now += 6
        assert limiter.hit(item, "station") and not limiter.hit(item, "station")
        assert limiter.get_window_stats(item, "station").reset_time == clock.now - 6 + 10
        clock.now += 3.9  # the first request is 9.9 s old: still inside the window
        assert not limiter.hit(item, "station")
        clock.now += 0.2  # 10.1 s: it has left; the second (4.1 s old) has not
        assert limiter.hit(item, "station") and not limiter.hit(item, "station")


def test_reset_forgets_every_count() -> None:
    storage = ProcessMemoryStorage()
    limiter = STRATEGIES["moving-window"](storage)
    item = RateLimitItemPerMinute(1)
    assert limiter.hit(item, "a") and limiter.hit(item, "b")
    assert not limiter.hit(item, "a")
    assert storage.reset() == 2
    assert limiter.hit(item, "a")
