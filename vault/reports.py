"""Read-only views of one tenant for the seller dashboard: order search, daily activity, key and sync status,
the audit log. Nothing here returns PII: orders come back as their non-PII facts, masked by the caller's
choice (:func:`masked_orders`), and audit events hold references only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from vault.errors import DecryptionError, KeyServiceUnavailable
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.masking import masked_summary
from vault.models import (
    ApiClient,
    AuditEvent,
    LabelRecordRow,
    LegalHold,
    MarketplaceAccount,
    Order,
    SyncState,
    TenantKey,
    utcnow,
)
from vault.records import OrderStatus
from vault.release import RELEASE_ACTION

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """An order search: every given criterion must match (order id: a prefix of the marketplace's id)."""

    order_id: str = ""
    status: str = ""
    purchased_from: date | None = None
    purchased_to: date | None = None
    account_id: int | None = None
    include_erased: bool = True


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results, and how many there are in all."""

    items: Sequence[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class MaskedOrder:
    """An order as the dashboard lists it: facts, and a masked summary of where it goes (never the address)."""

    order: Order
    summary: str  # "J*** S****, 150-**** JP", "" when the order holds no label data


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=utcnow().tzinfo)


def search_orders(
    session: Session, *, tenant_id: int, query: OrderQuery, page: int = 1, per_page: int = 25
) -> Page[Order]:
    """The tenant's orders matching ``query``, newest purchase first."""
    stmt: Select[Any] = select(Order).where(Order.tenant_id == tenant_id)
    if query.order_id.strip():
        stmt = stmt.where(Order.external_order_id.startswith(query.order_id.strip(), autoescape=True))
    if query.status == "erased":
        stmt = stmt.where(Order.erased_at.is_not(None))
    elif query.status:
        stmt = stmt.where(Order.status == query.status)
    if query.purchased_from is not None:
        stmt = stmt.where(Order.purchased_at >= _day_start(query.purchased_from))
    if query.purchased_to is not None:
        stmt = stmt.where(Order.purchased_at < _day_start(query.purchased_to) + timedelta(days=1))
    if query.account_id is not None:
        stmt = stmt.where(Order.account_id == query.account_id)
    if not query.include_erased:
        stmt = stmt.where(Order.erased_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = max(1, page)
    items = session.scalars(
        stmt.order_by(Order.purchased_at.desc(), Order.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(items, int(total), page, per_page)


def masked_orders(session: Session, *, keys: KeyManager, orders: Sequence[Order]) -> list[MaskedOrder]:
    """Each order with its masked ship-to summary. A record that can't be opened shows as unavailable."""
    out = []
    for order in orders:
        summary = ""
        if order.label is not None:
            try:
                summary = masked_summary(unseal_label(session, keys=keys, order=order))
            except (DecryptionError, KeyServiceUnavailable):
                summary = "?"
        out.append(MaskedOrder(order, summary))
    return out


@dataclass(frozen=True, slots=True)
class DayActivity:
    """One day's counts: orders first synced, labels released, label requests refused."""

    day: date
    orders: int
    labels: int
    refusals: int


def daily_activity(
    session: Session, *, tenant_id: int, days: int = 14, now: datetime | None = None
) -> list[DayActivity]:
    """The last ``days`` days (UTC, oldest first), today included."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = _day_start(first)
    orders: dict[date, int] = {}
    for (created,) in session.execute(
        select(Order.created_at).where(Order.tenant_id == tenant_id, Order.created_at >= since)
    ):
        orders[created.date()] = orders.get(created.date(), 0) + 1
    labels: dict[date, int] = {}
    refusals: dict[date, int] = {}
    for occurred, outcome in session.execute(
        select(AuditEvent.occurred_at, AuditEvent.outcome).where(
            AuditEvent.tenant_id == tenant_id,
            AuditEvent.occurred_at >= since,
            AuditEvent.action == RELEASE_ACTION,
        )
    ):
        target = labels if outcome == "released" else refusals if outcome.startswith("refused") else None
        if target is not None:
            target[occurred.date()] = target.get(occurred.date(), 0) + 1
    return [
        DayActivity(d, orders.get(d, 0), labels.get(d, 0), refusals.get(d, 0))
        for d in (first + timedelta(days=i) for i in range(days))
    ]


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """One marketplace account's sync health."""

    account: MarketplaceAccount
    orders: int
    running: bool
    last_sync: dict[str, Any]


def account_health(session: Session, *, tenant_id: int, now: datetime | None = None) -> list[AccountHealth]:
    """The tenant's live accounts with order counts, whether a sync runs now, and the last sync's result."""
    now = now or utcnow()
    out = []
    for account in session.scalars(
        select(MarketplaceAccount)
        .where(MarketplaceAccount.tenant_id == tenant_id, MarketplaceAccount.removed_at.is_(None))
        .order_by(MarketplaceAccount.name)
    ):
        count = session.scalar(select(func.count()).where(Order.account_id == account.id)) or 0
        state = session.get(SyncState, account.id, populate_existing=True)
        running = bool(
            state is not None
            and state.lease_owner is not None
            and state.lease_expires_at is not None
            and state.lease_expires_at > now
        )
        out.append(AccountHealth(account, int(count), running, dict(account.last_sync or {})))
    return out


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The tenant's key versions and how many records each protects."""

    active_version: int | None
    active_since: datetime | None
    versions: list[tuple[int, str, int]]  # (version, state, label records)


def key_status(session: Session, *, tenant_id: int) -> KeyStatus:
    """Which tenant key version is active since when, and every version's state and record count."""
    counts: dict[int, int] = {}
    for version, n in session.execute(
        select(LabelRecordRow.tenant_key_version, func.count())
        .where(LabelRecordRow.tenant_id == tenant_id)
        .group_by(LabelRecordRow.tenant_key_version)
    ):
        counts[version] = n
    rows = session.scalars(select(TenantKey).where(TenantKey.tenant_id == tenant_id).order_by(TenantKey.version)).all()
    active = next((r for r in rows if r.state == "active"), None)
    return KeyStatus(
        active.version if active else None,
        active.created_at if active else None,
        [(r.version, r.state, counts.get(r.version, 0)) for r in rows],
    )


@dataclass(frozen=True, slots=True)
class RetentionStatus:
    """At a glance: orders holding label data, how many are past their deadline, holds in force."""

    live_records: int
    due_now: int
    erased: int
    holds: int
    next_deadline: datetime | None


def retention_status(session: Session, *, tenant_id: int, now: datetime | None = None) -> RetentionStatus:
    """The tenant's retention at a glance (due orders wait for the next purge run, or a hold)."""
    now = now or utcnow()
    live = Order.tenant_id == tenant_id
    held = session.scalar(
        select(func.count())
        .select_from(LegalHold)
        .where(LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_(None), LegalHold.ends_at > now)
    )
    return RetentionStatus(
        live_records=int(session.scalar(select(func.count()).where(live, Order.erased_at.is_(None))) or 0),
        due_now=int(
            session.scalar(select(func.count()).where(live, Order.erased_at.is_(None), Order.retention_until <= now))
            or 0
        ),
        erased=int(session.scalar(select(func.count()).where(live, Order.erased_at.is_not(None))) or 0),
        holds=int(held or 0),
        next_deadline=session.scalar(
            select(func.min(Order.retention_until)).where(live, Order.erased_at.is_(None), Order.retention_until > now)
        ),
    )


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """An audit log filter: client key id, order id (or marketplace:order id), action, dates (UTC, inclusive)."""

    client: str = ""
    order: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None


def _audit_stmt(tenant_id: int, query: AuditQuery) -> Select[Any]:
    stmt: Select[Any] = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if query.client.strip():
        ref = query.client.strip()
        stmt = stmt.where(
            or_(
                AuditEvent.actor == f"client:{ref}",
                AuditEvent.actor == ref,
                AuditEvent.details["client"].as_string() == ref,
            )
        )
    if query.order.strip():
        ref = query.order.strip()
        stmt = stmt.where(or_(AuditEvent.order_ref == ref, AuditEvent.order_ref.endswith(f":{ref}", autoescape=True)))
    if query.action.strip():
        stmt = stmt.where(AuditEvent.action == query.action.strip())
    if query.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= _day_start(query.since))
    if query.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < _day_start(query.until) + timedelta(days=1))
    return stmt


def search_audit(
    session: Session, *, tenant_id: int, query: AuditQuery, page: int = 1, per_page: int = 50
) -> Page[AuditEvent]:
    """The tenant's audit events matching ``query``, newest first."""
    stmt = _audit_stmt(tenant_id, query)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = max(1, page)
    items = session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items, int(total), page, per_page)


def iter_audit(session: Session, *, tenant_id: int, query: AuditQuery, batch_size: int = 1000) -> Any:
    """Every matching event, oldest first, in batches (for export)."""
    stmt = _audit_stmt(tenant_id, query).order_by(AuditEvent.seq)
    last = 0
    while True:
        rows = session.scalars(stmt.where(AuditEvent.seq > last).limit(batch_size)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def audit_actions(session: Session, *, tenant_id: int) -> list[str]:
    """The distinct actions in the tenant's chain (for the filter)."""
    return sorted(
        a for a in session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id).distinct()) if a
    )


