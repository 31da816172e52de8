"""SQLAlchemy 2.0 typed models. Only ``LabelRecord.envelope``, ``MarketplaceAccount.credentials_envelope`` and
``CarrierAccount.credentials_envelope`` hold PII or secrets, and only sealed; everything else here is safe to
show an operator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of timestamp stored)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a timezone-aware UTC time is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


IntPK = Annotated[int, mapped_column(primary_key=True)]
Timestamp = Annotated[datetime, mapped_column(UTCDateTime())]
Created = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]
Name = Annotated[str, mapped_column(String(200))]
Code = Annotated[str, mapped_column(String(40))]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        bytes: LargeBinary(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        list[Any]: JSON(),
    }


class Tenant(Base):
    """A seller organisation: owns accounts, clients, users, keys and an audit chain."""

    __tablename__ = "tenants"

    id: Mapped[IntPK]
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[Name]
    # The seller's return address printed on labels: {"name": ..., "lines": [...], "country_code": ...}.
    return_address: Mapped[dict[str, Any] | None]
    # The seller's IANA time zone: the dashboard's dates and what is "to ship today" (vault.tenants).
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[Created]
    shredded_at: Mapped[datetime | None]

    keys: Mapped[list[TenantKey]] = relationship(back_populates="tenant", order_by="TenantKey.version")


class TenantKey(Base):
    """One version of a tenant's key, wrapped by the root key. ``wrapped_key`` is gone once destroyed."""

    __tablename__ = "tenant_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    version: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))  # active | retired | destroyed
    root_key_id: Mapped[str] = mapped_column(String(300))
    wrapped_key: Mapped[bytes | None]
    created_at: Mapped[Created]
    retired_at: Mapped[datetime | None]
    destroyed_at: Mapped[datetime | None]

    tenant: Mapped[Tenant] = relationship(back_populates="keys")


class MarketplaceAccount(Base):
    """A seller's account on one marketplace; its API credentials are sealed like PII."""

    __tablename__ = "marketplace_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    marketplace: Mapped[Code]  # a registered platform's code (connectors.registry): "amazon", "shopify", …
    name: Mapped[Name]
    region: Mapped[Code]  # the platform's region (Amazon: na | eu | fe), or "global"
    api_version: Mapped[Code]  # the platform API version synced ("2026-01-01", "v0", "2026-07", …)
    # The platform's market or shop identifiers: Amazon marketplace ids, a Shopify shop domain, eBay's EBAY_US…
    marketplace_ids: Mapped[list[str]]
    sandbox: Mapped[bool] = mapped_column(default=False)
    # Where the platform's API and token service are, when not its own production hosts: only a sandbox,
    # or an origin the operator allows (LABELVAULT_MARKETPLACE_ENDPOINT_OVERRIDES), never a tenant's choice.
    api_endpoint: Mapped[str | None] = mapped_column(String(300))
    token_endpoint: Mapped[str | None] = mapped_column(String(300))
    credentials_envelope: Mapped[bytes | None]
    credentials_key_version: Mapped[int | None]
    # When the seller's grant runs out (eBay's refresh token, ~18 months after consent): not a secret, shown
    # on the dashboard with the re-consent link before it passes. None: the platform's grant doesn't expire.
    grant_expires_at: Mapped[datetime | None]
    sync_cursor: Mapped[datetime | None]
    sync_interval_seconds: Mapped[int] = mapped_column(default=900)
    last_sync: Mapped[dict[str, Any] | None]
    created_at: Mapped[Created]
    removed_at: Mapped[datetime | None]


