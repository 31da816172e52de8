"""Blind-index key rotation and the online re-index that follows it (and that backfills older records).

:func:`rotate_index_key` makes a new active index key version. :func:`reindex` then walks the tenant's
label records by id, in batches each committed on its own, and gives every record not yet indexed under the
active version fresh entries (opening it with the tenant key: re-indexing is the one place every record is
opened, and its purpose is the index itself). Lookups keep working throughout: they digest under every
live version, so a record is found by its old entries until its new ones replace them.

A retired version is destroyed (its wrapped key and every entry under it deleted) only once it has been
retired longer than the key cache lifetime, so no process still writes entries under it, and after a pass
found no record left without active entries. A run before then re-indexes and says the old version stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.blind_index import DESTROYED, RETIRED, digest, record_terms
from vault.keys import KeyManager
from vault.models import BlindIndexEntry, IndexKey, LabelRecordRow, Order, utcnow
from vault.records import LabelRecord
from vault.sealed import LABEL_RECORDS

_ENTRIES = cast(Table, BlindIndexEntry.__table__)
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ReindexResult:
    """What a re-index run did: records given active entries, and retired versions destroyed or still kept."""

    reindexed: int
    destroyed_versions: tuple[int, ...]
    kept_versions: tuple[int, ...]


def rotate_index_key(session: Session, *, keys: KeyManager, tenant_id: int, actor: str) -> int:
    """Start a blind-index key rotation: a new active version, audited as ``index_key.rotate``, committed.

    Follow with :func:`reindex`. Returns the new version.
    """
    keys.index_keys.active(session, tenant_id)  # a tenant older than blind indexes gets version 1 first
    version = keys.index_keys.create(session, tenant_id)
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="index_key.rotate",
        purpose="administration",
        details={"version": version},
    )
    session.commit()
    return version


def unindexed_count(session: Session, *, keys: KeyManager, tenant_id: int) -> int:
    """How many of the tenant's label records have no entries under the active index key version."""
    active = keys.index_keys.active(session, tenant_id).version
    return int(session.scalar(select(func.count()).where(_unindexed(tenant_id, active))) or 0)


def _unindexed(tenant_id: int, active: int) -> ColumnElement[bool]:
    return (LabelRecordRow.tenant_id == tenant_id) & ~exists().where(
        _ENTRIES.c.label_record_id == LabelRecordRow.id, _ENTRIES.c.index_version == active
    )


def reindex(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    actor: str,
    batch_size: int = 500,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ReindexResult:
    """Give every label record of the tenant entries under the active index key, then destroy the retired
    versions whose grace period has passed. Online and resumable: each batch is its own transaction, and a
    record resealed meanwhile already carries active entries. Audited as ``index_key.reindex`` (counts only).
    """
    keys.index_keys.invalidate(tenant_id)  # this run must see the latest active version
    key = keys.index_keys.active(session, tenant_id)
    done = last_id = 0
    while True:
        rows = session.execute(
            select(
                LabelRecordRow.id,
                LabelRecordRow.version,
                LabelRecordRow.schema_version,
                LabelRecordRow.envelope,
                Order.account_id,
                Order.marketplace,
                Order.external_order_id,
            )
            .join(Order, Order.id == LabelRecordRow.order_id)
            .where(_unindexed(tenant_id, key.version), LabelRecordRow.id > last_id)
            .order_by(LabelRecordRow.id)
            .limit(batch_size)
        ).all()
        if not rows:
            break
        entries: list[dict[str, Any]] = []
        for row in rows:
            last_id = row.id
            context = LABEL_RECORDS.context(
                tenant_id, row.account_id, row.marketplace, row.external_order_id, row.schema_version, row.version
            )
            record = LabelRecord.from_bytes(keys.open(session, tenant_id, context, row.envelope))
            entries.extend(
                {
                    "tenant_id": tenant_id,
                    "label_record_id": row.id,
                    "index_version": key.version,
                    "term": term,
                    "digest": digest(key.key, term, value),
                }
                for term, value in record_terms(record).items()
            )
        ids = [row.id for row in rows]
        session.execute(delete(_ENTRIES).where(_ENTRIES.c.label_record_id.in_(ids)))
        if entries:
            session.execute(insert(_ENTRIES), entries)
        session.commit()
        done += len(rows)
        if progress:
            progress(len(rows))
    destroyed, kept = _destroy_retired(session, keys=keys, tenant_id=tenant_id, now=now or utcnow())
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="index_key.reindex",
        purpose="administration",
        details={"version": key.version, "reindexed": done, "destroyed_versions": list(destroyed)},
    )
    session.commit()
    return ReindexResult(done, destroyed, kept)


def _destroy_retired(
    session: Session, *, keys: KeyManager, tenant_id: int, now: datetime
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    grace = timedelta(seconds=keys.index_keys.max_age)
    retired = session.execute(
        select(IndexKey.version, IndexKey.retired_at).where(IndexKey.tenant_id == tenant_id, IndexKey.state == RETIRED)
    ).all()
    due = [r.version for r in retired if r.retired_at is not None and r.retired_at + grace <= now]
    kept = tuple(r.version for r in retired if r.version not in due)
    active = keys.index_keys.active(session, tenant_id).version
    if due and session.scalar(select(func.count()).where(_unindexed(tenant_id, active))):
        # A writer still on a cached old version indexed a record after the pass: the next run takes it.
        return (), tuple(r.version for r in retired)
    if due:
        session.execute(delete(_ENTRIES).where(_ENTRIES.c.tenant_id == tenant_id, _ENTRIES.c.index_version.in_(due)))
        session.execute(
            update(IndexKey)
            .where(IndexKey.tenant_id == tenant_id, IndexKey.version.in_(due))
            .values(state=DESTROYED, wrapped_key=None, destroyed_at=now)
        )
        keys.index_keys.invalidate(tenant_id)
    return tuple(due), kept
