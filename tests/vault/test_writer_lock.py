"""The SQLite writer lock: one writing transaction at a time across processes and threads, waiting in the kernel."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from pathlib import Path
from typing import Any

from vault.db import make_engine, writer_lock


def _hold(url: str, held: Any, release: Any) -> None:
    with writer_lock(make_engine(url)):
        held.set()
        release.wait(10)


def _acquired_within(engine: Any, seconds: float) -> tuple[threading.Event, threading.Event]:
    """Start a thread that takes the lock; returns (acquired, let go)."""
    acquired, let_go = threading.Event(), threading.Event()

    def take() -> None:
        with writer_lock(engine):
            acquired.set()
            let_go.wait(10)

    threading.Thread(target=take, daemon=True).start()
    acquired.wait(seconds)
    return acquired, let_go


def test_a_writer_in_another_process_waits_until_the_first_is_done(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lv.db'}"
    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(url, held, release))
    other.start()
    try:
        assert held.wait(30)
        acquired, let_go = _acquired_within(make_engine(url), 0.3)
        assert not acquired.is_set()  # the other process is writing
        release.set()
        assert acquired.wait(5)  # woken as soon as it is done
        let_go.set()
    finally:
        release.set()
        other.join(10)


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lv.db'}")
    first, let_first_go = _acquired_within(engine, 5)
    assert first.is_set()
    second, let_second_go = _acquired_within(engine, 0.3)
    assert not second.is_set()
    let_first_go.set()
    assert second.wait(5)
    let_second_go.set()


def test_other_databases_need_no_writer_lock() -> None:
    for url in ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "sqlite://"):
        assert isinstance(writer_lock(make_engine(url)), contextlib.nullcontext)
