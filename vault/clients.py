"""API clients of the label API: their keys, scopes, own CIDRs, label profiles, expiry and revocation.

A key looks like ``lv_<key id>_<secret>``: the key id (16 hex digits) is public and finds the row; the
secret is 256 random bits. The key is shown once, at creation, and only its SHA-256 digest is stored.

Why a fast hash and not a password hash (bcrypt, scrypt, argon2): a password hash is slow on purpose so
that guessing a *low-entropy* secret from its stolen hash costs a lot per guess. A 256-bit random secret
can't be guessed at any speed, so slowness buys nothing; it would only add tens of milliseconds (and a
CPU-exhaustion lever for anyone sending bad keys) to every label request. The digest is domain-separated
(``labelvault-api-key-v1``) and compared in constant time.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import String, bindparam, select, update
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.directsql import DirectStatement
from vault.errors import ClientSetupError, InvalidApiKey, NotFound
from vault.models import ApiClient, CarrierAccount, Tenant, utcnow
from vault.netaddr import AddressError, IPAddress, IPNetwork, in_any, parse_network
from vault.records import LabelRecord, valid_printer_font

LABELS_ISSUE = "labels:issue"
#: Buy carrier labels (``POST /v1/shipments`` and the shipment routes): the vault shares the address with the
#: carrier, the client gets the printed label and the tracking number.
SHIPMENTS_BUY = "shipments:buy"
ADMIN = "admin"
SCOPES = frozenset({LABELS_ISSUE, SHIPMENTS_BUY, ADMIN})

#: Fields a label can't be printed without; every profile releases them.
REQUIRED_FIELDS = frozenset({"name", "address_line1", "city", "country_code"})
ALL_FIELDS = frozenset(LabelRecord.field_names())

#: How often ``last_used_at`` is written: at most once a minute per client, not once per label.
LAST_USE_RESOLUTION = timedelta(minutes=1)

_KEY = re.compile(r"lv_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_KEY_DOMAIN = b"labelvault-api-key-v1\x00"
#: A key that exists nowhere (random, never shown): an unknown key id is checked against its digest.
_DUMMY_KEY = f"lv_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
_COUNTRY = re.compile(r"[A-Z]{2}")


def hash_key(key: str) -> str:
    """The stored digest of an API key (hex SHA-256, domain-separated)."""
    return hashlib.sha256(_KEY_DOMAIN + key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LabelProfile:
    """Which label fields a client receives, and how its printer prints them.

    ``phone_countries``, if set, limits the phone to those destination countries (where the carrier needs
    it); elsewhere it is withheld like any other field. ``printer_font``, for ZPL: a font the warehouse has
    downloaded to its printers (``E:ANMDJ.TTF``, or a ``^CW`` alias like ``J``), used for all text;
    without it, text the resident font can't print (CJK, Cyrillic on some models) is sent as graphics.
    ``carrier_only``: the client receives carrier labels (the shipment API) and never the address itself, as
    JSON or as an address label; every release path refuses it (``carrier-label-only``).
    """

    fields: frozenset[str]
    phone_countries: frozenset[str] | None = None
    printer_font: str | None = None
    carrier_only: bool = False

    def __post_init__(self) -> None:
        unknown = self.fields - ALL_FIELDS
        if unknown:
            raise ClientSetupError(f"unknown label fields: {', '.join(sorted(unknown))}")
        missing = REQUIRED_FIELDS - self.fields
        if missing:
            raise ClientSetupError(f"a label profile must release {', '.join(sorted(missing))}")
        if self.phone_countries is not None:
            if "phone" not in self.fields:
                raise ClientSetupError("phone countries given but the profile does not release the phone")
            bad = [c for c in self.phone_countries if not _COUNTRY.fullmatch(c)]
            if bad:
                raise ClientSetupError("phone countries must be ISO 3166 alpha-2 codes such as JP or US")
        if self.printer_font is not None and not valid_printer_font(self.printer_font):
            raise ClientSetupError("a printer font is a stored font like E:ANMDJ.TTF or a one-character alias")

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LabelProfile:
        """The profile stored on a client (``None`` is the default profile)."""
        if data is None:
            return DEFAULT_PROFILE
        countries = data.get("phone_countries")
        return cls(
            frozenset(data["fields"]),
            None if countries is None else frozenset(countries),
            data.get("printer_font"),
            bool(data.get("carrier_only", False)),
        )

    def to_json(self) -> dict[str, Any]:
        """The stored form (sorted lists, so equal profiles store equal JSON; no key for an unset font)."""
        countries = None if self.phone_countries is None else sorted(self.phone_countries)
        stored: dict[str, Any] = {"fields": sorted(self.fields), "phone_countries": countries}
        if self.printer_font is not None:
            stored["printer_font"] = self.printer_font
        if self.carrier_only:
            stored["carrier_only"] = True
        return stored

    def released_fields(self, country_code: str) -> frozenset[str]:
        """The fields released for a label going to ``country_code``."""
        if "phone" in self.fields and self.phone_countries is not None and country_code not in self.phone_countries:
            return self.fields - {"phone"}
        return self.fields

    def apply(self, record: LabelRecord) -> LabelRecord:
        """A copy of ``record`` with every field this profile does not release set to ``None``."""
        # The required fields are always released, so only optional (``str | None``) fields become None.
        withheld: dict[str, Any] = dict.fromkeys(ALL_FIELDS - self.released_fields(record.country_code))
        return dataclasses.replace(record, **withheld)


#: Without a profile a client gets everything a label needs except the buyer's phone.
DEFAULT_PROFILE = LabelProfile(ALL_FIELDS - {"phone"})
#: A client that may receive carrier labels only: what new clients get once the tenant has a carrier account.
CARRIER_ONLY_PROFILE = LabelProfile(REQUIRED_FIELDS, carrier_only=True)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new client and its key. The key exists only here: show it once, then drop it."""

    client: ApiClient
    key: str = field(repr=False)


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    out = sorted(set(scopes))
    if not out:
        raise ClientSetupError("a client needs at least one scope")
    unknown = [s for s in out if s not in SCOPES]
    if unknown:
        raise ClientSetupError(f"unknown scope {unknown[0]!r} (known: {', '.join(sorted(SCOPES))})")
    return out