def clients_of(session: Session, *, tenant_id: int) -> list[ApiClient]:
    """The tenant's API clients, live ones first, then by name."""
    return list(
        session.scalars(
            select(ApiClient)
            .where(ApiClient.tenant_id == tenant_id)
            .order_by(ApiClient.revoked_at.is_not(None), ApiClient.name)
        )
    )


def holds_of(session: Session, *, tenant_id: int) -> list[LegalHold]:
    """The tenant's legal holds, newest first."""
    return list(
        session.scalars(select(LegalHold).where(LegalHold.tenant_id == tenant_id).order_by(LegalHold.id.desc()))
    )


#: The most orders the print run lists (a batch releases at most 500; the label API's limit too).
SHIP_QUEUE_MAX = 500


@dataclass(frozen=True, slots=True)
class ShipQueue:
    """The seller's daily print run: orders past their ship-by time, and those due by the end of today."""

    overdue: Sequence[Order]
    today: Sequence[Order]


def ship_queue(session: Session, *, tenant_id: int, now: datetime, day_ends: datetime) -> ShipQueue:
    """The tenant's orders still to ship by ``day_ends`` (the end of the seller's today), earliest first.

    Only orders a label may be printed for count (a status that allows labels, label data held, not
    erased); ``overdue`` are those whose ship-by time is before ``now``.
    """
    shippable = [s.value for s in OrderStatus if s.labels_allowed]
    rows = session.scalars(
        select(Order)
        .join(LabelRecordRow, LabelRecordRow.order_id == Order.id)
        .where(
            Order.tenant_id == tenant_id,
            Order.status.in_(shippable),
            Order.erased_at.is_(None),
            Order.ship_by.is_not(None),
            Order.ship_by < day_ends,
        )
        .order_by(Order.ship_by, Order.id)
        .limit(SHIP_QUEUE_MAX)
    ).all()
    overdue = [o for o in rows if o.ship_by is not None and o.ship_by < now]
    return ShipQueue(overdue=overdue, today=[o for o in rows if o not in overdue])
