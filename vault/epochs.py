"""The key-epoch job: scheduled key rotation and destruction that bounds how long erased data lives in backups.

Why it is needed: a database backup holds every tenant key version wrapped by the root key of its day, and
every label record's data key wrapped by a tenant key version. Shredding a record deletes it from the live
database only. An erased record in a backup becomes unreadable once no copy of its tenant key version can
be unwrapped anywhere: the live database must have destroyed that version, and every root key that ever
wrapped it (in any backup) must be destroyed. The root key is never inside a backup (keyring file or KMS).

One run (``flask vault epoch``, from a timer, e.g. hourly) does whatever is due at ``now``:

1. Root ledger: note the provider's current root key; any other root is retired (a root unknown to the
   ledger, e.g. after a restore, counts as retired *now*: the safe side). Tenant keys still wrapped under a
   retired root are rewrapped under the current one.
2. Finish an epoch: once the tenant key versions retired by the last epoch start are older than the grace
   period (two key-cache lifetimes, so no process still seals with them), rewrap stragglers and destroy
   those versions; then, as any tenant key version was destroyed under the current root, rotate the root and
   rewrap the tenant keys under the new one. From then on, backups hold the destroyed versions only under
   the retired root.
3. Start an epoch: when the oldest active tenant key version is ``epoch_length`` old, make a new version for
   every tenant and rewrap every data key under it (the old versions wait out the grace period, step 2).
4. Destroy every retired root key retired at least ``backup_retention`` ago (no backup still inside its
   retention needs it). With AWS KMS the operator schedules the old KMS key's deletion; the run lists it.

The bound: a record erased at time *t* is unreadable in every backup by
``t + epoch_length + backup_retention + grace + 3 × timer interval`` (see :func:`erasure_bound` and
docs/privacy-controls.md); tests/vault/test_backup.py checks it with a controlled clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import KeyVersionInUse
from vault.keyproviders import LocalKeyProvider
from vault.keys import ACTIVE, DESTROYED, RETIRED, KeyManager
from vault.models import RootKeyRecord, Tenant, TenantKey, utcnow
from vault.rotation import destroy_tenant_key_version, rewrap_root, rewrap_tenant, root_key_in_use

log = logging.getLogger(__name__)

EPOCH_ACTOR = "system:key-epoch"
_ADVISORY_LOCK = 0x6C76_6570  # "lvep": one epoch job at a time on PostgreSQL


def erasure_bound(
    *, epoch_length: timedelta, backup_retention: timedelta, timer_interval: timedelta, grace: timedelta
) -> timedelta:
    """Longest time from erasure until the erased record is unreadable in every backup."""
    return epoch_length + backup_retention + grace + 3 * timer_interval


def grace_period(keys: KeyManager) -> timedelta:
    """How long a retired tenant key version is kept: two key-cache lifetimes (no process still seals with it)."""
    return timedelta(seconds=2 * keys.max_age)


@dataclass(slots=True)
class EpochReport:
    """What one run of the key-epoch job did (ids and counts only)."""

    started_epoch: bool = False
    tenants_rotated: int = 0
    data_keys_rewrapped: int = 0
    tenant_versions_destroyed: int = 0
    root_rotated_to: str | None = None
    tenant_keys_rewrapped: int = 0
    roots_destroyed: list[str] = field(default_factory=list)
    roots_to_delete_in_kms: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _ledger(session: Session) -> dict[str, RootKeyRecord]:
    return {r.root_key_id: r for r in session.scalars(select(RootKeyRecord))}


def _sync_ledger(session: Session, *, keys: KeyManager, now: datetime) -> RootKeyRecord:
    """Record the current root and retire every other one; returns the current root's record."""
    provider = keys.provider
    current_id = recorded_root_id(keys)
    ledger = _ledger(session)
    known = set(ledger)
    if isinstance(provider, LocalKeyProvider):
        known |= set(provider.key_ids())
    known |= set(session.scalars(select(TenantKey.root_key_id).where(TenantKey.wrapped_key.is_not(None))).all())
    for root_id in sorted(known | {current_id}):
        record = ledger.get(root_id)
        if record is None:
            record = RootKeyRecord(root_key_id=root_id, provider=provider.name, current_from=now)
            session.add(record)
            ledger[root_id] = record
        if root_id != current_id and record.retired_at is None:
            record.retired_at = now
        if root_id == current_id and record.retired_at is not None:  # made current again by the operator
            record.retired_at, record.current_from = None, now
    session.commit()
    return ledger[current_id]


