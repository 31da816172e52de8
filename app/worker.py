"""Background work: what is due and how each job runs, for the task queue (app/tasks.py) and the embedded
scheduler alike.

Jobs: the sync of every marketplace account at its own interval (``sync_interval_seconds``; a failed sync
is tried again after at most five minutes), the retention purge and the key-epoch job at their intervals, and
the shipment confirmations (telling marketplaces the orders whose labels were bought shipped) every minute.
Every job is idempotent and safe to run twice at once: the sync engine holds a lease per account, the
purge claims disjoint batches, the key-epoch job takes an advisory lock, the confirmations lease each row.
On top of that a :class:`Gate` keeps the scheduler from queueing one job twice: a claim per account (held
from queueing until the task ends, or until it runs out) and one per interval for the purge, the key epoch
and the confirmations — in Redis when the task queue runs, so any number of schedulers agree, in memory for
the embedded scheduler.

:class:`EmbeddedScheduler` is the default without Redis (``flask worker run --embedded``): one thread in
the process that runs due jobs one after another.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from app.observability import TASKS
from app.services import Services
from connectors.confirmations import ConfirmSummary, confirm_due
from connectors.interfaces import Connector, ConnectorError
from connectors.registry import connector_for_account
from connectors.sync import SyncBusy, SyncSummary, sync_account
from vault.epochs import EpochReport, run_key_epoch
from vault.models import MarketplaceAccount, utcnow
from vault.retention import PurgeResult, purge_due

log = logging.getLogger(__name__)

#: A failed sync is due again after this long at most, whatever the account's interval.
FAILED_SYNC_RETRY = timedelta(minutes=5)

SYNC, PURGE, KEY_EPOCH, CONFIRM = "sync", "purge", "key-epoch", "confirm"


# -- what is due ---------------------------------------------------------------------------------------


def _finished_at(last_sync: dict[str, Any] | None) -> tuple[datetime | None, bool]:
    if not last_sync or not last_sync.get("finished_at"):
        return None, True
    try:
        return datetime.fromisoformat(str(last_sync["finished_at"])), bool(last_sync.get("ok"))
    except ValueError:
        return None, True


def due_accounts(services: Services, *, now: datetime | None = None) -> list[int]:
    """Live accounts whose sync is due at ``now``: never synced, or last synced ``sync_interval_seconds`` ago."""
    now = now or utcnow()
    with services.sessions() as session:
        rows = session.execute(
            select(MarketplaceAccount.id, MarketplaceAccount.sync_interval_seconds, MarketplaceAccount.last_sync)
            .where(MarketplaceAccount.removed_at.is_(None))
            .order_by(MarketplaceAccount.id)
        ).all()
    due: list[int] = []
    for account_id, interval, last in rows:
        finished, ok = _finished_at(last)
        wait = timedelta(seconds=interval)
        if not ok:
            wait = min(wait, FAILED_SYNC_RETRY)
        if finished is None or finished + wait <= now:
            due.append(account_id)
    return due


# -- connectors kept between syncs ----------------------------------------------------------------------


def connector_key(account: MarketplaceAccount, services: Services) -> str:
    """What a connector built for ``account`` depends on, as a digest: a change to any of it builds anew.

    The platform, region, API version, markets, endpoints, the sealed credentials as stored (a re-connect or a
    rotated refresh token re-seals them), and the settings the connector is built with. A digest, so the
    cache's keys hold no credential material.
    """
    s = services.settings
    h = hashlib.sha256()
    for part in (
        account.marketplace,
        account.region,
        account.api_version,
        "\x1f".join(account.marketplace_ids or ()),
        str(account.sandbox),
        account.api_endpoint or "",
        account.token_endpoint or "",
        str(account.credentials_key_version),
        repr(s.sync_speedup),
        "\x1f".join(sorted(s.endpoint_overrides)),
    ):
        h.update(part.encode() + b"\x00")
    h.update(account.credentials_envelope or b"")
    return h.hexdigest()


@dataclass
class _Kept:
    key: str
    connector: Connector
    since: float


class ConnectorCache:
    """Connectors kept between one account's syncs in a long-lived worker process.

    Building a connector for every sync costs a credentials unseal, and the first call of a fresh one
    exchanges the refresh token for an access token: a whole marketplace round trip (and a call against the
    platform's token quota) per sync, where a kept connector reuses its token for the hour it lasts. At
    fleet scale that is half of every sync's calls (``bench.fleet``).

    A connector is lent to one sync at a time (:meth:`take` removes it), given back only after a sync that
    went well (a failed one may have left it with a refused token or a broken connection: it is closed and
    the next sync builds afresh), and dropped when the account's :func:`connector_key` changes, when it idles
    ``max_idle`` seconds (its unsealed credentials do not outstay the account's use), or when the cache is
    over ``max_size`` (the longest idle go first). Thread-safe: a thread-pool worker shares one.
    """

    def __init__(
        self, *, max_idle: float = 3600.0, max_size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_idle <= 0 or max_size < 1:
            raise ValueError("max_idle must be positive and max_size at least 1")
        self.max_idle = max_idle
        self.max_size = max_size
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, _Kept] = OrderedDict()  # least recently given back first
        #: Syncs that had to build their connector, and syncs that reused a kept one.
        self.built = self.reused = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def take(self, account_id: int, key: str) -> Connector | None:
        """The account's kept connector if it was built for ``key`` (it is lent: give it back or close it)."""
        with self._lock:
            stale = self._expire()
            kept = self._kept.pop(account_id, None)
            if kept is not None and kept.key != key:
                stale.append(kept.connector)
                kept = None
            if kept is not None:
                self.reused += 1
            else:
                self.built += 1
        _close_all(stale)
        return kept.connector if kept is not None else None

    def give_back(self, account_id: int, key: str, connector: Connector) -> None:
        """Keep ``connector`` for the account's next sync."""
        with self._lock:
            stale = self._expire()
            previous = self._kept.pop(account_id, None)
            if previous is not None and previous.connector is not connector:
                stale.append(previous.connector)
            self._kept[account_id] = _Kept(key, connector, self._clock())
            while len(self._kept) > self.max_size:
                stale.append(self._kept.popitem(last=False)[1].connector)
        _close_all(stale)

    def forget(self, account_id: int) -> None:
        """Drop the account's connector (the account is gone)."""
        with self._lock:
            kept = self._kept.pop(account_id, None)
        if kept is not None:
            _close_all([kept.connector])

    def clear(self, *, close: bool = True) -> None:
        """Drop every kept connector, closing it (the worker is stopping) or not (in a forked child, whose
        copies of the parent's connections are the parent's to close)."""
        with self._lock:
            stale = [kept.connector for kept in self._kept.values()]
            self._kept.clear()
        if close:
            _close_all(stale)

    def _expire(self) -> list[Connector]:
        """Pop the connectors idle longer than ``max_idle`` (the lock is held; the caller closes them)."""
        limit = self._clock() - self.max_idle
        stale: list[Connector] = []
        while self._kept:
            first = next(iter(self._kept.values()))
            if first.since > limit:
                break
            stale.append(self._kept.popitem(last=False)[1].connector)
        return stale


def _close_all(connectors: list[Connector]) -> None:
    for connector in connectors:
        try:
            connector.close()
        except Exception as exc:  # closing is best effort: the connector is dropped either way
            log.warning("closing a connector failed (%s)", type(exc).__name__)


# -- the jobs ------------------------------------------------------------------------------------------


def run_sync(
    services: Services, account_id: int, *, wait: float = 0.0, connectors: ConnectorCache | None = None
) -> SyncSummary | None:
    """Sync one account now; None if another run holds it (that run will finish the account).

    With ``connectors`` the account's connector is taken from and given back to that cache (see
    :class:`ConnectorCache`); without, one is built for this sync and closed after it.
    """
    # One session for the look-up and the sync: a connection checked out (and pinged) once less per sync.
    with services.sessions() as session:
        account = session.get(MarketplaceAccount, account_id)
        if account is None or account.removed_at is not None:
            log.info("account %d is gone; nothing to sync", account_id, extra={"account_id": account_id})
            if connectors is not None:
                connectors.forget(account_id)
            return None
        key = connector_key(account, services)
        connector = connectors.take(account_id, key) if connectors is not None else None
        if connector is None:
            connector = connector_for_account(
                session,
                keys=services.keys,
                account=account,
                speedup=services.settings.sync_speedup,
                endpoint_overrides=services.settings.endpoint_overrides,
                shared_buckets=services.rate_buckets,
            )
        healthy = False
        try:
            summary = sync_account(session, keys=services.keys, account=account_id, connector=connector, wait=wait)
            healthy = True
            return summary
        except SyncBusy:
            healthy = True
            log.info("account %d is being synced by another run", account_id, extra={"account_id": account_id})
            return None
        finally:
            if healthy and connectors is not None:
                connectors.give_back(account_id, key, connector)
            else:
                connector.close()


def run_purge(services: Services) -> PurgeResult:
    """Erase every order past its retention deadline (see :func:`vault.retention.purge_due`)."""
    with services.sessions() as session:
        return purge_due(session)


def run_confirm(services: Services) -> ConfirmSummary:
    """Tell marketplaces the orders shipped whose confirmations are due (see :mod:`connectors.confirmations`)."""
    s = services.settings
    with services.sessions() as session:
        return confirm_due(session, services.keys, endpoint_overrides=s.endpoint_overrides, speedup=s.sync_speedup)


def run_epoch(services: Services) -> EpochReport:
    """Run whatever the key-epoch schedule has due (see :mod:`vault.epochs`)."""
    s = services.settings
    with services.sessions() as session:
        return run_key_epoch(
            session,
            keys=services.keys,
            epoch_length=timedelta(days=s.key_epoch_days),
            backup_retention=timedelta(days=s.backup_retention_days),
        )


# -- queueing each job at most once ---------------------------------------------------------------------


class Gate(Protocol):
    """Claims that keep a job from being queued twice (see the module docstring)."""

    def claim(self, name: str, *, seconds: float) -> bool:
        """Take ``name`` for ``seconds`` unless it is taken; True if this caller took it."""
        ...

    def release(self, name: str) -> None:
        """Give ``name`` up (the job ended)."""
        ...

    def claim_many(self, names: list[str], *, seconds: float) -> list[bool]:
        """:meth:`claim` each of ``names`` (one round trip where the store allows); whether each was taken."""
        ...


class MemoryGate:
    """Claims in process memory (the embedded scheduler: one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}
        self._clock = clock

    def claim(self, name: str, *, seconds: float) -> bool:
        now = self._clock()
        with self._lock:
            if self._until.get(name, 0.0) > now:
                return False
            self._until[name] = now + seconds
            return True

    def release(self, name: str) -> None:
        with self._lock:
            self._until.pop(name, None)

    def claim_many(self, names: list[str], *, seconds: float) -> list[bool]:
        return [self.claim(name, seconds=seconds) for name in names]


class RedisGate:
    """Claims in Redis (``SET NX EX``), shared by every scheduler and worker."""

    def __init__(self, client: Any, *, prefix: str) -> None:
        self.client = client
        self.prefix = prefix.rstrip(":") + ":jobs:"

    def claim(self, name: str, *, seconds: float) -> bool:
        return bool(self.client.set(self.prefix + name, b"1", nx=True, ex=max(1, round(seconds))))

    def release(self, name: str) -> None:
        self.client.delete(self.prefix + name)

    def claim_many(self, names: list[str], *, seconds: float) -> list[bool]:
        # One pipeline (no MULTI: each SET NX stands alone): a tick that finds thousands of accounts due, most
        # of them still queued from the last tick, makes one round trip instead of one per account.
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.set(self.prefix + name, b"1", nx=True, ex=max(1, round(seconds)))
        return [bool(taken) for taken in pipe.execute()]


def sync_claim(account_id: int) -> str:
    return f"{SYNC}:{account_id}"


@dataclass
class Dispatched:
    """What one scheduler tick queued."""

    syncs: list[int] = field(default_factory=list)
    purge: bool = False
    key_epoch: bool = False
    confirm: bool = False


def sync_batches(account_ids: list[int], *, spread: int, size: int) -> list[list[int]]:
    """Split a tick's due syncs into tasks: one account each while there are at most ``spread`` of them (every
    thread of the cluster can take one), else as few accounts per task as keeps ``spread`` tasks, at most
    ``size`` each.

    A task costs the worker as much as a quiet account's sync (the message taken, acknowledged and traced),
    so a tick that finds thousands of accounts due, as after an outage or when a fleet is added, is queued
    in batches, each synced account after account in its task; ``spread`` keeps as many tasks as threads,
    so the batches run side by side.
    """
    per_task = min(size, max(1, -(-len(account_ids) // spread)))
    return [account_ids[i : i + per_task] for i in range(0, len(account_ids), per_task)]


def dispatch_due(
    services: Services,
    *,
    gate: Gate,
    enqueue: Callable[[str, int | None], None],
    claim_seconds: float,
    now: datetime | None = None,
    enqueue_syncs: Callable[[list[int]], None] | None = None,
) -> Dispatched:
    """Queue every due job that is not queued or running already: ``enqueue(kind, account id or None)``.

    A sync's claim is held until its task releases it (or ``claim_seconds`` pass: a lost task frees it);
    the purge's and key epoch's claims last their interval, so each runs once per interval cluster-wide.
    With ``enqueue_syncs``, claimed syncs go to it in :func:`sync_batches` (a one-account batch still goes
    to ``enqueue``).
    """
    s = services.settings
    out = Dispatched()
    due = due_accounts(services, now=now)
    taken = gate.claim_many([sync_claim(account_id) for account_id in due], seconds=claim_seconds) if due else []
    claimed = [account_id for account_id, ok in zip(due, taken, strict=True) if ok]
    batches = (
        sync_batches(claimed, spread=s.sync_batch_spread, size=s.sync_batch_size)
        if enqueue_syncs is not None
        else [[account_id] for account_id in claimed]
    )
    for number, batch in enumerate(batches):
        try:
            if len(batch) == 1 or enqueue_syncs is None:
                enqueue(SYNC, batch[0])
            else:
                enqueue_syncs(batch)
        except Exception:
            for unsent in batches[number:]:  # this batch and the rest: queued by a later tick
                for account_id in unsent:
                    gate.release(sync_claim(account_id))
            raise
        out.syncs.extend(batch)
    if gate.claim(PURGE, seconds=s.purge_interval_seconds):
        enqueue(PURGE, None)
        out.purge = True
    if gate.claim(KEY_EPOCH, seconds=s.key_epoch_interval_seconds):
        enqueue(KEY_EPOCH, None)
        out.key_epoch = True
    if gate.claim(CONFIRM, seconds=s.confirm_interval_seconds):
        enqueue(CONFIRM, None)
        out.confirm = True
    return out


def run_job(
    services: Services,
    kind: str,
    account_id: int | None,
    *,
    gate: Gate | None = None,
    connectors: ConnectorCache | None = None,
) -> Any:
    """Run one queued job and release its claim (a sync's), whatever the outcome.

    ``connectors``: the process's :class:`ConnectorCache`, for a sync.
    """
    started = time.monotonic()
    outcome = "ok"
    try:
        if kind == SYNC:
            assert account_id is not None
            result: Any = run_sync(services, account_id, connectors=connectors)
            outcome = "ok" if result is not None else "skipped"
        elif kind == PURGE:
            result = run_purge(services)
        elif kind == KEY_EPOCH:
            result = run_epoch(services)
        elif kind == CONFIRM:
            result = run_confirm(services)
        else:
            raise ValueError(f"unknown job {kind!r}")
        return result
    except ConnectorError as exc:
        outcome = "failed"
        log.warning(
            "sync of account %s failed: %s", account_id, type(exc).__name__, extra={"task": kind, "outcome": outcome}
        )
        return None
    except BaseException:
        outcome = "failed"
        raise
    finally:
        if kind == SYNC and gate is not None and account_id is not None:
            gate.release(sync_claim(account_id))
        TASKS.labels(kind, outcome).inc()
        log.info(
            "job %s%s: %s in %.1f s",
            kind,
            "" if account_id is None else f" account {account_id}",
            outcome,
            time.monotonic() - started,
            extra={"task": kind, "outcome": outcome, "account_id": account_id},
        )


# -- the embedded scheduler -------------------------------------------------------------------------------


class EmbeddedScheduler:
    """Runs due syncs, purges, key epochs and confirmations in one background thread of this process (no Redis needed).

    For the demo and single-host installs. Each tick queues due jobs into a local list and runs them one
    after another; :meth:`stop` lets the job in progress finish its current page and returns.
    """

    def __init__(self, services: Services, *, tick: float | None = None) -> None:
        self.services = services
        self.tick = tick if tick is not None else services.settings.worker_tick_seconds
        self.gate = MemoryGate()
        self.connectors = ConnectorCache()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def run_once(self) -> Dispatched:
        """One tick: find what is due and run it all now."""
        queued: list[tuple[str, int | None]] = []
        dispatched = dispatch_due(
            self.services,
            gate=self.gate,
            enqueue=lambda kind, account_id: queued.append((kind, account_id)),
            claim_seconds=3600,
        )
        for kind, account_id in queued:
            if self._stop.is_set():
                if kind == SYNC and account_id is not None:
                    self.gate.release(sync_claim(account_id))
                continue
            try:
                run_job(self.services, kind, account_id, gate=self.gate, connectors=self.connectors)
            except Exception as exc:  # one failed job must not stop the scheduler
                log.error("job %s failed (%s)", kind, type(exc).__name__, extra={"task": kind})
        self.runs += 1
        return dispatched

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                log.error("scheduler tick failed (%s); trying again next tick", type(exc).__name__)
            self._stop.wait(self.tick)

    def start(self) -> EmbeddedScheduler:
        """Start the scheduler thread (daemon: it never keeps the process alive on its own)."""
        self._thread = threading.Thread(target=self._loop, name="labelvault-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the job in progress and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.connectors.clear()

    def wait(self) -> None:
        """Block until :meth:`stop` is called (from a signal handler)."""
        while not self._stop.wait(1.0):
            pass
        self.stop()
