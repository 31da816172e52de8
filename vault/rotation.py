"""Key rotation (rewrapping, online and resumable), key destruction and tenant shredding.

What is sealed under a tenant key, and where, is listed kind by kind in vault/sealed.py; rotation rewraps,
counts and guards every kind there without importing the features that own them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.db import rowcount
from vault.errors import KeyVersionInUse, NotFound, VaultError
from vault.keyproviders import LocalKeyProvider
from vault.keys import ACTIVE, DESTROYED, KeyManager, tenant_key_context
from vault.models import CarrierAccount, IndexKey, LabelRecordRow, MarketplaceAccount, Order, Tenant, TenantKey, utcnow
from vault.sealed import SEALED, SealedKind

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class RewrapResult:
    """Outcome of a rewrap run: rows rewrapped, and rows skipped because they changed meanwhile."""

    rewrapped: int
    skipped: int


#: The audit chain's administration purpose for key changes.
ADMINISTRATION = "administration"


def rotate_tenant_key(session: Session, *, keys: KeyManager, tenant_id: int, actor: str) -> TenantKey:
    """Start a tenant-key rotation: a new active version, audited as ``key.rotate`` with the new version, and
    committed. Follow with :func:`rewrap_tenant` (the rewrap changes no key anyone holds, so it is not audited
    on its own: a resumed rewrap finishes the rotation this event recorded)."""
    row = keys.create_tenant_key(session, tenant_id)
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="key.rotate",
        purpose=ADMINISTRATION,
        details={"version": row.version},
    )
    session.commit()
    return row


def _count(session: Session, kind: SealedKind, where: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(kind.table).where(where)) or 0)


def stale_count(session: Session, *, keys: KeyManager, tenant_id: int) -> int:
    """How many sealed values of the tenant (of every kind) are still wrapped under a non-active key version."""
    active = keys.active_version(session, tenant_id)
    return sum(_count(session, kind, kind.stale(tenant_id, active)) for kind in SEALED)


def rewrap_sealed(
    session: Session,
    *,
    keys: KeyManager,
    kind: SealedKind,
    tenant_id: int,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> RewrapResult:
    """Rewrap one kind of the tenant's sealed values under its active key version, committing per batch.

    One pass over the stale rows, by id. Each row is written only if its envelope is still the one read
    (compare-and-swap): a value resealed meanwhile is skipped, and left to the next pass if still stale.
    """
    active = keys.active_version(session, tenant_id)
    done = skipped = last_id = 0
    while True:
        rows = session.execute(
            select(kind.id, kind.envelope, *kind.context_columns)
            .select_from(kind.source)
            .where(kind.stale(tenant_id, active), kind.id > last_id)
            .order_by(kind.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return RewrapResult(done, skipped)
        for row_id, sealed, *context in rows:
            last_id = row_id
            new = keys.rewrap(session, tenant_id, kind.context(*context), sealed, active)
            n = rowcount(
                session.execute(
                    update(kind.table)
                    .where(kind.id == row_id, kind.envelope == sealed)
                    .values({kind.envelope: new, kind.key_version: active})
                    .execution_options(synchronize_session=False)
                )
            )
            done += n
            skipped += 1 - n
        session.commit()
        session.expire_all()  # the rows changed under the ORM's feet
        if progress:
            progress(len(rows))


def rewrap_tenant(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> RewrapResult:
    """Rewrap every data key of the tenant (every kind in vault/sealed.py) under its active key version.

    Online: labels keep being sealed and opened meanwhile (a row changed under us is skipped by its
    compare-and-swap and picked up by the next pass). Resumable: a crashed run just runs again. Runs
    passes until nothing stale is left. No record is re-encrypted.
    """
    keys.invalidate(tenant_id)
    done = skipped = 0
    while True:
        for kind in SEALED:
            result = rewrap_sealed(
                session, keys=keys, kind=kind, tenant_id=tenant_id, batch_size=batch_size, progress=progress
            )
            done, skipped = done + result.rewrapped, skipped + result.skipped
        if stale_count(session, keys=keys, tenant_id=tenant_id) == 0:
            return RewrapResult(done, skipped)


def rewrap_root(session: Session, *, keys: KeyManager, batch_size: int = 200, progress: Progress | None = None) -> int:
    """Rewrap every live tenant key version under the provider's current root key, per batch; resumable.

    Walks the table once by id, so it ends even where the provider names its key differently from how
    the configuration does (a KMS alias vs the key's ARN).
    """
    done, last_id = 0, 0
    while True:
        current = keys.provider.current_key_id()
        rows = session.scalars(
            select(TenantKey)
            .where(TenantKey.wrapped_key.is_not(None), TenantKey.root_key_id != current, TenantKey.id > last_id)
            .order_by(TenantKey.id)
            .limit(batch_size)
        ).all()
        if not rows:
            return done
        for row in rows:
            last_id = row.id
            assert row.wrapped_key is not None
            ctx = tenant_key_context(row.tenant_id, row.version)
            plaintext = keys.provider.unwrap(row.wrapped_key, root_key_id=row.root_key_id, context=ctx)
            row.wrapped_key, row.root_key_id = keys.provider.wrap(plaintext, context=ctx)
            done += 1
        session.commit()
        if progress:
            progress(len(rows))


def destroy_tenant_key_version(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    version: int,
    actor: str,
    now: datetime | None = None,
) -> None:
    """Delete a retired tenant key version for good, once nothing live needs it; audited as ``key.destroy``
    in the same commit (the tenant's chain is not sealed under any key, so it outlives every version).

    Refuses (:class:`KeyVersionInUse`) the active version, a version any live record still uses, and a
    version retired less than the key cache's ``max_age`` ago (another process may still seal with it).
    A version destroyed already is left alone, and nothing is written.
    """
    now = now or utcnow()
    row = session.scalar(select(TenantKey).where(TenantKey.tenant_id == tenant_id, TenantKey.version == version))
    if row is None:
        raise NotFound("no such tenant key version")
    if row.state == DESTROYED:
        return
    if row.state == ACTIVE:
        raise KeyVersionInUse("the active key version can't be destroyed; rotate first")
    if row.retired_at and now - row.retired_at < timedelta(seconds=keys.max_age):
        raise KeyVersionInUse("retired too recently: other processes may still use it; try again later")
    in_use = any(_count(session, kind, kind.under(tenant_id, version)) for kind in SEALED)
    if in_use:
        raise KeyVersionInUse("live records still use this key version; run the rewrap first")
    row.wrapped_key, row.state, row.destroyed_at = None, DESTROYED, now
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="key.destroy",
        purpose=ADMINISTRATION,
        details={"version": version},
        now=now,
    )
    session.commit()
    keys.invalidate(tenant_id)


@dataclass(frozen=True, slots=True)
class RootRotation:
    """Outcome of :func:`rotate_root`: the new root key (if one was made) and the tenant key versions rewrapped."""

    new_root_key_id: str | None
    rewrapped: int


def rotate_root(
    session: Session,
    *,
    keys: KeyManager,
    actor: str,
    new_key: bool,
    batch_size: int = 200,
    progress: Progress | None = None,
) -> RootRotation:
    """Rewrap every live tenant key version under the current root key, with a new local root key first if
    ``new_key`` (with AWS KMS the operator makes the new key; ``new_key`` then changes nothing).

    Audited on the platform chain as ``key.rotate-root`` (the root key's id, whether it is new, the count
    rewrapped) once the rewrap is done; committed. An interrupted run is finished by running it again
    without ``new_key``.
    """
    made = None
    if new_key and isinstance(keys.provider, LocalKeyProvider):
        made = keys.provider.rotate()
        keys.invalidate()
    n = rewrap_root(session, keys=keys, batch_size=batch_size, progress=progress)
    append_event(
        session,
        tenant_id=None,
        actor=actor,
        action="key.rotate-root",
        purpose=ADMINISTRATION,
        details={"root_key_id": keys.provider.current_key_id(), "new_key": made is not None, "rewrapped": n},
    )
    session.commit()
    return RootRotation(made, n)


def destroy_root_key(session: Session, *, keys: KeyManager, root_key_id: str, actor: str) -> None:
    """Delete an old root key from the local keyring once no live tenant key version is wrapped under it.

    Audited on the platform chain as ``key.destroy-root`` and committed *before* the key is deleted: the
    audit chain is not sealed under any key, so it survives the destruction whole, while every backup's
    tenant keys wrapped under that root become unreadable. If the deletion then fails, a second event
    (outcome ``failed``) says so and the error is raised. Refuses (:class:`KeyVersionInUse`) a root key
    still in use or current, and (:class:`NotFound`) one with AWS KMS, whose keys are scheduled for deletion in KMS.
    """
    provider = keys.provider
    if not isinstance(provider, LocalKeyProvider):
        raise NotFound("only the local keyring's root keys are destroyed here")
    if root_key_id == provider.current_key_id():
        raise KeyVersionInUse("the current root key can't be destroyed; rotate the root first")
    in_use = root_key_in_use(session, root_key_id=root_key_id)
    if in_use:
        raise KeyVersionInUse(f"{in_use} tenant key versions still use that root key; rotate the root first")
    details = {"root_key_id": root_key_id}
    append_event(
        session, tenant_id=None, actor=actor, action="key.destroy-root", purpose=ADMINISTRATION, details=details
    )
    session.commit()
    try:
        provider.destroy(root_key_id)
    except VaultError:
        append_event(
            session,
            tenant_id=None,
            actor=actor,
            action="key.destroy-root",
            outcome="failed",
            purpose=ADMINISTRATION,
            details=details,
        )
        session.commit()
        raise


def root_key_in_use(session: Session, *, root_key_id: str) -> int:
    """How many live tenant key versions are still wrapped under this root key."""
    n = session.scalar(
        select(func.count())
        .select_from(TenantKey)
        .where(TenantKey.root_key_id == root_key_id, TenantKey.wrapped_key.is_not(None))
    )
    return int(n or 0)


def shred_tenant(session: Session, *, keys: KeyManager, tenant_id: int, now: datetime | None = None) -> int:
    """Erase everything sealed for a tenant: label records, credentials and every key version.

    Returns the number of label records shredded. The tenant's non-PII stubs and audit chain remain.
    """
    now = now or utcnow()
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    n = rowcount(session.execute(delete(LabelRecordRow).where(LabelRecordRow.tenant_id == tenant_id)))
    session.execute(update(Order).where(Order.tenant_id == tenant_id, Order.erased_at.is_(None)).values(erased_at=now))
    session.execute(
        update(MarketplaceAccount)
        .where(MarketplaceAccount.tenant_id == tenant_id)
        .values(credentials_envelope=None, credentials_key_version=None)
    )
    session.execute(
        update(CarrierAccount)
        .where(CarrierAccount.tenant_id == tenant_id)
        .values(credentials_envelope=None, credentials_key_version=None)
    )
    session.execute(
        update(TenantKey)
        .where(TenantKey.tenant_id == tenant_id, TenantKey.state != DESTROYED)
        .values(wrapped_key=None, state=DESTROYED, destroyed_at=now)
    )
    session.execute(  # its blind-index entries went with the label records (ON DELETE CASCADE)
        update(IndexKey)
        .where(IndexKey.tenant_id == tenant_id, IndexKey.state != DESTROYED)
        .values(wrapped_key=None, state=DESTROYED, destroyed_at=now)
    )
    tenant.shredded_at = now
    session.commit()
    keys.invalidate(tenant_id)
    return n
