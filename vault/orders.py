"""Orders: the idempotent upsert a sync runs (non-PII facts in clear, the label sealed), and the lookups of
one tenant's orders (by the ORM, or as the detached snapshot a label release reads)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from vault.directsql import DirectStatement
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.labels import CORRECTION, seal_label, unseal_label
from vault.models import LabelRecordRow, MarketplaceAccount, Order
from vault.records import LabelRecord, OrderFacts
from vault.retention import retention_deadline


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What :func:`store_order` did: ``created``, ``updated`` (facts or label changed) or ``unchanged``."""

    order: Order
    outcome: str


_FACT_FIELDS = (
    "status",
    "marketplace_id",
    "fulfillment_channel",
    "purchased_at",
    "last_updated_at",
    "ship_by",
    "latest_delivery_at",
    "delivered_at",
    "text_repaired",
    "label_withheld",
)


def store_order(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    facts: OrderFacts,
    label: LabelRecord | None,
    retention_cache: dict[tuple[int, str], int | None] | None = None,
    absent: bool = False,
) -> StoreResult:
    """Idempotent upsert by (account, external order id): facts in clear, the label sealed.

    ``retention_cache`` lets the orders of one transaction (a sync's page) read the tenant's retention
    policy once (:func:`vault.retention.tenant_days`). ``absent``: the caller has just read, in this
    transaction, that the account has no such order (a sync's page, under the account's sync lease), so it
    is not looked up again; if one appeared meanwhile, the insert fails on the unique key and nothing of it
    is stored.

    The label is resealed only when it differs from the stored one and the seller hasn't corrected it
    (a correction outranks the marketplace's copy); an erased order is never refilled with PII (its stub
    keeps being updated so status changes still show).
    """
    order = (
        None
        if absent
        else session.scalar(
            select(Order).where(Order.account_id == account.id, Order.external_order_id == facts.external_order_id)
        )
    )
    if order is not None and order.delivered_at is not None:
        # A delivery happened once: the first time reported stands (a marketplace that reports only a
        # delivered state dates it by the update that showed it, and later updates mustn't move it).
        delivered = order.delivered_at if facts.delivered_at is None else min(order.delivered_at, facts.delivered_at)
        facts = replace(facts, delivered_at=delivered)
    values: dict[str, Any] = {f: getattr(facts, f) for f in _FACT_FIELDS}
    values["status"] = str(facts.status)
    # Every change of the facts re-dates the erasure.
    values["retention_until"] = retention_deadline(
        session, tenant_id=account.tenant_id, marketplace=facts.marketplace, order=facts, cache=retention_cache
    )
    if order is None:
        order = Order(
            tenant_id=account.tenant_id,
            account_id=account.id,
            marketplace=facts.marketplace,
            external_order_id=facts.external_order_id,
            label=None,  # a new order has no record yet: sealing one reads none back
            **values,
        )
        session.add(order)
        if label is not None:
            seal_label(session, keys=keys, order=order, label=label)  # flushes the order with its record
        else:
            session.flush()
        return StoreResult(order, "created")
    changed = any(getattr(order, k) != v for k, v in values.items())
    for k, v in values.items():
        setattr(order, k, v)
    if (
        label is not None
        and order.erased_at is None
        and (order.label is None or order.label.source != CORRECTION)
        and (order.label is None or unseal_label(session, keys=keys, order=order) != label)
    ):
        seal_label(session, keys=keys, order=order, label=label)
        changed = True
    session.flush()
    return StoreResult(order, "updated" if changed else "unchanged")


#: One order of a tenant with its sealed record, in one query (a release reads :func:`snapshot_order`).
_ORDER_WITH_LABEL = (
    select(Order)
    .options(joinedload(Order.label))
    .where(
        Order.tenant_id == bindparam("b_tenant"),
        Order.marketplace == bindparam("b_marketplace"),
        Order.external_order_id == bindparam("b_order"),
    )
)


