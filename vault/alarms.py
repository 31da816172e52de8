"""Alarms Amazon's Data Protection Policy asks for: unusual label volume, ineligible orders, repeated refusals.

Three detectors, each counting events in sliding windows (:class:`WindowStore`: Redis when configured, so
every worker process counts into one window; process memory otherwise):

- ``unusual_rate``: an API client released far more labels in the recent window than its usual rate (the
  rest of the baseline window, scaled to the recent window's length) times a factor, and at least a floor;
- ``ineligible_orders``: a client asked for labels of orders outside the eligible states (cancelled,
  shipped, erased, past retention) more than a threshold within the alarm window;
- ``repeated_refusals``: one address was refused (network, key, scope, rate limit, unknown order) more
  than a threshold within the alarm window.

A fourth alarm, ``text_repaired``, has no window: a sync raises it for the orders whose ship-to text it
had to repair (:func:`vault.records.repair_text`), once per order, so the seller checks their labels.

An alarm of the three detectors is itself rate-limited: the same kind for the same subject is raised at most once per
``repeat_seconds``, and at most :data:`MAX_ALARMS_PER_MINUTE` alarms are raised in all. A raised alarm
is appended to the audit chain (:func:`record_alarm`) with counts only, never PII.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from vault.audit import WrittenEvent, append_event
from vault.errors import RefusalReason, VaultError

ALARM_ACTOR = "system:alarms"
#: A sync stored orders whose ship-to text it had to repair (connectors/sync.py raises it, once per order).
TEXT_REPAIRED = "text_repaired"
#: Refusal reasons of the label pipeline that mean "an order outside the eligible states" (vault.release).
INELIGIBLE_REASONS = frozenset(
    {RefusalReason.STATUS, RefusalReason.CANCELLED, RefusalReason.ERASED, RefusalReason.RETENTION_EXPIRED}
)
#: Cap on alarms raised per minute, whatever the number of subjects (an alarm flood is an outage of its own).
MAX_ALARMS_PER_MINUTE = 30
#: Buckets per window: the sliding window is approximated to within one bucket's width.
BUCKETS = 10
#: Longest a process holds released labels before counting them in the store (while far below the floor).
FLUSH_SECONDS = 1.0


class AlarmStoreUnavailable(VaultError):
    """The window store (Redis) can't be reached; the event was not counted."""


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window of ``seconds``, counted in ``buckets`` buckets."""

    seconds: int
    buckets: int = BUCKETS

    @property
    def width(self) -> float:
        return self.seconds / self.buckets


class WindowStore(Protocol):
    """Counters in sliding windows, and one-shot markers; shared by every process that uses the same store.

    Implementations: :class:`MemoryWindowStore` (one process), :class:`RedisWindowStore` (all processes).
    Both raise :class:`AlarmStoreUnavailable` when the store can't be used.
    """

    def hit(
        self,
        counts: Sequence[tuple[str, Window]],
        *,
        now: float,
        also: Sequence[tuple[str, Window]] = (),
        amount: int = 1,
    ) -> list[int]:
        """Count ``amount`` events under each ``(name, window)``; return each window's total, these included.

        The events are also counted under each window of ``also``, whose totals are not read (:meth:`total`).
        """
        ...

    def total(self, name: str, window: Window, *, now: float) -> int:
        """The window's total now, counting nothing."""
        ...

    def once(self, name: str, *, seconds: int) -> bool:
        """True the first time ``name`` is asked for within ``seconds`` (across processes), False after."""
        ...


