"""Blind indexes: find a person's label records by name, phone, postcode or e-mail without opening any other.

Beside each sealed label record the vault stores, per identifying value, a keyed HMAC-SHA256 of the value
after normalisation (:func:`normalise_name`, :func:`normalise_phone`, :func:`normalise_postcode`,
:func:`normalise_email`). A lookup normalises the person's values the same way, computes the same digests
and selects the records whose digests match, so only matching records are ever opened.

The HMAC key is per tenant and held like the tenant keys: generated and wrapped by the root provider
(``index_keys``, context purpose ``index-key``), unwrapped on demand and cached for ``max_age`` seconds
(:class:`IndexKeys`, one per :class:`~vault.keys.KeyManager`). It is rotatable: a new version becomes
active, writers move to it within ``max_age``, and :func:`vault.index_rotation.reindex` rewrites every
record's entries online; until the old version is destroyed, lookups compute digests under every live
version, so a record is found whichever version indexed it.

What the index reveals to someone holding the database without the key: which records of one tenant share
a name, a phone number, a postcode or an e-mail (equal digests), and how many values each record has. It
does not reveal the values: a digest can't be inverted or tested against guesses without the tenant's
index key, which only the root key unwraps; digests of two tenants (or two key versions) can't be compared.
"""

from __future__ import annotations

import hmac
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import phonenumbers
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.errors import DecryptionError
from vault.interfaces import KeyProvider
from vault.models import BlindIndexEntry, IndexKey, LabelRecordRow, utcnow
from vault.records import LabelRecord

ACTIVE, RETIRED, DESTROYED = "active", "retired", "destroyed"
#: The kinds of value indexed, as stored in ``blind_index.term`` (and bound into each digest).
NAME, PHONE, POSTCODE, EMAIL = "name", "phone", "postcode", "email"
TERMS = (NAME, PHONE, POSTCODE, EMAIL)

_ENTRIES = cast(Table, BlindIndexEntry.__table__)


def index_key_context(tenant_id: int, version: int) -> dict[str, str]:
    """Context bound to a wrapped index key (AAD locally, encryption context in KMS); no PII."""
    return {"labelvault:purpose": "index-key", "labelvault:tenant": str(tenant_id), "labelvault:version": str(version)}


# -- normalisation ---------------------------------------------------------------------------------------


def _fold(value: str) -> str:
    # NFKC folds width and compatibility forms (ＷＡＮＧ → WANG, ㈱ → (株)); casefold after it, then NFKC again
    # because case folding can leave a string that is no longer in NFKC (ß → ss is fine, some are not).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def normalise_name(value: str | None) -> str | None:
    """A name as indexed: NFKC, case-folded, whitespace runs collapsed to one space (``None`` if empty)."""
    if not value:
        return None
    folded = " ".join(_fold(value).split())
    return folded or None


def normalise_postcode(value: str | None) -> str | None:
    """A postcode as indexed: NFKC, case-folded, without spaces and hyphens (``100-0001`` = ``1000001``)."""
    if not value:
        return None
    folded = "".join(c for c in _fold(value) if not c.isspace() and c not in "-‐‑‒–—―−ー")
    return folded or None