def recorded_root_id(keys: KeyManager) -> str:
    """The current root key's id as tenant key rows record it (KMS answers with the ARN, whatever alias)."""
    provider = keys.provider
    if isinstance(provider, LocalKeyProvider):
        return provider.current_key_id()
    _, root_id = provider.wrap(bytes(32), context={"labelvault:purpose": "root-key-probe"})
    return root_id


def _rotate_root(session: Session, *, keys: KeyManager, now: datetime, report: EpochReport) -> bool:
    provider = keys.provider
    if not isinstance(provider, LocalKeyProvider):
        report.notes.append(
            "root rotation is due: create a new KMS key, point LABELVAULT_KMS_KEY_ID (or its alias) at it and "
            "restart; the next run rewraps the tenant keys under it"
        )
        return False
    new_id = provider.rotate()
    keys.invalidate()
    _sync_ledger(session, keys=keys, now=now)
    report.root_rotated_to = new_id
    report.tenant_keys_rewrapped += rewrap_root(session, keys=keys)
    return True


def _lock(session: Session) -> Connection | Literal[False] | None:
    """One run at a time on PostgreSQL: an advisory lock held on a connection of its own for the whole run
    (the session's own connection may change at every commit). False if another run holds it."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or not isinstance(bind, Engine):
        return None
    conn = bind.connect()
    if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_LOCK}).scalar():
        conn.commit()
        return conn
    conn.close()
    return False


def _unlock(lock: Connection | None) -> None:
    if lock is not None:
        lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK})
        lock.close()


def run_key_epoch(
    session: Session,
    *,
    keys: KeyManager,
    epoch_length: timedelta,
    backup_retention: timedelta,
    now: datetime | None = None,
    batch_size: int = 500,
) -> EpochReport:
    """Run whatever the key-epoch schedule has due at ``now`` (see the module docstring). Idempotent.

    Commits as it goes; an interrupted run is finished by the next one.
    """
    now = now or utcnow()
    report = EpochReport()
    lock = _lock(session)
    if lock is False:
        report.notes.append("another key-epoch run holds the lock; nothing done")
        return report
    try:
        _run(session, keys=keys, epoch_length=epoch_length, backup_retention=backup_retention, now=now,
             batch_size=batch_size, report=report)  # fmt: skip
    finally:
        _unlock(lock)
    events = {
        k: v
        for k, v in {
            "started_epoch": report.started_epoch,
            "tenants_rotated": report.tenants_rotated,
            "tenant_versions_destroyed": report.tenant_versions_destroyed,
            "root_rotated_to": report.root_rotated_to,
            "roots_destroyed": report.roots_destroyed,
        }.items()
        if v
    }
    if events:
        append_event(session, tenant_id=None, actor=EPOCH_ACTOR, action="keys.epoch", details=events, now=now)
        session.commit()
    return report


def _run(
    session: Session,
    *,
    keys: KeyManager,
    epoch_length: timedelta,
    backup_retention: timedelta,
    now: datetime,
    batch_size: int,
    report: EpochReport,
) -> None:
    grace = grace_period(keys)
    current = _sync_ledger(session, keys=keys, now=now)
    stale = session.scalar(
        select(func.count())
        .select_from(TenantKey)
        .where(TenantKey.wrapped_key.is_not(None), TenantKey.root_key_id != current.root_key_id)
    )
    if stale and keys.provider.current_key_id() != current.root_key_id:
        report.notes.append(
            "the configured root key id is not the one the key service records; set LABELVAULT_KMS_KEY_ID to the "
            f"key ARN ({current.root_key_id}) so tenant keys can be rewrapped"
        )
    elif stale:
        report.tenant_keys_rewrapped += rewrap_root(session, keys=keys, batch_size=batch_size)

    # 2. finish an epoch: destroy retired tenant key versions past the grace period, then rotate the root
    retired = session.execute(
        select(TenantKey.tenant_id, TenantKey.version, TenantKey.retired_at)
        .where(TenantKey.state == RETIRED)
        .order_by(TenantKey.tenant_id, TenantKey.version)
    ).all()
    pending = False
    rewrapped_tenants: set[int] = set()
    for tenant_id, version, retired_at in retired:
        if retired_at is not None and now - retired_at < grace:
            pending = True
            continue
        if tenant_id not in rewrapped_tenants:
            report.data_keys_rewrapped += rewrap_tenant(
                session, keys=keys, tenant_id=tenant_id, batch_size=batch_size
            ).rewrapped
            rewrapped_tenants.add(tenant_id)
        try:
            destroy_tenant_key_version(
                session, keys=keys, tenant_id=tenant_id, version=version, actor=EPOCH_ACTOR, now=now
            )
            report.tenant_versions_destroyed += 1
        except KeyVersionInUse as exc:
            pending = True
            report.notes.append(f"tenant {tenant_id} key v{version} kept for now: {exc}")
    last_destroyed = session.scalar(select(func.max(TenantKey.destroyed_at)).where(TenantKey.state == DESTROYED))
    if not pending and last_destroyed is not None and last_destroyed > current.current_from:
        _rotate_root(session, keys=keys, now=now, report=report)
        current = _sync_ledger(session, keys=keys, now=now)

    # 3. start an epoch when the oldest active tenant key version is epoch_length old
    oldest = session.scalar(
        select(func.min(TenantKey.created_at))
        .join(Tenant, Tenant.id == TenantKey.tenant_id)
        .where(TenantKey.state == ACTIVE, Tenant.shredded_at.is_(None))
    )
    if not pending and report.root_rotated_to is None and oldest is not None and now - oldest >= epoch_length:
        tenant_ids = session.scalars(
            select(TenantKey.tenant_id)
            .join(Tenant, Tenant.id == TenantKey.tenant_id)
            .where(TenantKey.state == ACTIVE, Tenant.shredded_at.is_(None))
            .order_by(TenantKey.tenant_id)
        ).all()
        for tenant_id in tenant_ids:
            keys.create_tenant_key(session, tenant_id, now=now)
            session.commit()
            report.data_keys_rewrapped += rewrap_tenant(
                session, keys=keys, tenant_id=tenant_id, batch_size=batch_size
            ).rewrapped
            report.tenants_rotated += 1
        report.started_epoch = bool(tenant_ids)

    # 4. destroy root keys no backup inside its retention still needs
    for record in session.scalars(
        select(RootKeyRecord)
        .where(
            RootKeyRecord.retired_at.is_not(None),
            RootKeyRecord.retired_at <= now - backup_retention,
            RootKeyRecord.destroyed_at.is_(None),
        )
        .order_by(RootKeyRecord.retired_at)
    ).all():
        if record.root_key_id == keys.provider.current_key_id():
            continue
        if root_key_in_use(session, root_key_id=record.root_key_id):
            report.notes.append(f"root key {record.root_key_id} still wraps tenant keys; kept for now")
            continue
        provider = keys.provider
        if isinstance(provider, LocalKeyProvider):
            if record.root_key_id in provider.key_ids():
                provider.destroy(record.root_key_id)
            record.destroyed_at = now
            report.roots_destroyed.append(record.root_key_id)
        else:
            report.roots_to_delete_in_kms.append(record.root_key_id)
    session.commit()
    keys.invalidate()