class Order(Base):
    """Non-PII order metadata. The buyer's address lives only in the order's sealed ``LabelRecordRow``."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("account_id", "external_order_id"),
        Index(None, "tenant_id", "marketplace", "external_order_id"),
    )

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("marketplace_accounts.id"))
    marketplace: Mapped[Code]
    marketplace_id: Mapped[str | None] = mapped_column(String(40))
    external_order_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[Code]
    fulfillment_channel: Mapped[str | None] = mapped_column(String(20))
    purchased_at: Mapped[datetime]
    last_updated_at: Mapped[datetime]
    ship_by: Mapped[datetime | None]
    latest_delivery_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # The label's text as served couldn't be sealed or printed and was repaired (vault.records.repair_text).
    text_repaired: Mapped[bool] = mapped_column(default=False)
    # Why a live order has no label record (vault.records.LABEL_WITHHELD): the platform redacted the buyer's
    # fields, or ships the order itself. None: nothing was withheld.
    label_withheld: Mapped[str | None] = mapped_column(String(20))
    retention_until: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    labels_issued: Mapped[int] = mapped_column(default=0)
    # Issues an owner granted beyond the reissue cap, one at a time (vault.release.grant_reprint, audited).
    reprints_granted: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[Created]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    label: Mapped[LabelRecordRow | None] = relationship(back_populates="order", uselist=False)


class LabelRecordRow(Base):
    """The sealed label record of one order (current version only: an old version is shredded)."""

    __tablename__ = "label_records"
    __table_args__ = (Index(None, "tenant_id", "tenant_key_version"),)

    id: Mapped[IntPK]
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    version: Mapped[int] = mapped_column(default=1)
    # "marketplace" (as synced) or "correction" (the seller corrected it at the buyer's request; a later
    # sync must not put the marketplace's old address back).
    source: Mapped[str] = mapped_column(String(20), default="marketplace")
    schema_version: Mapped[int]
    tenant_key_version: Mapped[int]
    envelope: Mapped[bytes]
    created_at: Mapped[Created]

    order: Mapped[Order] = relationship(back_populates="label")


class AuditHead(Base):
    """The head of one audit chain (a tenant's, or the platform's): last sequence number and hash."""

    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(40), primary_key=True)  # "tenant:<id>" or "platform"
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """One append-only, hash-chained audit event. Holds references and outcomes, never PII."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index(None, "tenant_id", "occurred_at"),
        Index(None, "tenant_id", "order_ref"),
    )

    id: Mapped[IntPK]
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int]
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(60))
    order_ref: Mapped[str | None] = mapped_column(String(160))
    ip: Mapped[str | None] = mapped_column(String(45))
    purpose: Mapped[str | None] = mapped_column(String(60))
    details: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ApiClient(Base):
    """A machine client of the label API (a warehouse station, a printing service), owned by one tenant.

    Only the SHA-256 digest of its key is stored (see :mod:`vault.clients`); ``key_id`` is the public part
    of the key, used to find the row. ``cidrs`` are the client's own allowed ranges (checked on top of the
    global allowlist); ``profile`` is its label profile (which fields it receives), ``None`` for the default.
    """

    __tablename__ = "api_clients"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[Name]
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]]
    cidrs: Mapped[list[str]]
    profile: Mapped[dict[str, Any] | None]
    created_at: Mapped[Created]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    last_used_ip: Mapped[str | None] = mapped_column(String(45))

    # Joined on load: the label path needs the tenant (return address) and pays no extra query for it.
    tenant: Mapped[Tenant] = relationship(lazy="joined", innerjoin=True)


class LabelDelivery(Base):
    """A label request made with an ``Idempotency-Key``, remembered so a retry gets the same labels again.

    No PII, and nothing to unseal: the key's SHA-256 (scoped to the client: the same key from another client
    is another request), a digest of the request (a different request with the same key is refused), and
    what the labels were made of: the format and options, the time printed on them and, per order of the
    request in order, ``[marketplace, order id, issue]`` for a released order or ``[marketplace, order id,
    reason]`` for a refused one (``null`` reference for a malformed one). A retry re-renders the labels from
    the sealed records (vault/redelivery.py). Kept until ``expires_at``.
    """

    __tablename__ = "label_deliveries"
    __table_args__ = (UniqueConstraint("client_id", "key_hash"), Index(None, "client_id", "expires_at"))

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    key_hash: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(10))
    options: Mapped[dict[str, Any]]
    orders: Mapped[list[Any]]
    printed_at: Mapped[datetime]
    created_at: Mapped[Created]
    expires_at: Mapped[datetime]


