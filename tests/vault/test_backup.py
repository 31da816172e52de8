"""Encrypted backups, restores, and the key-epoch job's bound on how long an erased record survives in backups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.support.buyers import sample_label
from tests.support.servers import Database
from tests.support.vault import make_account, make_orders
from vault import envelope, epochs
from vault.audit import chain_for, verify_chain
from vault.backup import BackupError, restore_backup, write_backup
from vault.errors import DecryptionError
from vault.keyproviders import LocalKeyProvider
from vault.keys import KeyManager, tenant_key_context
from vault.labels import label_context, shred_label, unseal_label
from vault.models import AuditEvent, Base, LabelRecordRow, Order, RootKeyRecord, TenantKey, utcnow
from vault.orders import find_order
from vault.tenants import create_tenant

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, for comparing two databases."""
    with engine.connect() as c:
        return {
            t.name: [tuple(r) for r in c.execute(select(t).order_by(*t.primary_key.columns))]
            for t in Base.metadata.sorted_tables
        }


@pytest.fixture
def second_db(fresh_db: Database, tmp_path: Path) -> Iterator[Database]:
    """Another empty database of the same backend: the restore target."""
    db = Database(fresh_db.backend, tmp_path / "restore")
    yield db
    db.drop()


def seed(db: Database, keys: KeyManager, n: int = 5) -> tuple[int, list[str]]:
    with Session(db.engine, expire_on_commit=False) as s:
        tenant = create_tenant(s, keys=keys, slug="backup-seller", name="Backup Seller", actor="test")
        orders = make_orders(s, keys, make_account(s, tenant), n)
        s.commit()
        return tenant.id, [o.external_order_id for o in orders]


def test_restore_brings_back_every_row_and_the_data_opens(
    fresh_db: Database, second_db: Database, keys: KeyManager, tmp_path: Path
) -> None:
    tenant_id, order_ids = seed(fresh_db, keys)
    path = tmp_path / "vault.backup"
    info = write_backup(fresh_db.engine, path, keys=keys)
    assert path.stat().st_mode & 0o777 == 0o600
    assert info.rows["orders"] == 5 and info.rows["label_records"] == 5
    raw = path.read_bytes()
    for value in ("山田", "千代田", "503-0000001", "Backup Seller"):
        assert value.encode() not in raw  # the whole file is encrypted, the stubs and audit chain too

    restored = restore_backup(second_db.engine, path, keys=KeyManager(LocalKeyProvider(keys.provider.path)))  # type: ignore[attr-defined]
    assert restored.backup_id == info.backup_id
    before, after = dump(fresh_db.engine), dump(second_db.engine)
    restore_events = [r for r in after["audit_events"] if "backup.restore" in r]
    assert len(restore_events) == 1
    assert {t: rows for t, rows in after.items() if t not in ("audit_events", "audit_heads")} == {
        t: rows for t, rows in before.items() if t not in ("audit_events", "audit_heads")
    }
    with Session(second_db.engine) as s:
        for i, oid in enumerate(order_ids):
            order = find_order(s, tenant_id=tenant_id, marketplace="amazon", external_order_id=oid)
            assert unseal_label(s, keys=keys, order=order) == sample_label(i)
        assert verify_chain(s, chain=chain_for(tenant_id)).ok
        assert verify_chain(s, chain="platform").ok
        # ids continue after the restored rows (PostgreSQL sequences were reset)
        create_tenant(s, keys=keys, slug="after-restore", name="After", actor="test")
        s.commit()


def test_a_damaged_or_truncated_backup_refuses_to_restore(
    fresh_db: Database, second_db: Database, keys: KeyManager, tmp_path: Path
) -> None:
    seed(fresh_db, keys)
    path = tmp_path / "vault.backup"
    write_backup(fresh_db.engine, path, keys=keys)
    good = path.read_bytes()
    for damaged, message in (
        (good[:-1], "truncated|damaged"),
        (good[:-40], "truncated|damaged"),
        (good[:-200] + bytes([good[-200] ^ 1]) + good[-199:], "damaged|altered"),
        (b"not a backup", "not a labelvault backup"),
    ):
        path.write_bytes(damaged)
        with pytest.raises(BackupError, match=message):
            restore_backup(second_db.engine, path, keys=keys)
    with Session(second_db.engine) as s:  # all or nothing: the target is untouched
        assert s.scalar(select(func.count()).select_from(Order)) == 0


