"""Retention: how long an order's label data may be kept, legal holds that pause erasure, and the purge.

The rules (docs/privacy-controls.md states them for sellers and auditors):

- An order's label data is erased ``days_after_delivery`` (Amazon: 30) after delivery. Delivery is the time
  the marketplace reports; where it reports none, the latest delivery date it promised; where it reports
  neither, the ship-by date (or the purchase date) plus ``delivery_allowance_days``.
- A cancelled or unfulfillable order is due as soon as the marketplace reports it: no label will be printed,
  so the sync that sees it erases it (:func:`erase_ended`), audited like a purge, unless a legal hold
  keeps it (then the purge erases it once the hold ends).
- A tenant may shorten the period (:func:`set_tenant_policy`), never lengthen it. Only a legal hold, which
  names a reason, an owner and an end date and is audited, keeps data past its deadline.

The deadline is stored on the order (``retention_until``) whenever the order is stored or updated
(:func:`retention_deadline`, called by :func:`vault.orders.store_order`), so the purge is one indexed range
scan. The purge crypto-shreds due label records in batches: each batch is one transaction that claims its
orders with a conditional UPDATE (``erased_at IS NULL``, ``SKIP LOCKED`` on PostgreSQL), deletes their
sealed records and appends one audit event per tenant with the count and a digest of the order references.
A run killed midway loses only its open batch, which the next run redoes; two runs at once never claim the
same order. Nothing here reads or writes PII.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import NotFound, VaultError
from vault.models import AuditEvent, LabelRecordRow, LegalHold, Order, TenantRetentionPolicy, utcnow
from vault.records import OrderStatus

#: Amazon Data Protection Policy: PII retained no longer than 30 days after order delivery.
AMAZON_DAYS_AFTER_DELIVERY = 30
#: Assumed transit time when a marketplace reports neither a delivery time nor a latest delivery date.
DEFAULT_DELIVERY_ALLOWANCE_DAYS = 14
#: Statuses for which no label will ever be printed: erased at the next purge run.
ERASE_PROMPTLY = frozenset({OrderStatus.CANCELLED.value, OrderStatus.UNFULFILLABLE.value})

PURGE_ACTOR = "system:purge"
#: Who erases the label data of an order a sync sees cancelled (:func:`erase_ended`).
SYNC_ACTOR = "system:sync"
PURGE_ACTION = "retention.purge"
MAX_BATCH_SIZE = 10_000  # stays well under SQLite's bound-parameter limit

Progress = Callable[[int], None]


class RetentionError(VaultError):
    """A retention setting or legal hold was refused (the message says why)."""


class _OrderDates(Protocol):
    """What a deadline is computed from: :class:`~vault.records.OrderFacts` and :class:`Order` both fit."""

    @property
    def status(self) -> str: ...
    @property
    def purchased_at(self) -> datetime: ...
    @property
    def last_updated_at(self) -> datetime: ...
    @property
    def ship_by(self) -> datetime | None: ...
    @property
    def latest_delivery_at(self) -> datetime | None: ...
    @property
    def delivered_at(self) -> datetime | None: ...


def order_ref(marketplace: str, external_order_id: str) -> str:
    """How the audit chain names an order: ``marketplace:order id`` (the same as vault.release)."""
    return f"{marketplace}:{external_order_id}"[:160]


# -- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """One marketplace's retention rule."""

    marketplace: str
    days_after_delivery: int = AMAZON_DAYS_AFTER_DELIVERY
    delivery_allowance_days: int = DEFAULT_DELIVERY_ALLOWANCE_DAYS

    def delivery_time(self, order: _OrderDates) -> datetime:
        """When the order counts as delivered: reported, else promised, else ship-by (or purchase) + allowance."""
        if order.delivered_at is not None:
            return order.delivered_at
        if order.latest_delivery_at is not None:
            return order.latest_delivery_at
        shipped = order.ship_by or order.purchased_at
        return shipped + timedelta(days=self.delivery_allowance_days)

    def deadline(self, order: _OrderDates, *, days_after_delivery: int | None = None) -> datetime:
        """When the order's label data must be gone. ``days_after_delivery`` may only shorten the rule."""
        if str(order.status) in ERASE_PROMPTLY:
            return order.last_updated_at
        days = self.days_after_delivery
        if days_after_delivery is not None:
            days = max(0, min(days, days_after_delivery))
        return self.delivery_time(order) + timedelta(days=days)


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """The platform's rules per marketplace; a marketplace without its own rule gets ``default`` (Amazon's)."""

    default: RetentionRule = field(default_factory=lambda: RetentionRule("*"))
    by_marketplace: tuple[RetentionRule, ...] = (RetentionRule("amazon"),)

    def for_marketplace(self, marketplace: str) -> RetentionRule:
        """The rule for one marketplace."""
        for rule in self.by_marketplace:
            if rule.marketplace == marketplace:
                return rule
        return self.default

    def with_delivery_allowance(self, days: int) -> RetentionRules:
        """The same rules with another delivery allowance (``LABELVAULT_RETENTION_DELIVERY_ALLOWANCE_DAYS``)."""
        return RetentionRules(
            default=replace(self.default, delivery_allowance_days=days),
            by_marketplace=tuple(replace(r, delivery_allowance_days=days) for r in self.by_marketplace),
        )


