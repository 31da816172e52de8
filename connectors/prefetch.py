"""The next page, fetched while the caller stores this one: one thread per paging run, started only when a
next page is asked for.

A connector's ``pull`` hands out a page and, while the sync engine stores it, fetches the next one (waiting
for its rate-limit token) in a thread of its own, so a many-page sync takes as long as the slower of the two
instead of their sum. A quiet account's sync is one page: its first fetch runs in the caller's thread, and no
thread is started, joined or handed a future at all (``bench.fleet``: most syncs of a fleet are such).

Only a stored page's cursor is ever handed out, so a crash just drops a prefetched page.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


class Prefetcher:
    """At most one fetch ahead, in a thread started on the first :meth:`ahead` (never, when disabled).

    Use it as a context manager around the paging loop: leaving it cancels a fetch not yet started and
    waits for one in flight, so no thread outlives the run.
    """

    def __init__(self, *, enabled: bool, name: str) -> None:
        self.enabled = enabled
        self.name = name
        self._pool: ThreadPoolExecutor | None = None

    def ahead(self, fetch: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T] | None:
        """Start ``fetch(*args, **kwargs)`` in the prefetch thread; None when prefetching is off (the caller
        fetches inline when it needs the page)."""
        if not self.enabled:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return self._pool.submit(fetch, *args, **kwargs)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