def _check_cidrs(cidrs: Iterable[str], *, allow_broad: bool) -> list[str]:
    out: list[str] = []
    for text in cidrs:
        try:
            network = str(parse_network(text, allow_broad=allow_broad))
        except AddressError as exc:
            raise ClientSetupError(f"CIDR {text!r}: {exc}") from None
        if network not in out:
            out.append(network)
    return out


def create_client(
    session: Session,
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    cidrs: Iterable[str],
    profile: LabelProfile | None = None,
    expires_at: datetime | None = None,
    allow_broad: bool = False,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> IssuedKey:
    """Create an API client with a fresh key, audited as ``client.create``. The caller commits.

    ``cidrs`` may be empty: such a client is refused everywhere until ``allow_cidrs`` gives it a range.
    Without a ``profile``, a client of a tenant with a carrier account is carrier-label-only
    (:data:`CARRIER_ONLY_PROFILE`); one that must read addresses is given its profile explicitly.
    """
    now = now or utcnow()
    name = name.strip()
    if not name or len(name) > 200:
        raise ClientSetupError("a client name is 1 to 200 characters")
    if expires_at is not None and expires_at <= now:
        raise ClientSetupError("the expiry must be in the future")
    if session.scalar(select(ApiClient.id).where(ApiClient.tenant_id == tenant.id, ApiClient.name == name)):
        raise ClientSetupError(f"the tenant has a client named {name!r} already")
    if profile is None and session.scalar(
        select(CarrierAccount.id).where(CarrierAccount.tenant_id == tenant.id, CarrierAccount.removed_at.is_(None))
    ):
        profile = CARRIER_ONLY_PROFILE
    key_id = secrets.token_hex(8)
    key = f"lv_{key_id}_{secrets.token_urlsafe(32)}"
    client = ApiClient(
        tenant_id=tenant.id,
        name=name,
        key_id=key_id,
        key_hash=hash_key(key),
        scopes=_check_scopes(scopes),
        cidrs=_check_cidrs(cidrs, allow_broad=allow_broad),
        profile=None if profile is None else profile.to_json(),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(client)
    session.flush()
    append_event(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="client.create",
        ip=ip,
        purpose="administration",
        details={
            "client": key_id,
            "scopes": client.scopes,
            "cidrs": client.cidrs,
            "profile": client.profile,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        },
        now=now,
    )
    return IssuedKey(client, key)


def find_client(session: Session, *, tenant_id: int, ref: str) -> ApiClient:
    """The tenant's client by key id or by name; :class:`NotFound` otherwise."""
    client = session.scalar(
        select(ApiClient).where(ApiClient.tenant_id == tenant_id, (ApiClient.key_id == ref) | (ApiClient.name == ref))
    )
    if client is None:
        raise NotFound("no such API client")
    return client


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API client as one request sees it: what the pipeline reads, detached from any session.

    Read by :func:`authenticate` with one Core query (client joined with its tenant): an ORM load of the
    client and its tenant cost three times as much, on every label request.
    """

    id: int
    tenant_id: int
    key_id: str
    scopes: tuple[str, ...]
    cidrs: tuple[str, ...]
    profile: dict[str, Any] | None
    last_used_at: datetime | None
    #: The tenant's return address, printed on its labels.
    return_address: dict[str, Any] | None = field(repr=False)


_CLIENTS = ApiClient.__table__
_TENANTS = Tenant.__table__


class _ClientRow(NamedTuple):
    """What authentication reads of a client and its tenant (every column ``None``: no such key id)."""

    id: int | None
    tenant_id: int
    key_id: str
    scopes: list[str]
    cidrs: list[str]
    profile: dict[str, Any] | None
    last_used_at: datetime | None
    key_hash: str
    revoked_at: datetime | None
    expires_at: datetime | None
    return_address: dict[str, Any] | None


#: The key id asked for, as a one-row table: the lookup joins the client to it, so it yields one row whether
#: the key id exists or not (all ``None`` when it doesn't), and the database, the driver and the row
#: processing do the same work for an unknown key id as for a known one.
_ASKED = select(bindparam("b_key_id", type_=String(16)).label("key_id")).subquery("asked")

#: Built once and run directly (vault/directsql.py): authentication runs on every API request.
_CLIENT_BY_KEY_ID = DirectStatement(
    select(
        *(_CLIENTS.c[name] for name in ("id", "tenant_id", "key_id", "scopes", "cidrs", "profile")),
        *(_CLIENTS.c[name] for name in ("last_used_at", "key_hash", "revoked_at", "expires_at")),
        _TENANTS.c.return_address,
    ).select_from(
        _ASKED.outerjoin(_CLIENTS, _CLIENTS.c.key_id == _ASKED.c.key_id).outerjoin(
            _TENANTS, _TENANTS.c.id == _CLIENTS.c.tenant_id
        )
    ),
    _ClientRow,
)


def authenticate(session: Session, *, key: str, now: datetime | None = None) -> Principal:
    """The client an API key belongs to, if the key is well-formed, right, unrevoked and unexpired.

    Every failure is the same :class:`InvalidApiKey`. The digest comparison is constant-time and runs
    even for an unknown key id, so timing doesn't tell which key ids exist.
    """
    now = now or utcnow()
    match = _KEY.fullmatch(key)
    row = None if match is None else _CLIENT_BY_KEY_ID.first(session, {"b_key_id": match[1]})
    if row is None or row.id is None:
        _dummy_check(key)
        raise InvalidApiKey()
    if not hmac.compare_digest(row.key_hash, hash_key(key)):
        raise InvalidApiKey()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise InvalidApiKey()
    return Principal(
        row.id, row.tenant_id, row.key_id, tuple(row.scopes), tuple(row.cidrs), row.profile, row.last_used_at,
        row.return_address,
    )  # fmt: skip


def _dummy_check(key: str) -> None:
    """What a wrong secret costs, for an unknown key id: a client row's values decoded as the database's
    row is (its JSON columns), and the digest compared in constant time with a dummy key's."""
    scopes, cidrs, profile = (json.loads(value) for value in _DUMMY_JSON)
    row = _ClientRow(0, 0, _DUMMY_KEY[3:19], scopes, cidrs, profile, None, _DUMMY_DIGEST, None, None, None)
    hmac.compare_digest(row.key_hash, hash_key(key))


_DUMMY_DIGEST = hash_key(_DUMMY_KEY)
_DUMMY_JSON = (json.dumps([LABELS_ISSUE]), json.dumps(["192.0.2.0/24"]), "null")


def client_allows(client: Principal, ip: IPAddress) -> bool:
    """Whether ``ip`` is inside one of the client's own CIDRs (a client without CIDRs allows nothing)."""
    return in_any(ip, _stored_networks(tuple(client.cidrs)))


@functools.lru_cache(maxsize=1024)
def _stored_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    # Parsed once per distinct list (every request of a client checks the same one).
    networks = []
    for text in cidrs:
        try:
            networks.append(parse_network(text, allow_broad=True))  # stored ranges were checked when added
        except AddressError:
            continue  # an unparseable stored range matches nothing (fail closed)
    return tuple(networks)


def record_use(session: Session, *, client: Principal, ip: str, now: datetime | None = None) -> bool:
    """Stamp the client's last use (at most once per :data:`LAST_USE_RESOLUTION`). Returns whether it wrote."""
    now = now or utcnow()
    if client.last_used_at is not None and now - client.last_used_at < LAST_USE_RESOLUTION:
        return False
    session.execute(update(ApiClient).where(ApiClient.id == client.id).values(last_used_at=now, last_used_ip=ip))
    return True


def revoke_client(
    session: Session, *, client: ApiClient, actor: str, ip: str | None = None, now: datetime | None = None
) -> bool:
    """Revoke a client's key for good, audited as ``client.revoke``. Returns False if it was revoked already."""
    if client.revoked_at is not None:
        return False
    now = now or utcnow()
    client.revoked_at = now
    _audit_change(session, client, "client.revoke", {"client": client.key_id}, actor=actor, ip=ip, now=now)
    return True


def set_profile(
    session: Session,
    *,
    client: ApiClient,
    profile: LabelProfile | None,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Change which label fields ``client`` receives (``None``: the default profile), audited as
    ``client.profile``. Returns False if nothing changed; a revoked client can't be changed.
    """
    if client.revoked_at is not None:
        raise ClientSetupError("the client is revoked")
    stored = None if profile is None or profile == DEFAULT_PROFILE else profile.to_json()
    if stored == client.profile:
        return False
    client.profile = stored
    details = {"client": client.key_id, "profile": stored}
    _audit_change(session, client, "client.profile", details, actor=actor, ip=ip, now=now)
    return True


def allow_cidrs(
    session: Session,
    *,
    client: ApiClient,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    allow_broad: bool = False,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Add and remove ranges of the client's own allowlist, audited as ``client.allow``. Returns the new list."""
    added = _check_cidrs(add, allow_broad=allow_broad)
    removed = _check_cidrs(remove, allow_broad=True)
    cidrs = [c for c in client.cidrs if c not in removed]
    cidrs += [c for c in added if c not in cidrs]
    if cidrs == client.cidrs:
        return cidrs
    client.cidrs = cidrs
    details = {"client": client.key_id, "added": added, "removed": removed, "cidrs": cidrs}
    _audit_change(session, client, "client.allow", details, actor=actor, ip=ip, now=now)
    return cidrs


def _audit_change(
    session: Session,
    client: ApiClient,
    action: str,
    details: dict[str, Any],
    *,
    actor: str,
    ip: str | None,
    now: datetime | None,
) -> None:
    """Write the client's change, then its audit event (an administration act of ``actor``)."""
    session.flush()
    append_event(
        session,
        tenant_id=client.tenant_id,
        actor=actor,
        action=action,
        ip=ip,
        purpose="administration",
        details=details,
        now=now,
    )