# -- the bound, with a controlled clock ------------------------------------------------------------------

EPOCH, RETENTION, TICK = 7 * DAY, 14 * DAY, 6 * HOUR


@dataclass
class Snapshot:
    """What any backup (this tool's, pg_dump, a volume snapshot) holds: wrapped tenant keys and sealed rows."""

    taken_at: datetime
    path: Path
    tenant_keys: list[tuple[int, str, bytes | None]]
    label_rows: dict[int, tuple[int, int, bytes]]  # order id -> (record version, schema version, envelope)


def snapshot(db: Database, keys: KeyManager, tenant_id: int, at: datetime, tmp: Path) -> Snapshot:
    path = tmp / f"backup-{at:%Y%m%d%H%M}.lvb"
    write_backup(db.engine, path, keys=keys, now=at)
    with Session(db.engine) as s:
        key_rows = s.execute(
            select(TenantKey.version, TenantKey.root_key_id, TenantKey.wrapped_key).where(
                TenantKey.tenant_id == tenant_id
            )
        ).all()
        labels = s.execute(
            select(
                LabelRecordRow.order_id, LabelRecordRow.version, LabelRecordRow.schema_version, LabelRecordRow.envelope
            )
        ).all()
    return Snapshot(at, path, [tuple(r) for r in key_rows], {r[0]: (r[1], r[2], r[3]) for r in labels})  # type: ignore[misc]


def opens_anywhere(
    order: Order, sealed: tuple[int, int, bytes], key_copies: list[tuple[int, str, bytes | None]], keyring: Path
) -> bool:
    """Whether any surviving copy of any tenant key version, unwrapped by any root key still in the keyring,
    opens this sealed record (the attacker's view: every backup plus the live database)."""
    provider = LocalKeyProvider(keyring)  # reread: what a fresh process could use
    record_version, schema_version, blob = sealed
    ctx = label_context(order, record_version=record_version, schema_version=schema_version)
    for version, root_id, wrapped in key_copies:
        if wrapped is None or version != envelope.envelope_key_version(blob):
            continue
        try:
            tenant_key = provider.unwrap(
                wrapped, root_key_id=root_id, context=tenant_key_context(order.tenant_id, version)
            )
            envelope.open_bytes(AESGCM(tenant_key), ctx, blob)
            return True
        except DecryptionError:
            continue
    return False


