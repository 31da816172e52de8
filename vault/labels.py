"""Sealing, opening and shredding what the vault keeps: label records, account credentials, orders."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session, joinedload

from vault.db import rowcount
from vault.directsql import DirectStatement
from vault.envelope import encode_context
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.models import LabelRecordRow, MarketplaceAccount, Order, Tenant, utcnow
from vault.records import LABEL_SCHEMA_VERSION, LabelRecord, OrderFacts


def create_tenant(session: Session, *, keys: KeyManager, slug: str, name: str) -> Tenant:
    """Create a seller organisation and its first tenant key (one root-provider call)."""
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    session.flush()
    keys.create_tenant_key(session, tenant.id)
    return tenant


def set_return_address(
    session: Session, *, tenant: Tenant, name: str, lines: list[str], country_code: str, actor: str
) -> None:
    """Set the seller's return address printed on every label (an audited admin change; not buyer PII)."""
    from vault.audit import append_event

    lines = [line.strip() for line in lines if line.strip()]
    if not name.strip() or not lines or len(lines) > 4 or len(country_code) != 2 or not country_code.isalpha():
        raise ValueError("a return address needs a name, 1 to 4 lines and a two-letter country code")
    tenant.return_address = {"name": name.strip(), "lines": lines, "country_code": country_code.upper()}
    append_event(session, tenant_id=tenant.id, actor=actor, action="tenant.return_address", purpose="administration")
    session.flush()


def label_context(
    order: Order | OrderSnapshot, *, record_version: int, schema_version: int = LABEL_SCHEMA_VERSION
) -> bytes:
    """AAD context of an order's label record: a ciphertext moved to another row no longer opens.

    Byte-for-byte ``encode_context("label", tenant, account, marketplace, order id, schema, version)``,
    written out because it is on the label hot path (tests/vault pins the equality).
    """
    m, o = order.marketplace, order.external_order_id
    return (
        f"5:label|{order.tenant_id}|{order.account_id}|{len(m)}:{m}|{len(o)}:{o}|{schema_version}|{record_version}"
    ).encode()


MARKETPLACE, CORRECTION = "marketplace", "correction"


def seal_label(
    session: Session, *, keys: KeyManager, order: Order, label: LabelRecord, source: str = MARKETPLACE
) -> LabelRecordRow:
    """Seal ``label`` as the order's label record; a previous version is replaced (and so shredded).

    ``source`` says where the address came from: the marketplace, or a seller's correction (which later
    syncs leave alone).
    """
    row = order.label
    version = 1 if row is None else row.version + 1
    sealed, key_version = keys.seal(
        session, order.tenant_id, label_context(order, record_version=version), label.to_bytes()
    )
    if row is None:
        row = LabelRecordRow(
            order=order,
            tenant_id=order.tenant_id,
            source=source,
            version=version,
            schema_version=LABEL_SCHEMA_VERSION,
            tenant_key_version=key_version,
            envelope=sealed,
        )
        session.add(row)
    else:
        row.version, row.schema_version, row.source = version, LABEL_SCHEMA_VERSION, source
        row.tenant_key_version, row.envelope, row.created_at = key_version, sealed, utcnow()
    session.flush()
    return row


def unseal_label(session: Session, *, keys: KeyManager, order: Order | OrderSnapshot) -> LabelRecord:
    """Open the order's label record; :class:`NotFound` if it has none (never synced, or erased)."""
    row = order.label
    if row is None:
        raise NotFound("order has no label record")
    context = label_context(order, record_version=row.version, schema_version=row.schema_version)
    return LabelRecord.from_bytes(keys.open(session, order.tenant_id, context, row.envelope))


def shred_label(session: Session, *, order: Order, now: datetime | None = None) -> bool:
    """Erase the order's label record (its data key goes with it) and stamp ``erased_at``.

    Keeps the non-PII order stub. Returns whether there was anything to erase. Idempotent.
    """
    had = rowcount(session.execute(delete(LabelRecordRow).where(LabelRecordRow.order_id == order.id))) > 0
    session.expire(order, ["label"])
    if order.erased_at is None:
        order.erased_at = now or utcnow()
    session.flush()
    return had


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
)


