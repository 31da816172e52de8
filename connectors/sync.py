"""The sync engine: pull an account's changed orders through its connector into the vault, crash-safely.

Each page is one transaction: its orders are upserted (``vault.orders.store_order``, idempotent by account
and marketplace order id), then the cursor that covers them is stored, then the lease is renewed, then
commit. A crash anywhere leaves the database at a page boundary with the cursor matching the stored orders,
so a re-run neither loses nor duplicates an order (windows overlap; the upserts absorb repeats). The last
page's transaction also writes the run's ``last_sync`` and gives the lease up, so a quiet account's sync
is two transactions: the lease's, and its one page's.

One account is synced by one run at a time: a lease row (``SyncState``) is taken with a conditional UPDATE,
renewed with every page commit (which also fences a run whose lease was taken over: its page rolls back),
and released at the end. A crashed holder's lease runs out; on the same host a dead holder's is taken over
at once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from connectors.interfaces import Connector, ConnectorError, ConnectorStats, SyncCursor
from vault.alarms import TEXT_REPAIRED, Alarm, record_alarm
from vault.db import rowcount
from vault.keys import KeyManager
from vault.models import MarketplaceAccount, Order, SyncState, utcnow
from vault.orders import store_order
from vault.records import OrderStatus
from vault.retention import erase_ended

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
#: Statuses in which an order ended without a label: its label data is erased by the sync that sees it.
_ENDED = frozenset({OrderStatus.CANCELLED, OrderStatus.UNFULFILLABLE})


class SyncBusy(ConnectorError):
    """Another run holds this account's sync lease (it is being synced right now)."""


class LeaseLost(ConnectorError):
    """This run's lease ran out and another run took the account over; the current page was rolled back."""


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Reported after every committed page (for progress bars)."""

    pages: int
    orders: int
    fraction: float | None


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What one sync run did. Counts and timings only: safe to print, log and store."""

    account_id: int
    orders_new: int
    orders_updated: int
    orders_unchanged: int
    pages: int
    calls: int
    throttled: int
    retries: int
    seconds: float
    cursor: datetime | None
    #: The connector's notices for the seller (non-PII codes such as ``"protected-data-redacted"``).
    notices: tuple[str, ...] = ()

    @property
    def orders_seen(self) -> int:
        """Every order the run received (an order served twice counts twice)."""
        return self.orders_new + self.orders_updated + self.orders_unchanged

    def as_json(self) -> dict[str, Any]:
        """The summary as stored in ``MarketplaceAccount.last_sync``."""
        data = asdict(self)
        data["cursor"] = self.cursor.isoformat() if self.cursor else None
        data["notices"] = list(self.notices)
        return data


# The statements of every sync, built once with bound parameters on the tables (Core, no ORM bulk-update
# machinery): building and cache-keying an UPDATE per call was a tenth of a warm sync's CPU.
_STATE = cast(Table, SyncState.__table__)
_ACCOUNTS = cast(Table, MarketplaceAccount.__table__)
_ACCOUNT = _ACCOUNTS.c.id == bindparam("b_account")
_TAKE_VALUES: dict[str, Any] = {
    "lease_owner": bindparam("b_owner"),
    "lease_expires_at": bindparam("b_expires"),
    "updated_at": bindparam("b_now"),
}
#: What taking the lease reads in the same statement: the half-paged window, the account's cursor, and
#: whether the account is live (a count: 0 for a removed or missing account).
_TAKE_RETURNING = (
    _STATE.c.window_end,
    _STATE.c.page_token,
    select(_ACCOUNTS.c.sync_cursor).where(_ACCOUNT).scalar_subquery(),
    select(func.count()).select_from(_ACCOUNTS).where(_ACCOUNT, _ACCOUNTS.c.removed_at.is_(None)).scalar_subquery(),
)
#: Take a free, own or expired lease.
_TAKE_FREE = (
    update(_STATE)
    .where(
        _STATE.c.account_id == bindparam("b_account"),
        _STATE.c.lease_owner.is_(None)
        | (_STATE.c.lease_owner == bindparam("b_owner"))
        | (_STATE.c.lease_expires_at < bindparam("b_now")),
    )
    .values(_TAKE_VALUES)
    .returning(*_TAKE_RETURNING)
)
#: Take the lease of a dead holder, only if it still holds it.
_TAKE_FROM = (
    update(_STATE)
    .where(_STATE.c.account_id == bindparam("b_account"), _STATE.c.lease_owner == bindparam("b_holder"))
    .values(_TAKE_VALUES)
    .returning(*_TAKE_RETURNING)
)
#: A page's cursor, with the lease renewed: only while this run holds it (0 rows: the lease was lost).
_PAGE_STATE = (
    update(_STATE)
    .where(_STATE.c.account_id == bindparam("b_account"), _STATE.c.lease_owner == bindparam("b_owner"))
    .values(
        lease_expires_at=bindparam("b_expires"),
        window_end=bindparam("b_window_end"),
        page_token=bindparam("b_page_token"),
        updated_at=bindparam("b_now"),
    )
)
_RELEASE = (
    update(_STATE)
    .where(_STATE.c.account_id == bindparam("b_account"), _STATE.c.lease_owner == bindparam("b_owner"))
    .values(lease_owner=None, lease_expires_at=None, updated_at=bindparam("b_now"))
)
#: The last page's cursor with the lease given up, in the page's own transaction: only while this run holds it.
_LAST_PAGE_STATE = (
    update(_STATE)
    .where(_STATE.c.account_id == bindparam("b_account"), _STATE.c.lease_owner == bindparam("b_owner"))
    .values(
        lease_owner=None,
        lease_expires_at=None,
        window_end=bindparam("b_window_end"),
        page_token=bindparam("b_page_token"),
        updated_at=bindparam("b_now"),
    )
)
_SET_CURSOR = update(_ACCOUNTS).where(_ACCOUNT).values(sync_cursor=bindparam("b_value"))
_SET_LAST_SYNC = update(_ACCOUNTS).where(_ACCOUNT).values(last_sync=bindparam("b_value"))
#: The last page's cursor and the run's ``last_sync``, in one statement.
_SET_CURSOR_AND_LAST_SYNC = (
    update(_ACCOUNTS).where(_ACCOUNT).values(sync_cursor=bindparam("b_cursor"), last_sync=bindparam("b_last"))
)