class SyncState(Base):
    """One account's sync bookkeeping beside its ``sync_cursor``: who may sync it now, and where a half-paged
    window resumes. No PII (a page token is the marketplace's opaque paging handle).

    The lease (``lease_owner`` until ``lease_expires_at``) keeps two processes from syncing one account at
    once; it is taken and renewed with conditional UPDATEs, so it works alike on SQLite and PostgreSQL, and a
    crashed holder's lease simply runs out (see :mod:`connectors.sync`).
    """

    __tablename__ = "sync_states"

    account_id: Mapped[int] = mapped_column(ForeignKey("marketplace_accounts.id"), primary_key=True)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    page_token: Mapped[str | None] = mapped_column(String(4000))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# -- retention, legal holds and key epochs (see vault/retention.py, vault/epochs.py) -----------------------

# What the purge walks: due orders not yet erased, in deadline order (erased stubs drop out of the index).
Index(
    "ix_orders_due",
    Order.retention_until,
    Order.id,
    postgresql_where=Order.erased_at.is_(None),
    sqlite_where=Order.erased_at.is_(None),
)


class TenantRetentionPolicy(Base):
    """A tenant's own retention for one marketplace: only ever shorter than the platform rule."""

    __tablename__ = "tenant_retention_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "marketplace"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    marketplace: Mapped[Code]
    days_after_delivery: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LegalHold(Base):
    """Keeps a tenant's orders (all, or one) from erasure until ``ends_at`` or release. No PII: the reason
    names a matter (case number, authority), the owner a person or role of the seller."""

    __tablename__ = "legal_holds"

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    owner: Mapped[Name]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[Created]
    ends_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(100))


class RootKeyRecord(Base):
    """The key-epoch job's ledger of root keys: when each became current, was retired and was destroyed."""

    __tablename__ = "root_keys"

    root_key_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    provider: Mapped[Code]
    current_from: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    destroyed_at: Mapped[datetime | None]


# -- the seller dashboard: users, second factor, sessions, dashboard allowlist (see vault/users/) ------------


class User(Base):
    """A seller's dashboard user. No buyer PII; the password is an argon2 hash, the TOTP secret is sealed.

    An invited user has no password until the invitation is accepted (``invite_token_hash`` is the SHA-256
    digest of the one-time invitation token). ``totp_enabled_at`` is set once enrolment is confirmed; until
    then ``totp_secret`` holds the secret being enrolled.
    """

    __tablename__ = "users"

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[Name]
    role: Mapped[str] = mapped_column(String(16))  # owner | operator | viewer
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret: Mapped[bytes | None]
    totp_key_version: Mapped[int | None]
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None]
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    locale: Mapped[str | None] = mapped_column(String(16))
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[Created]
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]


class SignInAttempts(Base):
    """Sign-in attempts at one user's account from one source address since the last success or lockout.

    Counted before the password or code is checked (an atomic upsert), so parallel attempts can't all be
    checked before the lockout engages; ``source`` is the client address ('' when unknown). The account-wide
    backstop is :attr:`User.failed_logins` / :attr:`User.locked_until`.
    """

    __tablename__ = "sign_in_attempts"
    __table_args__ = (UniqueConstraint("user_id", "source"),)

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(45))
    attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]


class RecoveryCode(Base):
    """One single-use recovery code of a user (its SHA-256 digest; the code is shown once)."""

    __tablename__ = "recovery_codes"

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Created]
    used_at: Mapped[datetime | None]