_platform_lock = threading.Lock()
_platform_rules = RetentionRules()


def configure(*, delivery_allowance_days: int, rules: Iterable[RetentionRule] | None = None) -> None:
    """Set the process-wide platform rules from configuration (the app does this once at start).

    ``rules``: one per marketplace platform (the app passes the registry's, connectors.registry); without
    them, Amazon's rule alone, and every other marketplace gets the default (30 days after delivery).
    """
    global _platform_rules
    if not 0 <= delivery_allowance_days <= 60:
        raise RetentionError("the delivery allowance must be between 0 and 60 days")
    base = RetentionRules() if rules is None else RetentionRules(by_marketplace=tuple(rules))
    with _platform_lock:
        _platform_rules = base.with_delivery_allowance(delivery_allowance_days)


def platform_rules() -> RetentionRules:
    """The platform rules in force in this process."""
    return _platform_rules


def tenant_days(
    session: Session, *, tenant_id: int, marketplace: str, cache: dict[tuple[int, str], int | None] | None = None
) -> int | None:
    """The tenant's own (shorter) days-after-delivery for a marketplace, if it set one.

    With ``cache`` (one page of a sync: one transaction) the policy is read once per tenant and marketplace
    rather than once per order.
    """
    key = (tenant_id, marketplace)
    if cache is not None and key in cache:
        return cache[key]
    days: int | None = session.scalar(
        select(TenantRetentionPolicy.days_after_delivery).where(
            TenantRetentionPolicy.tenant_id == tenant_id, TenantRetentionPolicy.marketplace == marketplace
        )
    )
    if cache is not None:
        cache[key] = days
    return days


def retention_deadline(
    session: Session,
    *,
    tenant_id: int,
    marketplace: str,
    order: _OrderDates,
    rules: RetentionRules | None = None,
    cache: dict[tuple[int, str], int | None] | None = None,
) -> datetime:
    """When this order's label data is due for erasure under the platform rule and the tenant's policy."""
    rule = (rules or _platform_rules).for_marketplace(marketplace)
    days = tenant_days(session, tenant_id=tenant_id, marketplace=marketplace, cache=cache)
    return rule.deadline(order, days_after_delivery=days)