def lease_owner_id() -> str:
    """A lease owner name for this process: host, pid (to spot a dead holder) and a random suffix."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_dead(owner: str) -> bool:
    """Whether ``owner`` names a process on this host that no longer exists (a crashed run)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname()[:80] or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _ensure_state_row(session: Session, account_id: int) -> None:
    """Create the account's SyncState row if missing, race-free (two runs may try at once)."""
    dialect = session.get_bind().dialect.name
    values = {"account_id": account_id, "updated_at": utcnow()}
    if dialect == "postgresql":
        session.execute(pg_insert(SyncState).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        session.execute(sqlite_insert(SyncState).values(**values).on_conflict_do_nothing())
    elif session.get(SyncState, account_id) is None:
        session.add(SyncState(**values))
    session.flush()


@dataclass(frozen=True, slots=True)
class _Lease:
    """What taking the lease read in the same statement: the account's cursor, as committed, and whether the
    account is still live (so a sync needs no other read before its first call)."""

    cursor: SyncCursor
    live: bool


def acquire_lease(
    session: Session, *, account_id: int, owner: str, duration: timedelta = DEFAULT_LEASE, now: datetime | None = None
) -> bool:
    """Take (or renew) the account's sync lease for ``owner``; False if a live run holds it. Commits."""
    return _acquire(session, account_id, owner, duration, now or utcnow()) is not None


def _acquire(session: Session, account_id: int, owner: str, duration: timedelta, now: datetime) -> _Lease | None:
    """Take the lease and read the cursor with it; None if a live run holds it. Commits.

    One conditional ``UPDATE … RETURNING`` and a commit when the account's lease row exists and is free, as
    it is for every sync but an account's first (which creates the row, race-free, first): a worker syncing
    thousands of accounts pays for each round trip of each sync.
    """
    taken = _take_lease(session, _TAKE_FREE, account_id, owner, duration, now)
    if taken is None:
        held = _holder(session, account_id)
        if held is None:  # the account's first sync: create the row, then take it like any other run
            _ensure_state_row(session, account_id)
            session.commit()
            taken = _take_lease(session, _TAKE_FREE, account_id, owner, duration, now)
            held = None if taken is not None else _holder(session, account_id)
        holder = held[0] if held is not None else None
        if taken is None and holder and _holder_is_dead(holder):
            # Only if the dead holder still holds it: another run may have got there first.
            taken = _take_lease(session, _TAKE_FROM, account_id, owner, duration, now, holder=holder)
            if taken is not None:
                log.info("account %d: took over the sync lease of a crashed run", account_id)
    session.commit()
    return taken


def _holder(session: Session, account_id: int) -> tuple[str | None] | None:
    """The lease row's owner, as a 1-tuple; None if the account has no lease row yet."""
    row = session.execute(select(SyncState.lease_owner).where(SyncState.account_id == account_id)).first()
    return None if row is None else (row[0],)


def _take_lease(
    session: Session,
    statement: Any,
    account_id: int,
    owner: str,
    duration: timedelta,
    now: datetime,
    holder: str | None = None,
) -> _Lease | None:
    """Run one of the lease-taking UPDATEs: the cursor it guards, or None if the lease wasn't free."""
    params = {"b_account": account_id, "b_owner": owner, "b_expires": now + duration, "b_now": now}
    if holder is not None:
        params["b_holder"] = holder
    row = session.connection().execute(statement, params).first()
    if row is None:
        return None
    window_end, page_token, updated_after, live = tuple(row)
    return _Lease(SyncCursor(updated_after=updated_after, window_end=window_end, page_token=page_token), bool(live))


def release_lease(session: Session, *, account_id: int, owner: str) -> None:
    """Give the lease up (only if ``owner`` still holds it). Commits."""
    _release(session, account_id, owner)
    session.commit()


def _release(session: Session, account_id: int, owner: str) -> None:
    session.connection().execute(_RELEASE, {"b_account": account_id, "b_owner": owner, "b_now": utcnow()})


def _set_account(session: Session, account: MarketplaceAccount, statement: Any, name: str, value: Any) -> None:
    """Write one column of the account (``statement``: its UPDATE) and show the value on the object."""
    session.connection().execute(statement, {"b_account": account.id, "b_value": value})
    set_committed_value(account, name, value)


def sync_account(
    sessions: Session | sessionmaker[Session],
    *,
    keys: KeyManager,
    account: MarketplaceAccount | int,
    connector: Connector,
    owner: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    wait: float = 0.0,
    progress: Callable[[SyncProgress], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> SyncSummary:
    """Sync one account's changed orders into the vault, committing per page; see the module docstring.

    Raises :class:`SyncBusy` if another run holds the account (after waiting up to ``wait`` seconds),
    :class:`LeaseLost` if the lease is taken over mid-run, and the connector's or vault's errors as they
    come (the page in flight is rolled back; the next run resumes from the last committed page).
    """
    if isinstance(sessions, Session):
        return _sync(sessions, keys, account, connector, owner, lease, wait, progress, clock)
    with sessions() as session:
        return _sync(session, keys, account, connector, owner, lease, wait, progress, clock)


def _sync(
    session: Session,
    keys: KeyManager,
    account_ref: MarketplaceAccount | int,
    connector: Connector,
    owner: str | None,
    lease: timedelta,
    wait: float,
    progress: Callable[[SyncProgress], None] | None,
    clock: Callable[[], datetime],
) -> SyncSummary:
    account_id = account_ref if isinstance(account_ref, int) else account_ref.id
    owner = owner or lease_owner_id()
    started = time.monotonic()
    deadline = started + wait
    while (taken := _acquire(session, account_id, owner, lease, clock())) is None:
        if time.monotonic() >= deadline:
            raise SyncBusy(f"account {account_id} is being synced by another run")
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    # The lease statement read the cursor and liveness as committed; the account's other columns are read
    # now, or are the session's copy (run_sync loaded the account in this session a moment ago).
    account = (
        account_ref if isinstance(account_ref, MarketplaceAccount) else session.get(MarketplaceAccount, account_id)
    )
    if account is None or not taken.live:
        release_lease(session, account_id=account_id, owner=owner)
        raise ConnectorError(f"account {account_id} does not exist or was removed")
    set_committed_value(account, "sync_cursor", taken.cursor.updated_after)
    before = connector.stats()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    pages = 0
    cursor = taken.cursor
    summary: SyncSummary | None = None
    try:
        for page in connector.pull(cursor):
            _store_page(session, keys, account, page.orders, counts, clock())
            now = clock()
            params = {
                "b_account": account_id,
                "b_owner": owner,
                "b_window_end": page.cursor.window_end,
                "b_page_token": page.cursor.page_token,
                "b_now": now,
            }
            if page.last:
                # The last page commits with the run's summary and the lease given up: a quiet account's
                # sync is one transaction after the lease's, not three.
                summary = _summary(account_id, before, connector, counts, pages + 1, started, page.cursor)
                last_sync = {"ok": True, "finished_at": clock().isoformat(), **summary.as_json()}
                if not rowcount(session.connection().execute(_LAST_PAGE_STATE, params)):
                    session.rollback()
                    raise LeaseLost(f"account {account_id}: sync lease lost to another run; page rolled back")
                session.connection().execute(
                    _SET_CURSOR_AND_LAST_SYNC,
                    {"b_account": account_id, "b_cursor": page.cursor.updated_after, "b_last": last_sync},
                )
                set_committed_value(account, "sync_cursor", page.cursor.updated_after)
                set_committed_value(account, "last_sync", last_sync)
            else:
                params["b_expires"] = now + lease
                if not rowcount(session.connection().execute(_PAGE_STATE, params)):
                    session.rollback()
                    raise LeaseLost(f"account {account_id}: sync lease lost to another run; page rolled back")
                _set_account(session, account, _SET_CURSOR, "sync_cursor", page.cursor.updated_after)
            session.commit()
            cursor = page.cursor
            pages += 1
            if progress is not None:
                progress(SyncProgress(pages=pages, orders=sum(counts.values()), fraction=page.progress))
            if page.last:
                break
    except BaseException as exc:
        session.rollback()
        _record_failure(session, account, exc, clock)
        release_lease(session, account_id=account_id, owner=owner)
        raise
    if summary is None:  # the connector ended without a page marked last: finish the run on its own
        summary = _summary(account_id, before, connector, counts, pages, started, cursor)
        last_sync = {"ok": True, "finished_at": clock().isoformat(), **summary.as_json()}
        _set_account(session, account, _SET_LAST_SYNC, "last_sync", last_sync)
        _release(session, account_id, owner)  # in the same transaction: one commit less per sync
        session.commit()
    log.info(
        "account %d synced: %d new, %d updated, %d unchanged, %d calls, %d throttled, %.1fs",
        account_id,
        summary.orders_new,
        summary.orders_updated,
        summary.orders_unchanged,
        summary.calls,
        summary.throttled,
        summary.seconds,
    )
    return summary


def _summary(
    account_id: int,
    before: ConnectorStats,
    connector: Connector,
    counts: dict[str, int],
    pages: int,
    started: float,
    cursor: SyncCursor,
) -> SyncSummary:
    after = connector.stats()
    return SyncSummary(
        account_id=account_id,
        orders_new=counts["created"],
        orders_updated=counts["updated"],
        orders_unchanged=counts["unchanged"],
        pages=pages,
        calls=after.calls - before.calls,
        throttled=after.throttled - before.throttled,
        retries=after.retries - before.retries,
        seconds=round(time.monotonic() - started, 3),
        cursor=cursor.updated_after,
        notices=after.notices,
    )


def _store_page(
    session: Session,
    keys: KeyManager,
    account: MarketplaceAccount,
    orders: Any,
    counts: dict[str, int],
    now: datetime,
) -> None:
    ids = [facts.external_order_id for facts, _ in orders]
    stored: dict[str, datetime] = {}
    flagged: set[str] = set()  # already marked repaired: the seller was told
    if ids:
        rows = session.execute(
            select(Order.external_order_id, Order.last_updated_at, Order.text_repaired).where(
                Order.account_id == account.id, Order.external_order_id.in_(ids)
            )
        )
        for order_id, last_updated, repaired in rows:
            stored[order_id] = last_updated
            if repaired:
                flagged.add(order_id)
    ended: list[Order] = []
    repaired_now = 0
    retention: dict[tuple[int, str], int | None] = {}  # the tenant's policy, read once for the page
    for facts, label in orders:
        known = stored.get(facts.external_order_id)
        if known is not None and known > facts.last_updated_at:
            # An older copy (a resumed page snapshot, an overlap) must not roll a newer state back.
            counts["unchanged"] += 1
            continue
        result = store_order(
            session,
            keys=keys,
            account=account,
            facts=facts,
            label=label,
            retention_cache=retention,
            absent=facts.external_order_id not in stored,
        )
        if facts.status in _ENDED and result.order.erased_at is None:
            ended.append(result.order)
        counts[result.outcome] += 1
        stored[facts.external_order_id] = facts.last_updated_at
        if facts.text_repaired and facts.external_order_id not in flagged:
            repaired_now += 1
            flagged.add(facts.external_order_id)
    if repaired_now:
        # The order is stored (one bad name must not block the account), but its label may misprint the
        # name or address: the dashboard marks it, and this alarm tells the seller to look (counts only).
        record_alarm(
            session,
            alarm=Alarm(
                kind=TEXT_REPAIRED,
                tenant_id=account.tenant_id,
                subject=f"account:{account.id}",
                count=repaired_now,
                threshold=1,
                window_seconds=0,
            ),
        )
    if ended:
        # Nothing is left to ship, so the vault must not keep the address either (minimisation; Amazon's
        # Data Protection Policy): erased with this page, audited like a purge, unless a legal hold keeps it.
        erase_ended(session, order_ids=[order.id for order in ended], now=now)
        for order in ended:
            session.expire(order)


def _record_failure(
    session: Session, account: MarketplaceAccount, exc: BaseException, clock: Callable[[], datetime]
) -> None:
    """Note a failed run on the account for the dashboard: the error's type and (PII-free) message."""
    if not isinstance(exc, Exception):
        return  # KeyboardInterrupt / SystemExit: just let go
    try:
        message = str(exc) if isinstance(exc, ConnectorError) else ""
        account.last_sync = {
            "ok": False,
            "finished_at": clock().isoformat(),
            "error": type(exc).__name__,
            "message": message[:300],
        }
        session.commit()
    except Exception:  # the database itself may be what failed; the original error matters more
        session.rollback()
        log.warning("account %d: could not record the failed sync", account.id)
