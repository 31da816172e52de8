"""An order's label record: its AAD context, sealing, opening and shredding (the only PII the vault keeps)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.orm import Session

from vault.blind_index import index_record
from vault.db import rowcount
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.models import LabelRecordRow, Order, utcnow
from vault.records import LABEL_SCHEMA_VERSION, LabelRecord

#: Where a label record's address came from: the marketplace (as synced), or a seller's correction at the
#: buyer's request (which later syncs leave alone, see :func:`vault.orders.store_order`).
MARKETPLACE, CORRECTION = "marketplace", "correction"


class SealedLabel(Protocol):
    """A stored label record as opening it needs it (a :class:`LabelRecordRow`, or a release's snapshot)."""

    @property
    def version(self) -> int: ...

    @property
    def schema_version(self) -> int: ...

    @property
    def envelope(self) -> bytes: ...


class LabelledOrder(Protocol):
    """An order as its label record's context names it (an :class:`Order`, or a release's snapshot)."""

    @property
    def tenant_id(self) -> int: ...

    @property
    def account_id(self) -> int: ...

    @property
    def marketplace(self) -> str: ...

    @property
    def external_order_id(self) -> str: ...

    @property
    def label(self) -> SealedLabel | None: ...


def label_context(order: LabelledOrder, *, record_version: int, schema_version: int = LABEL_SCHEMA_VERSION) -> bytes:
    """AAD context of an order's label record: a ciphertext moved to another row no longer opens.

    Byte-for-byte ``encode_context("label", tenant, account, marketplace, order id, schema, version)``,
    written out because it is on the label hot path (tests/vault pins the equality).
    """
    m, o = order.marketplace, order.external_order_id
    return (
        f"5:label|{order.tenant_id}|{order.account_id}|{len(m)}:{m}|{len(o)}:{o}|{schema_version}|{record_version}"
    ).encode()


def seal_label(
    session: Session, *, keys: KeyManager, order: Order, label: LabelRecord, source: str = MARKETPLACE
) -> LabelRecordRow:
    """Seal ``label`` as the order's label record; a previous version is replaced (and so shredded).

    ``source`` says where the address came from: the marketplace, or a seller's correction (which later
    syncs leave alone). The record's blind index entries are written with it (vault/blind_index.py), so a
    person is findable from the moment their record is stored, and an old version's values are not.
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
    index_record(session, index_keys=keys.index_keys, row=row, record=label)
    return row


def unseal_label(session: Session, *, keys: KeyManager, order: LabelledOrder) -> LabelRecord:
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
