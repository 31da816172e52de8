"""Tenant keys: created and wrapped by the root provider, unwrapped on demand, cached per process.

The cache is what keeps KMS calls rare: an unwrapped tenant key version serves seals and unseals until it
is older than ``max_age`` seconds or has served ``max_uses`` operations, then the next use unwraps it again.
Which version is *active* for a tenant is cached under the same age bound, so after a rotation in another
process this process moves to the new version within ``max_age`` (destruction of a retired version waits
out that grace period, see :func:`vault.rotation.destroy_tenant_key_version`).
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault import envelope
from vault.blind_index import IndexKeys
from vault.errors import DecryptionError, NotFound
from vault.interfaces import KeyProvider
from vault.models import TenantKey, utcnow

ACTIVE, RETIRED, DESTROYED = "active", "retired", "destroyed"
_seal_bytes, _open_checked = envelope.seal_bytes, envelope.open_checked
_MIN_SIZE, _FORMAT_V1 = envelope.MIN_SIZE, envelope.FORMAT_V1


def tenant_key_context(tenant_id: int, version: int) -> dict[str, str]:
    """Context bound to a wrapped tenant key (AAD locally, encryption context in KMS); no PII."""
    return {"labelvault:purpose": "tenant-key", "labelvault:tenant": str(tenant_id), "labelvault:version": str(version)}


@dataclass(slots=True)
class _Entry:
    key: AESGCM = field(repr=False)
    expires: float  # load time + max_age: the clock value after which the key is unwrapped again
    #: One permit per use the key may still serve, handed out by ``next()`` (atomic under the GIL: one
    #: C call on a range iterator), so the use bound is exact without a lock on the hit path.
    permits: Iterator[int]
    max_uses: int


def _uses(entry: _Entry) -> int:
    # Permits handed out so far: the range iterator's length hint is exactly what it has left (a use
    # being counted right now may or may not be in it; fine for a statistic).
    return entry.max_uses - operator.length_hint(entry.permits)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters for ``flask vault status`` and metrics."""

    entries: int
    hits: int
    misses: int
    provider_calls: int
    max_age_seconds: float
    max_uses: int