def find_order(session: Session, *, tenant_id: int, marketplace: str, external_order_id: str) -> Order:
    """The tenant's order (with its label record) by marketplace and order id; another tenant's is NotFound."""
    params = {"b_tenant": tenant_id, "b_marketplace": marketplace, "b_order": external_order_id}
    order = session.execute(_ORDER_WITH_LABEL, params).unique().scalar_one_or_none()
    if order is None:
        raise NotFound("no such order")
    return order


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """An order's sealed label record, as a release reads it."""

    version: int
    schema_version: int
    envelope: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What a label release reads of one order, detached from the session: its facts and sealed record.

    Read with one Core query (the order joined with its record): an ORM load of the same two rows cost
    four times as much on every label request, and a release changes the order only through the
    conditional UPDATE of its reissue count (vault/release.py).
    """

    id: int
    tenant_id: int
    account_id: int
    marketplace: str
    external_order_id: str
    status: str
    retention_until: datetime | None
    erased_at: datetime | None
    labels_issued: int
    reprints_granted: int
    label: SealedRecord | None
    #: Why the order has no label record although it is live (vault.records.LABEL_WITHHELD), or None.
    label_withheld: str | None = None


class _SnapshotRow(NamedTuple):
    """The order joined with its label record (``None`` record columns: it has none)."""

    id: int
    tenant_id: int
    account_id: int
    marketplace: str
    external_order_id: str
    status: str
    retention_until: datetime | None
    erased_at: datetime | None
    labels_issued: int
    reprints_granted: int
    label_withheld: str | None
    version: int | None
    schema_version: int | None
    envelope: bytes | None


_O, _L = Order.__table__, LabelRecordRow.__table__
_SNAPSHOTS = select(
    *(_O.c[name] for name in ("id", "tenant_id", "account_id", "marketplace", "external_order_id", "status")),
    *(_O.c[name] for name in ("retention_until", "erased_at", "labels_issued", "reprints_granted")),
    _O.c.label_withheld,
    _L.c.version,
    _L.c.schema_version,
    _L.c.envelope,
).join_from(_O, _L, _L.c.order_id == _O.c.id, isouter=True)
#: Built once and run directly (vault/directsql.py): one order of a tenant by marketplace and order id
#: (every single label release).
_SNAPSHOT = DirectStatement(
    _SNAPSHOTS.where(
        _O.c.tenant_id == bindparam("b_tenant"),
        _O.c.marketplace == bindparam("b_marketplace"),
        _O.c.external_order_id == bindparam("b_order"),
    ),
    _SnapshotRow,
)


def _snapshot(row: _SnapshotRow) -> OrderSnapshot:
    label = None
    if row.version is not None and row.schema_version is not None and row.envelope is not None:
        label = SealedRecord(row.version, row.schema_version, row.envelope)
    return OrderSnapshot(
        row.id, row.tenant_id, row.account_id, row.marketplace, row.external_order_id, row.status,
        row.retention_until, row.erased_at, row.labels_issued, row.reprints_granted, label, row.label_withheld,
    )  # fmt: skip


def snapshot_order(session: Session, *, tenant_id: int, marketplace: str, external_order_id: str) -> OrderSnapshot:
    """The tenant's order as a release reads it (:func:`find_order`'s lookup); another tenant's is NotFound."""
    params = {"b_tenant": tenant_id, "b_marketplace": marketplace, "b_order": external_order_id}
    row = _SNAPSHOT.first(session, params)
    if row is None:
        raise NotFound("no such order")
    return _snapshot(row)


#: Most orders one :func:`snapshot_orders` query looks up (bound parameters stay well under every backend's limit).
FIND_CHUNK = 500


def snapshot_orders(
    session: Session, *, tenant_id: int, refs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], OrderSnapshot]:
    """The tenant's orders among ``(marketplace, order id)`` refs, as a release reads them, in few queries.

    Refs without an order in this tenant are simply absent from the result (the caller's NotFound).
    """
    by_marketplace: dict[str, set[str]] = {}
    for marketplace, order_id in refs:
        by_marketplace.setdefault(marketplace, set()).add(order_id)
    found: dict[tuple[str, str], OrderSnapshot] = {}
    for marketplace, ids in by_marketplace.items():
        wanted = sorted(ids)
        for start in range(0, len(wanted), FIND_CHUNK):
            rows = session.execute(
                _SNAPSHOTS.where(
                    _O.c.tenant_id == tenant_id,
                    _O.c.marketplace == marketplace,
                    _O.c.external_order_id.in_(wanted[start : start + FIND_CHUNK]),
                )
            )
            found.update(((marketplace, row.external_order_id), _snapshot(_SnapshotRow._make(row))) for row in rows)
    return found
