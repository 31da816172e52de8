"""Tenants: seller organisations, each with its own tenant key, audit chain, return address and time zone."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import TenantSetupError
from vault.keys import KeyManager
from vault.models import Tenant

#: A slug names the tenant on command lines, in URLs and in logs: plain, unambiguous, never an option.
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
SLUG_RULE = "a tenant slug is 3 to 63 lowercase letters, digits and hyphens, starting with a letter or digit"


def create_tenant(session: Session, *, keys: KeyManager, slug: str, name: str, actor: str) -> Tenant:
    """Create a seller organisation, its first tenant key and its blind-index key (two root-provider calls);
    audited as ``tenant.create``, the first event of the tenant's own chain (ids only: the key versions).
    A slug that breaks :data:`SLUG_RULE` is a :class:`TenantSetupError` (nothing stored). The caller commits."""
    if not SLUG.fullmatch(slug):
        raise TenantSetupError(SLUG_RULE)
    tenant = Tenant(slug=slug, name=name)
    session.add(tenant)
    session.flush()
    key = keys.create_tenant_key(session, tenant.id)
    index_version = keys.index_keys.create(session, tenant.id)
    append_event(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="tenant.create",
        purpose="administration",
        details={"key_version": key.version, "index_key_version": index_version},
    )
    return tenant


def set_return_address(
    session: Session, *, tenant: Tenant, name: str, lines: list[str], country_code: str, actor: str
) -> None:
    """Set the seller's return address printed on every label (an audited admin change; not buyer PII)."""
    lines = [line.strip() for line in lines if line.strip()]
    if not name.strip() or not lines or len(lines) > 4 or len(country_code) != 2 or not country_code.isalpha():
        raise ValueError("a return address needs a name, 1 to 4 lines and a two-letter country code")
    tenant.return_address = {"name": name.strip(), "lines": lines, "country_code": country_code.upper()}
    append_event(session, tenant_id=tenant.id, actor=actor, action="tenant.return_address", purpose="administration")
    session.flush()


def time_zone_of(tenant: Tenant) -> ZoneInfo:
    """The tenant's time zone (UTC unless the seller chose one)."""
    return ZoneInfo(tenant.time_zone or "UTC")


def set_time_zone(session: Session, *, tenant: Tenant, time_zone: str, actor: str) -> None:
    """Set the seller's time zone, an IANA name such as ``Asia/Tokyo`` (audited as ``tenant.time_zone``)."""
    name = time_zone.strip()
    if name not in available_timezones():  # the system's tz database: every name ZoneInfo opens
        raise ValueError("a time zone is an IANA name such as Asia/Tokyo or UTC")
    tenant.time_zone = name
    append_event(
        session,
        tenant_id=tenant.id,
        actor=actor,
        action="tenant.time_zone",
        purpose="administration",
        details={"time_zone": name},
    )
    session.flush()