@pytest.mark.slow
def test_an_erased_record_is_unreadable_in_every_backup_within_the_stated_bound(
    fresh_db: Database, second_db: Database, keyring_path: Path, tmp_path: Path
) -> None:
    keys = KeyManager(LocalKeyProvider(keyring_path), max_age=300)
    grace = epochs.grace_period(keys)
    bound = epochs.erasure_bound(epoch_length=EPOCH, backup_retention=RETENTION, timer_interval=TICK, grace=grace)
    assert bound == 21 * DAY + 18 * HOUR + 10 * timedelta(minutes=1)

    start = utcnow()  # tenant keys carry real creation times; the clock runs forward from here
    tenant_id, order_ids = seed(fresh_db, keys, 2)
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        erased = find_order(s, tenant_id=tenant_id, marketplace="amazon", external_order_id=order_ids[0])
        kept_id = order_ids[1]
        epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=start)
    snaps = [snapshot(fresh_db, keys, tenant_id, start + HOUR, tmp_path)]
    sealed = snaps[0].label_rows[erased.id]

    t_erased = start + 2 * HOUR
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        shred_label(s, order=s.get(Order, erased.id), now=t_erased)  # type: ignore[arg-type]
        s.commit()

    def live_keys() -> list[tuple[int, str, bytes | None]]:
        with Session(fresh_db.engine) as s:
            rows = s.execute(
                select(TenantKey.version, TenantKey.root_key_id, TenantKey.wrapped_key).where(
                    TenantKey.tenant_id == tenant_id
                )
            ).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def readable() -> bool:
        copies = [k for snap in snaps for k in snap.tenant_keys] + live_keys()
        return opens_anywhere(erased, sealed, copies, keyring_path)

    assert readable()  # the pre-erasure backup still opens it: the test can tell
    unreadable_at: datetime | None = None
    now, ticks = start, 0
    while now < t_erased + bound + 2 * TICK:
        now += TICK
        ticks += 1
        with Session(fresh_db.engine, expire_on_commit=False) as s:
            epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=now)
        if ticks % 4 == 0:  # a daily backup
            snaps.append(snapshot(fresh_db, keys, tenant_id, now, tmp_path))
        if unreadable_at is None and not readable():
            unreadable_at = now
        # within its retention every backup restores what was live when it was taken
        if now - snaps[0].taken_at == RETENTION - DAY:
            restore_backup(second_db.engine, snaps[0].path, keys=keys)
            with Session(second_db.engine) as s:
                kept = find_order(s, tenant_id=tenant_id, marketplace="amazon", external_order_id=kept_id)
                assert unseal_label(s, keys=keys, order=kept) == sample_label(1)

    assert unreadable_at is not None, "the erased record stayed readable"
    assert unreadable_at - t_erased <= bound
    assert unreadable_at - t_erased >= RETENTION  # keys aren't destroyed early: backups stay restorable
    assert not readable()
    with Session(fresh_db.engine) as s:
        destroyed = s.scalar(
            select(func.count()).select_from(RootKeyRecord).where(RootKeyRecord.destroyed_at.is_not(None))
        )
        assert destroyed and destroyed >= 1
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "keys.epoch"))

    # the oldest backup is past its retention: unreadable as a whole
    with pytest.raises(BackupError, match="root key was destroyed"):
        restore_backup(second_db.engine, snaps[0].path, keys=keys)
    # the latest restores everything live and resurrects nothing erased
    restore_backup(second_db.engine, snaps[-1].path, keys=keys)
    with Session(second_db.engine) as s:
        kept = find_order(s, tenant_id=tenant_id, marketplace="amazon", external_order_id=kept_id)
        assert unseal_label(s, keys=keys, order=kept) == sample_label(1)
        gone = find_order(s, tenant_id=tenant_id, marketplace="amazon", external_order_id=order_ids[0])
        assert gone.erased_at is not None and gone.label is None


def test_epoch_job_does_nothing_before_its_time_and_is_idempotent(fresh_db: Database, keys: KeyManager) -> None:
    seed(fresh_db, keys, 1)
    now = utcnow()
    with Session(fresh_db.engine, expire_on_commit=False) as s:
        first = epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=now)
        again = epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=now + HOUR)
        assert not first.started_epoch and not again.started_epoch and again.root_rotated_to is None
        rotate = epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=now + EPOCH)
        assert rotate.started_epoch and rotate.tenants_rotated == 1 and rotate.data_keys_rewrapped == 1
        finish = epochs.run_key_epoch(
            s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=now + EPOCH + HOUR
        )
        assert finish.tenant_versions_destroyed == 1 and finish.root_rotated_to is not None
        assert finish.tenant_keys_rewrapped == 1
        quiet = epochs.run_key_epoch(
            s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION, now=now + EPOCH + 2 * HOUR
        )
        assert not quiet.started_epoch and quiet.root_rotated_to is None and quiet.tenant_versions_destroyed == 0


@pytest.mark.postgres
def test_only_one_epoch_run_at_a_time(postgres_db: Database, keys: KeyManager) -> None:
    # PostgreSQL only: the lock is its advisory lock (an SQLite install is one host with one timer).
    with Session(postgres_db.engine) as holder, Session(postgres_db.engine) as s:
        lock = epochs._lock(holder)
        try:
            refused = epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION)
        finally:
            epochs._unlock(lock or None)
        assert refused.notes == ["another key-epoch run holds the lock; nothing done"]
        assert epochs.run_key_epoch(s, keys=keys, epoch_length=EPOCH, backup_retention=RETENTION).notes == []