class DashboardSession(Base):
    """A signed-in dashboard session, server side: the cookie holds a random token, this row its digest.

    ``reauth_at`` is when the second factor was last entered (sign-in or a fresh check before a sensitive
    action such as a label preview).
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Created]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    reauth_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(45))


class DashboardAllowlist(Base):
    """A tenant's own dashboard IP allowlist (on top of the global one); no row or no ranges: no extra limit."""

    __tablename__ = "dashboard_allowlists"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    cidrs: Mapped[list[str]]
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ShopifyWebhook(Base):
    """A Shopify webhook delivery already handled, by its ``X-Shopify-Webhook-Id``: Shopify delivers at least
    once, so a repeat is answered 200 and not handled again. No PII (the id, the topic and the shop domain)."""

    __tablename__ = "shopify_webhooks"

    webhook_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    topic: Mapped[str] = mapped_column(String(40))
    shop: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[Created]


class PrivacyExport(Base):
    """An access export a platform asked for on a buyer's behalf (Shopify's ``customers/data_request``), kept
    sealed under the tenant key until the seller fetches it and passes it on; never sent back to the platform.
    ``reference`` is the platform's request id, ``orders`` the order ids it covers (no PII)."""

    __tablename__ = "privacy_exports"

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("marketplace_accounts.id"))
    source: Mapped[str] = mapped_column(String(60))
    reference: Mapped[str] = mapped_column(String(100))
    orders: Mapped[list[str]]
    envelope: Mapped[bytes | None]
    key_version: Mapped[int | None]
    created_at: Mapped[Created]
    fetched_at: Mapped[datetime | None]


# -- carrier labels bought inside the vault (see vault/carrier_accounts.py, vault/shipments.py) ---------------


class CarrierAccount(Base):
    """A seller's account with a carrier (Shippo, EasyPost, …); its API credentials are sealed like PII.

    ``ship_from`` is the seller's own dispatch address, printed on every label the account buys (not buyer
    data). ``api_endpoint`` is set only for an origin the operator allows (a fake, a test rig). ``options``
    are the carrier's per-account options its registry entry declares (``{"one_click": true}``: flags and
    numbers, no PII, no secret), checked there; an option not set is the carrier's default.
    """

    __tablename__ = "carrier_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    carrier: Mapped[Code]  # a registered carrier's code (connectors.carriers.registry): "shippo", …
    name: Mapped[Name]
    test_mode: Mapped[bool] = mapped_column(default=False)
    api_endpoint: Mapped[str | None] = mapped_column(String(300))
    ship_from: Mapped[dict[str, Any]]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    credentials_envelope: Mapped[bytes | None]
    credentials_key_version: Mapped[int | None]
    created_at: Mapped[Created]
    removed_at: Mapped[datetime | None]


class Shipment(Base):
    """One label bought (or being bought) from a carrier for one order. No PII: ids, money, the tracking
    number, and what was asked for.

    The row is written, and committed, *before* the carrier is asked to buy (``status`` ``pending``, with the
    ``reference`` the carrier keeps with the label), so a purchase whose answer was lost to a crash or a
    timeout is found again and settled from the carrier's own records instead of being bought twice.
    ``live_order_id`` is the order's id while the shipment is pending or bought, ``None`` once voided: its
    unique index lets each order have at most one live label whatever idempotency keys clients send.
    """

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("client_id", "key_hash"), Index(None, "tenant_id", "status"))

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    live_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    carrier_account_id: Mapped[int] = mapped_column(ForeignKey("carrier_accounts.id"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    key_hash: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    # The token the carrier keeps with the label (Shippo's metadata, EasyPost's reference): a random id.
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | bought | voided
    parcel: Mapped[dict[str, Any]]
    service_asked: Mapped[str] = mapped_column(String(60))
    label_format: Mapped[str] = mapped_column(String(10))
    # Until when the process buying a pending shipment holds it; past it, a retry reconciles and goes on.
    lease_until: Mapped[datetime | None]
    carrier_shipment_id: Mapped[str | None] = mapped_column(String(100))
    rate_id: Mapped[str | None] = mapped_column(String(100))
    purchase_id: Mapped[str | None] = mapped_column(String(100))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(60))
    service: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[str | None] = mapped_column(String(20))  # a decimal, as the carrier priced it
    currency: Mapped[str | None] = mapped_column(String(3))
    estimated_days: Mapped[int | None]
    # The label record's fields that went to the carrier (names, never values), for the audit event.
    fields_sent: Mapped[list[str] | None]
    labels_issued: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[Created]
    bought_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]


