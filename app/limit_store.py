"""The embedded rate-limit store: counts in this process's memory, behind the ``limits`` library's public
:class:`~limits.storage.Storage` interface, for all three of its strategies.

It differs from limits' own ``MemoryStorage`` in one way that matters under load: that one starts a timer
thread for its expiry sweep whenever the previous sweep has finished (one thread per 10 ms of steady
traffic); this one sweeps inline, at most once per :attr:`ProcessMemoryStorage.SWEEP_SECONDS`. Counts stay
exact either way, because every read checks its own key's expiry; the sweep only bounds memory. One lock
guards the whole store: every operation is a few dictionary steps, so threads hardly wait on it.

Only for one process (the embedded default, no Redis): every gunicorn worker would count on its own.
``lv-memory://`` names it for :func:`limits.storage.storage_from_string`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from limits.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage


class ProcessMemoryStorage(Storage, MovingWindowSupport, SlidingWindowCounterSupport):
    """Fixed-window counters, moving-window entries and sliding-window counters in process memory."""

    STORAGE_SCHEME = ["lv-memory"]  # noqa: RUF012 (the name limits registers; declared so by its base)
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._lock = threading.Lock()
        #: key → [count, expires at]: the fixed windows, and the sliding windows' two counters.
        self._counters: dict[str, list[float]] = {}
        #: key → (entry lifetime, entry times newest first): the moving windows. An entry beyond the
        #: limit's count can never decide a request, so each deque holds at most that many.
        self._entries: dict[str, tuple[float, deque[float]]] = {}
        self._next_sweep = time.time() + self.SWEEP_SECONDS

    def __len__(self) -> int:
        """How many keys the store holds (what has expired goes at the next sweep)."""
        with self._lock:
            return len(self._counters) + len(self._entries)

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # nothing in here talks to another process

    # -- the sweep ----------------------------------------------------------------------------------

    def _sweep(self, now: float) -> None:
        """Drop what has expired (lock held); at most once per ``SWEEP_SECONDS``."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        for key in [k for k, (_, expires) in self._counters.items() if expires <= now]:
            del self._counters[key]
        for key in [k for k, (life, times) in self._entries.items() if not times or times[0] + life <= now]:
            del self._entries[key]

    # -- counters: the fixed window ------------------------------------------------------------------

    def _count(self, key: str, now: float) -> int:
        counter = self._counters.get(key)
        if counter is None:
            return 0
        if counter[1] <= now:
            del self._counters[key]
            return 0
        return int(counter[0])

    def _incr(self, key: str, expiry: float, amount: int, now: float) -> int:
        counter = self._counters.get(key)
        if counter is None or counter[1] <= now:
            self._counters[key] = [amount, now + expiry]
            return amount
        counter[0] += amount
        return int(counter[0])

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` to the key's count (a new count lives ``expiry`` seconds); the count after it."""
        now = time.time()
        with self._lock:
            self._sweep(now)
            return self._incr(key, expiry, amount, now)

    def get(self, key: str) -> int:
        """The key's count (0 once expired)."""
        with self._lock:
            return self._count(key, time.time())

    def get_expiry(self, key: str) -> float:
        """When the key's count expires (epoch seconds); now if it has none."""
        now = time.time()
        with self._lock:
            counter = self._counters.get(key)
            return counter[1] if counter is not None and counter[1] > now else now

    def clear(self, key: str) -> None:
        """Forget the key's count and entries."""
        with self._lock:
            self._counters.pop(key, None)
            self._entries.pop(key, None)

    def reset(self) -> int | None:
        """Forget everything; how many keys there were."""
        with self._lock:
            n = len(self._counters) + len(self._entries)
            self._counters.clear()
            self._entries.clear()
            return n

    def check(self) -> bool:
        return True

    # -- entries: the moving window ------------------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take ``amount`` entries if fewer than ``limit - amount + 1`` were taken in the last ``expiry`` s."""
        if amount > limit:
            return False
        now = time.time()
        with self._lock:
            self._sweep(now)
            found = self._entries.get(key)
            if found is None:
                found = self._entries[key] = (float(expiry), deque(maxlen=limit))
            times = found[1]
            # The entry that would fall out of the window's count if this one were taken.
            if len(times) > limit - amount and times[limit - amount] >= now - expiry:
                return False
            times.extendleft([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The oldest entry time still in the window and the number of entries in it (``(now, 0)`` if none)."""
        now = time.time()
        with self._lock:
            found = self._entries.get(key)
            inside = [t for t in found[1] if t > now - expiry] if found is not None else []
        return (inside[-1], len(inside)) if inside else (now, 0)

    # -- two counters: the sliding window ------------------------------------------------------------

    @staticmethod
    def _window_keys(key: str, expiry: int, now: float) -> tuple[str, str]:
        """The counters of the previous and the current window: the key and the window's number."""
        return f"{key}/{int((now - expiry) / expiry)}", f"{key}/{int(now / expiry)}"

    def _sliding_window(self, key: str, expiry: int, now: float) -> tuple[str, int, float, int, float]:
        previous_key, current_key = self._window_keys(key, expiry, now)
        previous = self._count(previous_key, now)
        current = self._count(current_key, now)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return current_key, previous, previous_ttl, current, current_ttl

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Count ``amount`` in the current window if the weighted count of both windows stays within ``limit``."""
        if amount > limit:
            return False
        now = time.time()
        with self._lock:
            self._sweep(now)
            current_key, previous, previous_ttl, current, _ = self._sliding_window(key, expiry, now)
            if math.floor(previous * previous_ttl / expiry + current) + amount > limit:
                return False
            # A window's counter lives two windows: it is the previous window for the whole next one.
            self._incr(current_key, 2 * expiry, amount, now)
            return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """The previous window's count and time left, and the current window's."""
        with self._lock:
            _, previous, previous_ttl, current, current_ttl = self._sliding_window(key, expiry, time.time())
        return previous, previous_ttl, current, current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Forget both windows' counters of the key."""
        previous_key, current_key = self._window_keys(key, expiry, time.time())
        with self._lock:
            self._counters.pop(previous_key, None)
            self._counters.pop(current_key, None)