def normalise_phone(value: str | None, region: str | None = None) -> str | None:
    """A phone number in E.164 (``+8613800138000``), read in ``region`` (ISO country) when it has no ``+``.

    ``None`` when it can't be read as a possible number of any country: such a value is not indexed (an
    exact-text match would miss every other format anyway).
    """
    if not value:
        return None
    try:
        number = phonenumbers.parse(unicodedata.normalize("NFKC", value), (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(value: str | None) -> str | None:
    """An e-mail address as indexed: NFKC, trimmed, case-folded (``None`` unless it has one ``@``)."""
    if not value:
        return None
    folded = _fold(value).strip()
    return folded if folded.count("@") == 1 and not folded.startswith("@") and not folded.endswith("@") else None


def record_terms(record: LabelRecord) -> dict[str, str]:
    """The normalised values of a label record that get indexed, by term (no e-mail: records carry none)."""
    terms = {
        NAME: normalise_name(record.name),
        PHONE: normalise_phone(record.phone, record.country_code),
        POSTCODE: normalise_postcode(record.postal_code),
    }
    return {term: value for term, value in terms.items() if value is not None}


def digest(key: bytes, term: str, value: str) -> bytes:
    """The blind index of one normalised value: HMAC-SHA256 over the term and the value."""
    return hmac.digest(key, f"{term}\x00{value}".encode(), "sha256")


# -- the index key -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexKeyVersion:
    """One unwrapped version of a tenant's index key."""

    version: int
    key: bytes = field(repr=False)


@dataclass(slots=True)
class _Cached:
    active: IndexKeyVersion
    live: tuple[IndexKeyVersion, ...]
    expires: float


class IndexKeys:
    """A tenant's index key versions, unwrapped by the root provider and cached for ``max_age`` seconds.

    The first use for a tenant without an index key creates version 1 (tenants made before blind indexes
    existed; concurrent creators settle on one row). The caller commits.
    """

    def __init__(self, provider: KeyProvider, *, max_age: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.provider = provider
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[int, _Cached] = {}

    def invalidate(self, tenant_id: int | None = None) -> None:
        """Drop cached index keys (all, or one tenant's), e.g. after a rotation in this process."""
        with self._lock:
            if tenant_id is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant_id, None)

    def _load(self, session: Session, tenant_id: int) -> _Cached:
        cached = self._cache.get(tenant_id)
        now = self._clock()
        if cached is not None and now <= cached.expires:
            return cached
        rows = session.execute(
            select(IndexKey.version, IndexKey.state, IndexKey.wrapped_key, IndexKey.root_key_id)
            .where(IndexKey.tenant_id == tenant_id, IndexKey.state != DESTROYED)
            .order_by(IndexKey.version)
        ).all()
        if not any(r.state == ACTIVE for r in rows):
            self.create(session, tenant_id)
            return self._load(session, tenant_id)
        live = []
        for r in rows:
            if r.wrapped_key is None:
                raise DecryptionError()
            plaintext = self.provider.unwrap(
                r.wrapped_key, root_key_id=r.root_key_id, context=index_key_context(tenant_id, r.version)
            )
            live.append(IndexKeyVersion(r.version, plaintext))
        active = next(k for k, r in zip(live, rows, strict=True) if r.state == ACTIVE)
        entry = _Cached(active, tuple(live), now + self.max_age)
        with self._lock:
            self._cache[tenant_id] = entry
        return entry

    def active(self, session: Session, tenant_id: int) -> IndexKeyVersion:
        """The version new index entries are written under."""
        return self._load(session, tenant_id).active

    def live(self, session: Session, tenant_id: int) -> tuple[IndexKeyVersion, ...]:
        """Every version that may still index some record (active and retired): what a lookup digests under."""
        return self._load(session, tenant_id).live

    def create(self, session: Session, tenant_id: int, *, now: datetime | None = None) -> int:
        """Make a new index key version and make it active (a previous active one is retired); returns it.

        Costs one root-provider call. Runs in a savepoint: if another process created the same version
        first, its row stands and this one is dropped.
        """
        now = now or utcnow()
        latest = session.scalar(select(func.max(IndexKey.version)).where(IndexKey.tenant_id == tenant_id))
        version = (latest or 0) + 1
        generated = self.provider.generate_key(context=index_key_context(tenant_id, version))
        try:
            with session.begin_nested():
                session.execute(
                    update(IndexKey)
                    .where(IndexKey.tenant_id == tenant_id, IndexKey.state == ACTIVE)
                    .values(state=RETIRED, retired_at=now)
                )
                session.execute(
                    insert(IndexKey).values(
                        tenant_id=tenant_id,
                        version=version,
                        state=ACTIVE,
                        root_key_id=generated.root_key_id,
                        wrapped_key=generated.wrapped,
                        created_at=now,
                    )
                )
        except IntegrityError:
            self.invalidate(tenant_id)  # another process made this version: use theirs
            return version
        fresh = IndexKeyVersion(version, generated.plaintext)
        with self._lock:
            previous = self._cache.get(tenant_id)
            if latest is None or previous is not None:  # what is live is known without unwrapping anything
                older = () if previous is None else previous.live
                self._cache[tenant_id] = _Cached(fresh, (*older, fresh), self._clock() + self.max_age)
            else:
                self._cache.pop(tenant_id, None)
        return version


# -- entries -------------------------------------------------------------------------------------------------


def index_record(session: Session, *, index_keys: IndexKeys, row: LabelRecordRow, record: LabelRecord) -> None:
    """Write the blind index entries of a freshly sealed record (replacing any it had). The caller commits."""
    key = index_keys.active(session, row.tenant_id)
    terms = record_terms(record)
    if row.version > 1:  # a resealed record: its old values go with the old ciphertext
        session.execute(delete(_ENTRIES).where(_ENTRIES.c.label_record_id == row.id))
    if terms:
        session.execute(
            insert(_ENTRIES),
            [
                {
                    "tenant_id": row.tenant_id,
                    "label_record_id": row.id,
                    "index_version": key.version,
                    "term": term,
                    "digest": digest(key.key, term, value),
                }
                for term, value in terms.items()
            ],
        )


@dataclass(frozen=True, slots=True)
class PersonValues:
    """What a person gives to be found: any of name, phone (with the country to read it in), postcode, e-mail.

    Every value given must match a record for the record to match (postcode plus name narrows a common name).
    """

    name: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    phone_region: str | None = None
    postcode: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)

    def terms(self) -> dict[str, str]:
        """The normalised values, by term; a value given but unreadable is an error, not a wildcard."""
        out: dict[str, str] = {}
        for term, raw, value in (
            (NAME, self.name, normalise_name(self.name)),
            (PHONE, self.phone, normalise_phone(self.phone, self.phone_region)),
            (POSTCODE, self.postcode, normalise_postcode(self.postcode)),
            (EMAIL, self.email, normalise_email(self.email)),
        ):
            if raw and raw.strip() and value is None:
                raise ValueError(
                    f"the {term} given can't be read"
                    + (" (give the number with +country code, or the country it belongs to)" if term == PHONE else "")
                )
            if value is not None:
                out[term] = value
        return out

    def as_dict(self) -> dict[str, str]:
        """The values given, as plain strings (what a request seals)."""
        raw = {
            "name": self.name,
            "phone": self.phone,
            "phone_region": self.phone_region,
            "postcode": self.postcode,
            "email": self.email,
        }
        return {k: v for k, v in raw.items() if v}


def find_label_records(session: Session, *, index_keys: IndexKeys, tenant_id: int, person: PersonValues) -> list[int]:
    """Ids of the tenant's orders whose label record matches every value ``person`` gives, by the index alone.

    Nothing is opened: the result is read from digests. An empty ``person`` is an error (it would match all).
    """
    terms = person.terms()
    if not terms:
        raise ValueError("give at least one of name, phone, postcode or e-mail to look a person up")
    digests = [digest(k.key, term, value) for k in index_keys.live(session, tenant_id) for term, value in terms.items()]
    query = (
        select(LabelRecordRow.order_id)
        .join_from(_ENTRIES, LabelRecordRow, LabelRecordRow.id == _ENTRIES.c.label_record_id)
        .where(_ENTRIES.c.tenant_id == tenant_id, _ENTRIES.c.digest.in_(digests))
        .group_by(LabelRecordRow.order_id)
        .having(func.count(func.distinct(_ENTRIES.c.term)) == len(terms))
        .order_by(LabelRecordRow.order_id)
    )
    return list(session.scalars(query))


def matches(record: LabelRecord, person: PersonValues) -> bool:
    """Whether an opened record really carries every value the person gave (a digest match, re-checked)."""
    mine = record_terms(record)
    return all(mine.get(term) == value for term, value in person.terms().items())