class KeyManager:
    """Seals and opens envelopes for tenants, holding unwrapped tenant keys in a bounded cache."""

    def __init__(
        self,
        provider: KeyProvider,
        *,
        max_age: float = 300.0,
        max_uses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.max_age = max_age
        self.max_uses = max_uses
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[tuple[int, int], _Entry] = {}
        self._active: dict[int, tuple[int, float]] = {}
        self._misses = 0
        self._evicted_uses = 0
        #: The tenants' blind-index keys (vault/blind_index.py), under the same age bound.
        self.index_keys = IndexKeys(provider, max_age=max_age, clock=clock)

    # -- cache -------------------------------------------------------------------------------------

    def _key(self, session: Session, tenant_id: int, version: int, now: float) -> AESGCM:
        """The unwrapped key of a tenant's version: from the cache while it is inside both bounds (no lock on
        a hit: a dict read and taking a permit are each atomic under the GIL), else evicted and unwrapped."""
        entry = self._keys.get((tenant_id, version))
        if entry is not None:
            permit = next(entry.permits, None)
            if permit is not None and now <= entry.expires:
                return entry.key
            with self._lock:
                if self._keys.get((tenant_id, version)) is entry:
                    del self._keys[(tenant_id, version)]
                    # A permit taken from an expired key served nothing.
                    self._evicted_uses += _uses(entry) - (permit is not None)
        return self._unwrap(session, tenant_id, version)

    def _remember(self, tenant_id: int, version: int, plaintext: bytes) -> AESGCM:
        key = AESGCM(plaintext)
        entry = _Entry(key, self._clock() + self.max_age, iter(range(self.max_uses)), self.max_uses)
        next(entry.permits)  # this use
        with self._lock:
            self._misses += 1
            # Two threads may unwrap the same version at once: the uses of the one replaced still count.
            replaced = self._keys.get((tenant_id, version))
            if replaced is not None:
                self._evicted_uses += _uses(replaced)
            self._keys[(tenant_id, version)] = entry
        return key

    def invalidate(self, tenant_id: int | None = None) -> None:
        """Drop cached keys (all, or one tenant's), e.g. after rotation or shredding."""
        with self._lock:
            dropped = [k for k in self._keys if tenant_id is None or k[0] == tenant_id]
            # The hit counter only grows (metrics export it as a counter): dropped keys' uses stay counted.
            self._evicted_uses += sum(_uses(self._keys.pop(k)) for k in dropped)
            if tenant_id is None:
                self._active.clear()
            else:
                self._active.pop(tenant_id, None)
        self.index_keys.invalidate(tenant_id)

    def stats(self) -> CacheStats:
        """Current cache counters (no key material). Hits are uses served without unwrapping."""
        with self._lock:
            uses = self._evicted_uses + sum(_uses(e) for e in self._keys.values())
            return CacheStats(
                entries=len(self._keys),
                hits=max(0, uses - self._misses),
                misses=self._misses,
                provider_calls=self.provider.call_count(),
                max_age_seconds=self.max_age,
                max_uses=self.max_uses,
            )

    # -- tenant keys ---------------------------------------------------------------------------------

    def create_tenant_key(self, session: Session, tenant_id: int, *, now: datetime | None = None) -> TenantKey:
        """Make a new tenant key version and make it active (the previous active version is retired).

        Costs one root-provider call. The caller commits; until then no process can use the new version.
        """
        now = now or utcnow()
        latest = session.scalar(
            select(TenantKey.version)
            .where(TenantKey.tenant_id == tenant_id)
            .order_by(TenantKey.version.desc())
            .limit(1)
        )
        version = (latest or 0) + 1
        generated = self.provider.generate_key(context=tenant_key_context(tenant_id, version))
        session.execute(
            update(TenantKey)
            .where(TenantKey.tenant_id == tenant_id, TenantKey.state == ACTIVE)
            .values(state=RETIRED, retired_at=now)
        )
        row = TenantKey(
            tenant_id=tenant_id,
            version=version,
            state=ACTIVE,
            root_key_id=generated.root_key_id,
            wrapped_key=generated.wrapped,
            created_at=now,
        )
        session.add(row)
        session.flush()
        self._remember(tenant_id, version, generated.plaintext)
        with self._lock:
            self._misses -= 1  # a freshly generated key is not a cache miss
            self._active[tenant_id] = (version, self._clock())
        return row

    def active_version(self, session: Session, tenant_id: int) -> int:
        """The tenant's active key version (cached for at most ``max_age``)."""
        now = self._clock()
        cached = self._active.get(tenant_id)
        if cached is not None and now - cached[1] <= self.max_age:
            return cached[0]
        version = session.scalar(
            select(TenantKey.version).where(TenantKey.tenant_id == tenant_id, TenantKey.state == ACTIVE)
        )
        if version is None:
            raise NotFound("tenant has no active key (was it created with create_tenant?)")
        with self._lock:
            self._active[tenant_id] = (version, now)
        return version

    def tenant_key(self, session: Session, tenant_id: int, version: int) -> AESGCM:
        """The unwrapped tenant key of one version, from the cache or unwrapped by the root provider."""
        return self._key(session, tenant_id, version, self._clock())

    def _unwrap(self, session: Session, tenant_id: int, version: int) -> AESGCM:
        row = session.execute(
            select(TenantKey.wrapped_key, TenantKey.root_key_id).where(
                TenantKey.tenant_id == tenant_id, TenantKey.version == version
            )
        ).first()
        if row is None or row.wrapped_key is None:
            raise DecryptionError()  # unknown or destroyed version: opaque like any other failure
        plaintext = self.provider.unwrap(
            row.wrapped_key, root_key_id=row.root_key_id, context=tenant_key_context(tenant_id, version)
        )
        return self._remember(tenant_id, version, plaintext)

    # -- envelopes -----------------------------------------------------------------------------------

    def seal(self, session: Session, tenant_id: int, context: bytes, plaintext: bytes) -> tuple[bytes, int]:
        """Seal ``plaintext`` for a tenant under its active key; returns ``(envelope, key_version)``."""
        now = self._clock()
        active = self._active.get(tenant_id)
        version = (
            active[0]
            if active is not None and now - active[1] <= self.max_age
            else self.active_version(session, tenant_id)
        )
        return _seal_bytes(self._key(session, tenant_id, version, now), version, context, plaintext), version

    def open(self, session: Session, tenant_id: int, context: bytes, sealed: bytes) -> bytes:
        """Open an envelope sealed for this tenant and context; any failure is :class:`DecryptionError`."""
        if len(sealed) < _MIN_SIZE or sealed[0] != _FORMAT_V1:
            raise DecryptionError()
        version = int.from_bytes(sealed[1:5], "big")
        return _open_checked(self._key(session, tenant_id, version, self._clock()), context, sealed)

    def rewrap(self, session: Session, tenant_id: int, context: bytes, sealed: bytes, to_version: int) -> bytes:
        """Re-wrap an envelope's data key under ``to_version`` without touching the record ciphertext."""
        old = self.tenant_key(session, tenant_id, envelope.envelope_key_version(sealed))
        new = self.tenant_key(session, tenant_id, to_version)
        return envelope.rewrap_bytes(old, new, to_version, context, sealed)
