"""What the vault seals under tenant keys, kind by kind: where each sealed value is stored and what its AAD
context binds.

Key rotation rewraps, counts and guards every kind in :data:`SEALED` (vault/rotation.py) without knowing
the features that own them; the owners seal and open with the same contexts (vault/labels.py,
vault/marketplace_accounts.py, vault/carrier_accounts.py, vault/users/second_factor.py, vault/rights_requests.py).
A new sealed column must be listed here, or a rotation would leave it under a key version that then gets
destroyed: tests/vault checks that every key-version column of the schema is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, FromClause, Table, and_

from vault.envelope import encode_context
from vault.models import (
    CarrierAccount,
    LabelRecordRow,
    MarketplaceAccount,
    Order,
    PrivacyExport,
    RightsRequestRow,
    User,
)

_LABELS = cast(Table, LabelRecordRow.__table__)
_ORDERS = cast(Table, Order.__table__)
_ACCOUNTS = cast(Table, MarketplaceAccount.__table__)
_USERS = cast(Table, User.__table__)
_EXPORTS = cast(Table, PrivacyExport.__table__)
_CARRIERS = cast(Table, CarrierAccount.__table__)
_REQUESTS = cast(Table, RightsRequestRow.__table__)


@dataclass(frozen=True, slots=True)
class SealedKind:
    """One kind of value sealed under a tenant key: one envelope per row of ``table``."""

    #: Plural, for people: "label records".
    name: str
    #: The first part of every such value's AAD context.
    purpose: str
    table: Table
    envelope: ColumnElement[Any]
    #: The tenant key version the envelope is sealed under (``None`` with no envelope).
    key_version: ColumnElement[Any]
    tenant_id: ColumnElement[Any]
    #: What the context binds after the purpose, in order; may come from ``source``'s other tables.
    context_columns: tuple[ColumnElement[Any], ...]
    #: ``table``, or the join the context columns need.
    source: FromClause

    @property
    def id(self) -> ColumnElement[Any]:
        """The row's primary key."""
        return cast(ColumnElement[Any], self.table.c.id)

    def context(self, *values: str | int) -> bytes:
        """The AAD context of one value, from its ``context_columns`` values."""
        return encode_context(self.purpose, *values)

    def sealed_for(self, tenant_id: int) -> ColumnElement[bool]:
        """Rows of the tenant holding a value."""
        return and_(self.tenant_id == tenant_id, self.envelope.is_not(None))

    def under(self, tenant_id: int, version: int) -> ColumnElement[bool]:
        """The tenant's values sealed under ``version``."""
        return and_(self.sealed_for(tenant_id), self.key_version == version)

    def stale(self, tenant_id: int, active: int) -> ColumnElement[bool]:
        """The tenant's values sealed under another version than the active one."""
        return and_(self.sealed_for(tenant_id), self.key_version != active)


LABEL_RECORDS = SealedKind(
    name="label records",
    purpose="label",
    table=_LABELS,
    envelope=_LABELS.c.envelope,
    key_version=_LABELS.c.tenant_key_version,
    tenant_id=_LABELS.c.tenant_id,
    context_columns=(
        _ORDERS.c.tenant_id,
        _ORDERS.c.account_id,
        _ORDERS.c.marketplace,
        _ORDERS.c.external_order_id,
        _LABELS.c.schema_version,
        _LABELS.c.version,
    ),
    source=_LABELS.join(_ORDERS, _ORDERS.c.id == _LABELS.c.order_id),
)
ACCOUNT_CREDENTIALS = SealedKind(
    name="account credentials",
    purpose="credentials",
    table=_ACCOUNTS,
    envelope=_ACCOUNTS.c.credentials_envelope,
    key_version=_ACCOUNTS.c.credentials_key_version,
    tenant_id=_ACCOUNTS.c.tenant_id,
    context_columns=(_ACCOUNTS.c.tenant_id, _ACCOUNTS.c.id, _ACCOUNTS.c.marketplace),
    source=_ACCOUNTS,
)
CARRIER_CREDENTIALS = SealedKind(
    name="carrier credentials",
    purpose="carrier-credentials",
    table=_CARRIERS,
    envelope=_CARRIERS.c.credentials_envelope,
    key_version=_CARRIERS.c.credentials_key_version,
    tenant_id=_CARRIERS.c.tenant_id,
    context_columns=(_CARRIERS.c.tenant_id, _CARRIERS.c.id, _CARRIERS.c.carrier),
    source=_CARRIERS,
)
TOTP_SECRETS = SealedKind(
    name="TOTP secrets",
    purpose="totp",
    table=_USERS,
    envelope=_USERS.c.totp_secret,
    key_version=_USERS.c.totp_key_version,
    tenant_id=_USERS.c.tenant_id,
    context_columns=(_USERS.c.tenant_id, _USERS.c.id),
    source=_USERS,
)
RIGHTS_REQUEST_VALUES = SealedKind(
    name="rights request values",
    purpose="rights-request",
    table=_REQUESTS,
    envelope=_REQUESTS.c.values_envelope,
    key_version=_REQUESTS.c.values_key_version,
    tenant_id=_REQUESTS.c.tenant_id,
    context_columns=(_REQUESTS.c.tenant_id, _REQUESTS.c.id),
    source=_REQUESTS,
)

PRIVACY_EXPORTS = SealedKind(
    name="privacy exports",
    purpose="privacy-export",
    table=_EXPORTS,
    envelope=_EXPORTS.c.envelope,
    key_version=_EXPORTS.c.key_version,
    tenant_id=_EXPORTS.c.tenant_id,
    context_columns=(_EXPORTS.c.tenant_id, _EXPORTS.c.id),
    source=_EXPORTS,
)

#: Every kind of value sealed under a tenant key.
SEALED: tuple[SealedKind, ...] = (
    LABEL_RECORDS,
    ACCOUNT_CREDENTIALS,
    CARRIER_CREDENTIALS,
    TOTP_SECRETS,
    PRIVACY_EXPORTS,
    RIGHTS_REQUEST_VALUES,
)