class ShipmentConfirmation(Base):
    """The marketplace still to be told (or told) that a bought shipment's order shipped (connectors/confirmations.py).

    One row per bought shipment whose marketplace has a shipment-confirmation call, written in the same commit
    as the label. No PII: ids, the state, a count, times and ``last_error``, a short code of ours (never text
    from the platform). ``attempts`` doubles as the fencing token of a lease: a worker records its outcome only
    while the row still carries the count it leased it with.
    """

    __tablename__ = "shipment_confirmations"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    marketplace: Mapped[Code]
    status: Mapped[str] = mapped_column(String(16))  # pending | confirmed | failed | cancelled
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[Created]
    confirmed_at: Mapped[datetime | None]


# -- blind indexes (see vault/blind_index.py) ------------------------------------------------------------------


class IndexKey(Base):
    """One version of a tenant's blind-index HMAC key, wrapped by the root key (gone once destroyed)."""

    __tablename__ = "index_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    version: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))  # active | retired | destroyed
    root_key_id: Mapped[str] = mapped_column(String(300))
    wrapped_key: Mapped[bytes | None]
    created_at: Mapped[Created]
    retired_at: Mapped[datetime | None]
    destroyed_at: Mapped[datetime | None]


class BlindIndexEntry(Base):
    """One identifying value of a label record as a keyed digest (no PII: HMAC-SHA256 under the index key).

    Goes with its record: the foreign key cascades, so every way a record is erased (rights, purge, account
    or tenant shredding) takes its entries too.
    """

    __tablename__ = "blind_index"
    __table_args__ = (Index(None, "tenant_id", "digest"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    label_record_id: Mapped[int] = mapped_column(ForeignKey("label_records.id", ondelete="CASCADE"), index=True)
    index_version: Mapped[int]
    term: Mapped[str] = mapped_column(String(16))  # name | phone | postcode | email
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))


# -- rights requests as a workflow (see vault/rights_requests.py) ----------------------------------------------


class RightsRequestRow(Base):
    """A person's access, correction or erasure request, from opening to outcome.

    The person's identifying values (and a correction's new values) are PII: they are sealed under the
    tenant key (``values_envelope``, vault/sealed.py). Everything else is safe to show an operator: the
    seller's reference, who checked the identity and how, the jurisdiction and due date, and the outcome's
    counts and hold ids.
    """

    __tablename__ = "rights_requests"
    __table_args__ = (Index(None, "tenant_id", "state", "due_at"),)

    id: Mapped[IntPK]
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(16))  # access | correction | erasure
    reference: Mapped[str] = mapped_column(String(100))
    source: Mapped[Code]  # "seller", or "marketplace:<code>" for a marketplace's own notice
    jurisdiction: Mapped[Code]
    received_at: Mapped[datetime]
    due_at: Mapped[datetime]
    verified_by: Mapped[str] = mapped_column(String(100))
    verification: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))  # open | completed
    values_envelope: Mapped[bytes | None]
    values_key_version: Mapped[int | None]
    outcome: Mapped[dict[str, Any] | None]
    created_at: Mapped[Created]
    completed_at: Mapped[datetime | None]


class RightsRequestOrder(Base):
    """One order a rights request found (or a marketplace named), whether it was confirmed, and what was done."""

    __tablename__ = "rights_request_orders"
    __table_args__ = (UniqueConstraint("request_id", "order_id"),)

    id: Mapped[IntPK]
    request_id: Mapped[int] = mapped_column(ForeignKey("rights_requests.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    #: The marketplace named this order in its own request (it checked who asked), rather than a lookup.
    named: Mapped[bool] = mapped_column(default=False)
    confirmed: Mapped[bool] = mapped_column(default=False)
    outcome: Mapped[str | None] = mapped_column(String(40))
    hold_ids: Mapped[list[Any] | None]