class MemoryWindowStore:
    """Windows in process memory: the embedded default (one process, no Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[int, int]] = {}
        self._marks: dict[str, float] = {}
        self._clock = clock

    def hit(
        self,
        counts: Sequence[tuple[str, Window]],
        *,
        now: float,
        also: Sequence[tuple[str, Window]] = (),
        amount: int = 1,
    ) -> list[int]:
        out: list[int] = []
        with self._lock:
            for position, (name, window) in enumerate([*counts, *also]):
                index = math.floor(now / window.width)
                buckets = self._buckets.setdefault(name, {})
                buckets[index] = buckets.get(index, 0) + amount
                for old in [b for b in buckets if b <= index - window.buckets]:
                    del buckets[old]
                if position < len(counts):  # ``also`` windows are counted, not read
                    out.append(sum(buckets.values()))
        return out

    def total(self, name: str, window: Window, *, now: float) -> int:
        index = math.floor(now / window.width)
        with self._lock:
            buckets = self._buckets.get(name, {})
            return sum(n for i, n in buckets.items() if i > index - window.buckets)

    def once(self, name: str, *, seconds: int) -> bool:
        now = self._clock()
        with self._lock:
            if self._marks.get(name, -math.inf) > now:
                return False
            self._marks[name] = now + seconds
            if len(self._marks) > 10_000:  # bounded: forget expired marks
                self._marks = {k: v for k, v in self._marks.items() if v > now}
            return True


class RedisWindowStore:
    """Windows in Redis: one bucket per key (``INCR`` + ``EXPIRE``), read with ``MGET``, one round trip."""

    def __init__(self, client: Any, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix.rstrip(":") + ":alarm:"

    def hit(
        self,
        counts: Sequence[tuple[str, Window]],
        *,
        now: float,
        also: Sequence[tuple[str, Window]] = (),
        amount: int = 1,
    ) -> list[int]:
        pipe = self.client.pipeline(transaction=False)
        for name, window in [*also, *counts]:
            key = f"{self.prefix}{name}:{math.floor(now / window.width)}"
            pipe.incrby(key, amount)
            pipe.expire(key, math.ceil(window.seconds + window.width) + 1)
        for name, window in counts:
            pipe.mget(self._bucket_keys(name, window, now))
        replies = self._execute(pipe)
        return [sum(int(v) for v in reply if v is not None) for reply in replies[-len(counts) :]] if counts else []

    def total(self, name: str, window: Window, *, now: float) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.mget(self._bucket_keys(name, window, now))
        return sum(int(v) for v in self._execute(pipe)[0] if v is not None)

    def _bucket_keys(self, name: str, window: Window, now: float) -> list[str]:
        index = math.floor(now / window.width)
        return [f"{self.prefix}{name}:{i}" for i in range(index - window.buckets + 1, index + 1)]

    @staticmethod
    def _execute(pipe: Any) -> list[Any]:
        from redis.exceptions import RedisError

        try:
            replies: list[Any] = pipe.execute()
        except RedisError as exc:
            raise AlarmStoreUnavailable(f"alarm window store unreachable ({type(exc).__name__})") from None
        return replies

    def once(self, name: str, *, seconds: int) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(self.client.set(f"{self.prefix}once:{name}", b"1", nx=True, ex=seconds))
        except RedisError as exc:
            raise AlarmStoreUnavailable(f"alarm window store unreachable ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True)
class AlarmPolicy:
    """Thresholds of the three detectors (``LABELVAULT_ALARM_*`` settings)."""

    window: int = 600
    rate_window: int = 300
    rate_baseline: int = 86_400
    rate_factor: float = 5.0
    rate_min: int = 200
    ineligible_threshold: int = 5
    refusal_threshold: int = 30
    repeat_seconds: int = 900


@dataclass(frozen=True, slots=True)
class Alarm:
    """One raised alarm: what, about whom (an API client's actor name or an address), counts. No PII."""

    kind: str  # unusual_rate | ineligible_orders | repeated_refusals | text_repaired
    tenant_id: int | None
    subject: str  # "client:<key id>", "ip:<address>" or "account:<id>"
    count: int
    threshold: float
    window_seconds: int
    ip: str | None = None

    @property
    def action(self) -> str:
        """The audit action, e.g. ``alarm.unusual_rate``."""
        return f"alarm.{self.kind}"


class AlarmMonitor:
    """Feeds events into the windows and says when one crosses its threshold (at most once per repeat period)."""

    def __init__(
        self,
        store: WindowStore,
        policy: AlarmPolicy,
        *,
        clock: Callable[[], float] = time.time,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        #: Releases this process holds, not yet in the store, by (tenant, client); written out by the next flush.
        self._pending: dict[tuple[int, str], int] = {}
        #: Each client's recent-window total as the store last returned it.
        self._known: dict[str, int] = {}
        self._next_flush = -math.inf
        self._recent = Window(policy.rate_window)
        self._usual = Window(policy.rate_baseline, buckets=max(BUCKETS, policy.rate_baseline // 3600))
        self._window = Window(policy.window)

    def label_released(self, *, tenant_id: int, client: str) -> list[Alarm]:
        """Count a released label for ``client``; ``unusual_rate`` alarms of clients far above their usual rate.

        Far below the alarm floor (``rate_min``) a process holds releases in memory and writes them to the
        store at most once per ``flush_seconds``: one store round trip a second instead of one per label,
        every label still counted. Once a client's last known total plus what this process holds reaches
        the floor, each of its releases is written and checked at once, as every alarm needs. A flush
        writes every client's held releases, so it can raise alarms for several clients.
        """
        now, key = self._clock(), (tenant_id, client)
        with self._lock:
            held = self._pending[key] = self._pending.get(key, 0) + 1
            due = now >= self._next_flush
            if not due and self._known.get(client, 0) + held < self.policy.rate_min:
                return []
            batch = list(self._pending.items()) if due else [(key, held)]
            for k, _ in batch:
                del self._pending[k]
            if due:
                self._next_flush = now + self._flush_seconds
        alarms = []
        for i, ((tenant, name), count) in enumerate(batch):
            try:
                alarm = self._count_releases(tenant, name, count, now)
            except AlarmStoreUnavailable:
                with self._lock:  # keep what could not be written for the next flush
                    for k, n in batch[i:]:
                        self._pending[k] = self._pending.get(k, 0) + n
                raise
            if alarm is not None:
                alarms.append(alarm)
        return alarms

    def _count_releases(self, tenant_id: int, client: str, count: int, now: float) -> Alarm | None:
        p, usual_name = self.policy, f"rate:{client}:usual"
        # The baseline window (a day of buckets) is counted on every write but read only once the recent
        # window has reached the floor: below it there is no alarm whatever the baseline.
        (recent,) = self.store.hit(
            [(f"rate:{client}:recent", self._recent)], now=now, also=[(usual_name, self._usual)], amount=count
        )
        with self._lock:
            self._known[client] = recent
        if recent < p.rate_min:
            return None
        usual = self.store.total(usual_name, self._usual, now=now)
        # The usual rate: labels of the baseline window outside the recent one, scaled to the recent window.
        expected = max(0, usual - recent) * p.rate_window / max(1, p.rate_baseline - p.rate_window)
        threshold = max(float(p.rate_min), expected * p.rate_factor)
        if recent < threshold:
            return None
        return self._raise(Alarm("unusual_rate", tenant_id, client, recent, round(threshold, 1), p.rate_window))

    def ineligible_requested(self, *, tenant_id: int, client: str, reason: RefusalReason) -> Alarm | None:
        """Count a refused label request if its ``reason`` code means an order outside the eligible states."""
        if reason not in INELIGIBLE_REASONS:
            return None
        (count,) = self.store.hit([(f"ineligible:{client}", self._window)], now=self._clock())
        threshold = self.policy.ineligible_threshold
        if count < threshold:
            return None
        return self._raise(Alarm("ineligible_orders", tenant_id, client, count, threshold, self.policy.window))

    def request_refused(self, *, ip: str, tenant_id: int | None = None) -> Alarm | None:
        """Count a refused request from ``ip``; ``repeated_refusals`` once it is refused too often."""
        (count,) = self.store.hit([(f"refused:{ip}", self._window)], now=self._clock())
        threshold = self.policy.refusal_threshold
        if count < threshold:
            return None
        return self._raise(
            Alarm("repeated_refusals", tenant_id, f"ip:{ip}", count, threshold, self.policy.window, ip=ip)
        )

    def _raise(self, alarm: Alarm) -> Alarm | None:
        if not self.store.once(f"{alarm.kind}:{alarm.subject}", seconds=self.policy.repeat_seconds):
            return None
        (raised,) = self.store.hit([("raised", Window(60, buckets=6))], now=self._clock())
        return alarm if raised <= MAX_ALARMS_PER_MINUTE else None


def record_alarm(session: Session, *, alarm: Alarm) -> WrittenEvent:
    """Append a raised alarm to the audit chain (the tenant's, or the platform's); the caller commits."""
    return append_event(
        session,
        tenant_id=alarm.tenant_id,
        actor=ALARM_ACTOR,
        action=alarm.action,
        outcome="raised",
        ip=alarm.ip,
        purpose="security-monitoring",
        details={
            "subject": alarm.subject,
            "count": alarm.count,
            "threshold": alarm.threshold,
            "window_seconds": alarm.window_seconds,
        },
    )