def _redate(session: Session, *, where: ColumnElement[bool], rules: RetentionRules, batch_size: int = 1000) -> int:
    """Recompute ``retention_until`` of the live orders matching ``where``; returns how many changed."""
    changed, last_id = 0, 0
    days_cache: dict[tuple[int, str], int | None] = {}
    while True:
        orders = session.scalars(
            select(Order)
            .where(where, Order.erased_at.is_(None), Order.id > last_id)
            .order_by(Order.id)
            .limit(batch_size)
        ).all()
        if not orders:
            return changed
        for order in orders:
            last_id = order.id
            key = (order.tenant_id, order.marketplace)
            if key not in days_cache:
                days_cache[key] = tenant_days(session, tenant_id=order.tenant_id, marketplace=order.marketplace)
            deadline = rules.for_marketplace(order.marketplace).deadline(order, days_after_delivery=days_cache[key])
            if order.retention_until != deadline:
                order.retention_until = deadline
                changed += 1
        session.flush()


def set_tenant_policy(
    session: Session,
    *,
    tenant_id: int,
    marketplace: str,
    days_after_delivery: int | None,
    actor: str,
    rules: RetentionRules | None = None,
    now: datetime | None = None,
) -> int:
    """Shorten a tenant's retention for one marketplace (``None``: back to the platform rule).

    Refuses anything longer than the platform rule: only a legal hold keeps data longer. Re-dates the
    tenant's live orders of that marketplace and audits the change. Returns how many orders were re-dated.
    The caller commits.
    """
    rules = rules or _platform_rules
    limit = rules.for_marketplace(marketplace).days_after_delivery
    policy = session.scalar(
        select(TenantRetentionPolicy).where(
            TenantRetentionPolicy.tenant_id == tenant_id, TenantRetentionPolicy.marketplace == marketplace
        )
    )
    if days_after_delivery is None:
        if policy is not None:
            session.delete(policy)
    elif not 0 <= days_after_delivery <= limit:
        raise RetentionError(
            f"a tenant may shorten retention, never lengthen it: {marketplace} allows at most {limit} days "
            "after delivery (a legal hold keeps data longer)"
        )
    elif policy is None:
        session.add(
            TenantRetentionPolicy(tenant_id=tenant_id, marketplace=marketplace, days_after_delivery=days_after_delivery)
        )
    else:
        policy.days_after_delivery = days_after_delivery
    session.flush()
    redated = _redate(session, where=and_(Order.tenant_id == tenant_id, Order.marketplace == marketplace), rules=rules)
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="retention.policy",
        purpose="retention",
        details={"marketplace": marketplace, "days_after_delivery": days_after_delivery, "orders_redated": redated},
        now=now,
    )
    return redated


# -- legal holds -------------------------------------------------------------------------------------


def hold_applies(now: datetime) -> ColumnElement[bool]:
    """SQL: some legal hold in force at ``now`` covers the order of the enclosing ``orders`` row."""
    return exists(
        select(LegalHold.id).where(
            LegalHold.tenant_id == Order.tenant_id,
            or_(LegalHold.order_id.is_(None), LegalHold.order_id == Order.id),
            LegalHold.released_at.is_(None),
            LegalHold.ends_at > now,
        )
    )


def place_hold(
    session: Session,
    *,
    tenant_id: int,
    reason: str,
    owner: str,
    ends_at: datetime,
    actor: str,
    order: Order | None = None,
    now: datetime | None = None,
) -> LegalHold:
    """Keep a tenant's orders (or one order) from erasure until ``ends_at``; audited. The caller commits.

    The reason names the matter (e.g. a case or authority reference) and the owner who answers for the
    hold; neither may hold a buyer's personal data.
    """
    now = now or utcnow()
    reason, owner = reason.strip(), owner.strip()
    if len(reason) < 3:
        raise RetentionError("a legal hold needs a reason (the matter it serves)")
    if not owner:
        raise RetentionError("a legal hold needs an owner (who answers for it)")
    if ends_at.tzinfo is None or ends_at <= now:
        raise RetentionError("a legal hold needs an end date in the future")
    if order is not None and order.tenant_id != tenant_id:
        raise NotFound("no such order")
    hold = LegalHold(
        tenant_id=tenant_id,
        order_id=order.id if order is not None else None,
        reason=reason[:500],
        owner=owner[:200],
        created_by=actor[:100],
        created_at=now,
        ends_at=ends_at,
    )
    session.add(hold)
    session.flush()
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="hold.place",
        order_ref=order_ref(order.marketplace, order.external_order_id) if order is not None else None,
        purpose="legal-hold",
        details={
            "hold_id": hold.id,
            "scope": "order" if order is not None else "tenant",
            "reason": hold.reason,
            "owner": hold.owner,
            "ends_at": ends_at.isoformat(),
        },
        now=now,
    )
    return hold