def store_order(
    session: Session,
    *,
    keys: KeyManager,
    account: MarketplaceAccount,
    facts: OrderFacts,
    label: LabelRecord | None,
) -> StoreResult:
    """Idempotent upsert by (account, external order id): facts in clear, the label sealed.

    The label is resealed only when it differs from the stored one and the seller hasn't corrected it
    (a correction outranks the marketplace's copy); an erased order is never refilled with PII (its stub
    keeps being updated so status changes still show).
    """
    order = session.scalar(
        select(Order).where(Order.account_id == account.id, Order.external_order_id == facts.external_order_id)
    )
    values: dict[str, Any] = {f: getattr(facts, f) for f in _FACT_FIELDS}
    values["status"] = str(facts.status)
    from vault.retention import retention_deadline  # every change of the facts re-dates the erasure

    values["retention_until"] = retention_deadline(
        session, tenant_id=account.tenant_id, marketplace=facts.marketplace, order=facts
    )
    if order is None:
        order = Order(
            tenant_id=account.tenant_id,
            account_id=account.id,
            marketplace=facts.marketplace,
            external_order_id=facts.external_order_id,
            **values,
        )
        session.add(order)
        session.flush()
        if label is not None:
            seal_label(session, keys=keys, order=order, label=label)
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
    label: SealedRecord | None


_O, _L = Order.__table__, LabelRecordRow.__table__
_SNAPSHOTS = select(
    *(_O.c[name] for name in ("id", "tenant_id", "account_id", "marketplace", "external_order_id", "status")),
    *(_O.c[name] for name in ("retention_until", "erased_at", "labels_issued")),
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
    )
)


def _snapshot(row: Sequence[Any]) -> OrderSnapshot:
    order_id, tenant_id, account_id, marketplace, external_id, status, retention_until, erased_at, issued = row[:9]
    version, schema_version, envelope = row[9:]
    label = None if version is None else SealedRecord(version, schema_version, envelope)
    return OrderSnapshot(
        order_id, tenant_id, account_id, marketplace, external_id, status, retention_until, erased_at, issued, label
    )


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
            found.update(((marketplace, row.external_order_id), _snapshot(row)) for row in rows)
    return found


# -- marketplace account credentials ---------------------------------------------------------------


def credentials_context(account: MarketplaceAccount) -> bytes:
    """AAD context of an account's sealed credentials."""
    return encode_context("credentials", account.tenant_id, account.id, account.marketplace)


def seal_credentials(
    session: Session, *, keys: KeyManager, account: MarketplaceAccount, secrets: dict[str, str]
) -> None:
    """Seal an account's API credentials (e.g. LWA client id/secret and refresh token)."""
    if account.id is None:
        session.flush()
    plaintext = json.dumps(secrets, sort_keys=True).encode()
    account.credentials_envelope, account.credentials_key_version = keys.seal(
        session, account.tenant_id, credentials_context(account), plaintext
    )
    session.flush()


def unseal_credentials(session: Session, *, keys: KeyManager, account: MarketplaceAccount) -> dict[str, str]:
    """Open an account's sealed credentials."""
    if account.credentials_envelope is None:
        raise NotFound("account has no stored credentials")
    data: dict[str, str] = json.loads(
        keys.open(session, account.tenant_id, credentials_context(account), account.credentials_envelope)
    )
    return data


def shred_account(session: Session, *, account: MarketplaceAccount, now: datetime | None = None) -> int:
    """Remove an account: shred its credentials and every label record of its orders. Returns records shredded."""
    now = now or utcnow()
    order_ids = select(Order.id).where(Order.account_id == account.id)
    n = rowcount(session.execute(delete(LabelRecordRow).where(LabelRecordRow.order_id.in_(order_ids))))
    session.execute(
        update(Order).where(Order.account_id == account.id, Order.erased_at.is_(None)).values(erased_at=now)
    )
    account.credentials_envelope = None
    account.credentials_key_version = None
    account.removed_at = now
    session.flush()
    return n