def release_hold(
    session: Session, *, tenant_id: int, hold_id: int, actor: str, now: datetime | None = None
) -> LegalHold:
    """End a legal hold early; audited. Orders past their deadline become due at the next purge."""
    now = now or utcnow()
    hold = session.get(LegalHold, hold_id)
    if hold is None or hold.tenant_id != tenant_id:
        raise NotFound("no such legal hold")
    if hold.released_at is None:
        hold.released_at, hold.released_by = now, actor[:100]
        session.flush()
        append_event(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="hold.release",
            purpose="legal-hold",
            details={"hold_id": hold.id},
            now=now,
        )
    return hold


def holds_in_force(session: Session, *, order: Order, now: datetime | None = None) -> list[LegalHold]:
    """The legal holds that keep this order from erasure right now (tenant-wide and its own)."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(LegalHold)
            .where(
                LegalHold.tenant_id == order.tenant_id,
                or_(LegalHold.order_id.is_(None), LegalHold.order_id == order.id),
                LegalHold.released_at.is_(None),
                LegalHold.ends_at > now,
            )
            .order_by(LegalHold.id)
        )
    )


# -- the purge ---------------------------------------------------------------------------------------


def receipt_digest(refs: Iterable[str]) -> str:
    """The shred receipt's digest: SHA-256 of the sorted order references, one per line."""
    return "sha256:" + hashlib.sha256("\n".join(sorted(refs)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ShredReceipt:
    """One purge batch's erasures for one tenant, as written to its audit chain."""

    tenant_id: int
    count: int
    digest: str
    erased_at: datetime


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What a purge run did: orders erased, batches committed, and one receipt per tenant and batch."""

    erased: int
    batches: int
    backfilled: int
    receipts: tuple[ShredReceipt, ...]


@dataclass(frozen=True, slots=True)
class DueSummary:
    """Per tenant: orders due for erasure now, and how many of those a legal hold keeps."""

    tenant_id: int
    due: int
    held: int


def _due(now: datetime, tenant_id: int | None = None) -> list[ColumnElement[bool]]:
    where = [Order.erased_at.is_(None), Order.retention_until <= now]
    if tenant_id is not None:
        where.append(Order.tenant_id == tenant_id)
    return where


def due_summary(session: Session, *, now: datetime | None = None, tenant_id: int | None = None) -> list[DueSummary]:
    """What a purge at ``now`` would erase, per tenant (``flask vault purge --dry-run``)."""
    now = now or utcnow()
    held = hold_applies(now)
    rows = session.execute(
        select(
            Order.tenant_id,
            func.count(),
            func.count().filter(held),
        )
        .where(*_due(now, tenant_id))
        .group_by(Order.tenant_id)
        .order_by(Order.tenant_id)
    ).all()
    return [DueSummary(t, int(total) - int(h), int(h)) for t, total, h in rows]


def backfill_deadlines(
    session: Session, *, rules: RetentionRules | None = None, batch_size: int = 1000, tenant_id: int | None = None
) -> int:
    """Give every live order without a deadline its deadline (orders written before retention existed)."""
    where: ColumnElement[bool] = Order.retention_until.is_(None)
    if tenant_id is not None:
        where = and_(where, Order.tenant_id == tenant_id)
    n = _redate(session, where=where, rules=rules or _platform_rules, batch_size=batch_size)
    session.commit()
    return n


_CLAIMED = (Order.id, Order.tenant_id, Order.marketplace, Order.external_order_id, Order.retention_until)


def _claim_and_shred(
    session: Session,
    *,
    due: Sequence[ColumnElement[bool]],
    now: datetime,
    stamp: datetime,
    cursor: tuple[datetime, int] | None,
    batch_size: int,
) -> Sequence[Any]:
    """Mark the next ``due``, unheld orders erased, delete their label records, and return the orders.

    The returned orders are the batch this worker owns: the conditional UPDATE (``erased_at IS NULL``) lets
    exactly one worker claim an order, whatever runs at the same time.
    """
    where = [*due, Order.erased_at.is_(None), ~hold_applies(now)]
    if cursor is not None:
        # (retention_until, id) > cursor, written so the index range starts at the cursor: an OR alone would
        # make every batch walk the index from its start, over every order the run already erased.
        where += [
            Order.retention_until >= cursor[0],
            or_(Order.retention_until > cursor[0], Order.id > cursor[1]),
        ]
    picked = (
        select(Order.id)
        .where(*where)
        .order_by(Order.retention_until, Order.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)  # PostgreSQL: concurrent purges take disjoint batches
    )
    if session.get_bind().dialect.name == "postgresql":
        # One statement. The batch is a MATERIALIZED CTE, picked exactly once: as a plain IN-subquery
        # PostgreSQL may rescan it per outer row, and a rescan's FOR UPDATE skips the rows this statement
        # just updated, so LIMIT would not bound the batch.
        chosen = picked.cte("picked").prefix_with("MATERIALIZED")
        claimed = (
            update(Order)
            .where(Order.id.in_(select(chosen.c.id)), Order.erased_at.is_(None))
            .values(erased_at=stamp)
            .returning(*_CLAIMED)
            .cte("claimed")
        )
        gone = (
            delete(LabelRecordRow)
            .where(LabelRecordRow.order_id.in_(select(claimed.c.id)))
            .returning(LabelRecordRow.order_id)
            .cte("gone")
        )
        return session.execute(select(claimed).add_cte(gone)).all()
    # SQLite evaluates the IN-list once. The statement must start with UPDATE: Python's sqlite3 opens its
    # implicit transaction only then (a WITH ... UPDATE would run, and commit, on its own).
    rows = session.execute(
        update(Order)
        .where(Order.id.in_(picked.scalar_subquery()), Order.erased_at.is_(None))
        .values(erased_at=stamp)
        .returning(*_CLAIMED)
        .execution_options(synchronize_session=False)
    ).all()
    if rows:
        session.execute(
            delete(LabelRecordRow)
            .where(LabelRecordRow.order_id.in_([row.id for row in rows]))
            .execution_options(synchronize_session=False)
        )
    return rows


def _write_receipts(session: Session, claimed: Sequence[Any], *, stamp: datetime, actor: str) -> list[ShredReceipt]:
    """Append one ``retention.purge`` event per tenant for a claimed batch: its count and digest."""
    refs: dict[int, list[str]] = defaultdict(list)
    for row in claimed:
        refs[row.tenant_id].append(order_ref(row.marketplace, row.external_order_id))
    receipts = []
    for tenant_id in sorted(refs):  # one lock order for every worker: no deadlock on chain heads
        receipt = ShredReceipt(tenant_id, len(refs[tenant_id]), receipt_digest(refs[tenant_id]), stamp)
        append_event(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action=PURGE_ACTION,
            outcome="erased",
            purpose="retention",
            details={"count": receipt.count, "digest": receipt.digest, "erased_at": stamp.isoformat()},
            now=stamp,
        )
        receipts.append(receipt)
    return receipts


def erase_ended(
    session: Session, *, order_ids: Sequence[int], now: datetime | None = None, actor: str = SYNC_ACTOR
) -> tuple[ShredReceipt, ...]:
    """Erase, now, those of ``order_ids`` that ended without a label: cancelled, unfulfillable.

    A sync calls this for the orders it just stored, so an order's label data goes the moment the
    marketplace reports it cancelled, not at the next purge run. The erasure is the purge's own: the same
    claim (legal holds still keep an order), the same ``retention.purge`` receipt in the audit chain, so
    :func:`verify_receipt` checks it. Returns the receipts (one per tenant; none if nothing was erased).
    The caller commits (the sync: with the page that stored the orders).
    """
    if not order_ids:
        return ()
    now = now or utcnow()
    due = [Order.id.in_(order_ids), Order.status.in_(ERASE_PROMPTLY)]
    claimed = _claim_and_shred(session, due=due, now=now, stamp=now, cursor=None, batch_size=MAX_BATCH_SIZE)
    return tuple(_write_receipts(session, claimed, stamp=now, actor=actor))


def purge_due(
    session: Session,
    *,
    now: datetime | None = None,
    batch_size: int = 1000,
    rules: RetentionRules | None = None,
    progress: Progress | None = None,
    tenant_id: int | None = None,
) -> PurgeResult:
    """Erase every order whose deadline has passed and no legal hold covers, one committed batch at a time.

    Crypto-shreds the label record (sealed data and its wrapped data key go together), keeps the non-PII
    order stub with ``erased_at``, and appends one ``retention.purge`` event per tenant per batch holding
    the count and :func:`receipt_digest` of the erased order references. Resumable and idempotent: a
    killed run loses only its uncommitted batch; safe to run from several workers at once. ``tenant_id``
    limits the run to one tenant.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise RetentionError(f"batch size must be between 1 and {MAX_BATCH_SIZE}")
    fixed_clock = now is not None
    now = now or utcnow()
    backfilled = backfill_deadlines(session, rules=rules, tenant_id=tenant_id)
    erased = batches = 0
    receipts: list[ShredReceipt] = []
    while True:  # passes: repeat from the start until a whole pass erases nothing
        cursor: tuple[datetime, int] | None = None
        pass_erased = 0
        while True:
            # Each batch gets its own erased-at stamp, so a receipt's orders can be listed again later.
            stamp = now + timedelta(microseconds=batches) if fixed_clock else max(now, utcnow())
            claimed = _claim_and_shred(
                session, due=_due(now, tenant_id), now=now, stamp=stamp, cursor=cursor, batch_size=batch_size
            )
            if not claimed:
                session.rollback()
                break
            receipts.extend(_write_receipts(session, claimed, stamp=stamp, actor=PURGE_ACTOR))
            session.commit()
            batches += 1
            pass_erased += len(claimed)
            cursor = max((row.retention_until, row.id) for row in claimed)
            if progress:
                progress(len(claimed))
        erased += pass_erased
        if pass_erased == 0:
            break
    session.expire_all()
    return PurgeResult(erased, batches, backfilled, tuple(receipts))


def verify_receipt(session: Session, *, event: AuditEvent) -> bool:
    """Whether a ``retention.purge`` event's count and digest match the order stubs it names.

    The stubs are the tenant's orders erased at the event's ``erased_at`` stamp; an auditor can repeat the
    computation from a list of order references with :func:`receipt_digest`.
    """
    details = event.details or {}
    if event.action != PURGE_ACTION or event.tenant_id is None or "erased_at" not in details:
        return False
    stamp = datetime.fromisoformat(details["erased_at"])
    rows = session.execute(
        select(Order.marketplace, Order.external_order_id).where(
            Order.tenant_id == event.tenant_id, Order.erased_at == stamp
        )
    ).all()
    refs = [order_ref(m, o) for m, o in rows]
    return len(refs) == details.get("count") and receipt_digest(refs) == details.get("digest")
