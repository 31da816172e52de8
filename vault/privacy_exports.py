"""Access exports a platform asked for on a buyer's behalf, kept sealed until the seller fetches them.

Shopify's ``customers/data_request`` webhook asks the app for what it holds about a customer; the answer
goes from the seller to the buyer, never back in the webhook's response. The rights request it opens is
carried out at once (:func:`vault.rights_requests.carry_out_sealed`, each order's access audited by
vault/rights.py); its JSON export is sealed under the tenant key here, and fetching it (the request's
dashboard page, ``flask rights request export``) opens it and is audited as ``rights.export-fetched``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import NotFound
from vault.keys import KeyManager
from vault.models import PrivacyExport, utcnow
from vault.sealed import PRIVACY_EXPORTS


def _context(export: PrivacyExport) -> bytes:
    return PRIVACY_EXPORTS.context(export.tenant_id, export.id)


def store_export(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    account_id: int,
    source: str,
    reference: str,
    orders: Sequence[str],
    content: dict[str, Any],
) -> PrivacyExport:
    """Seal ``content`` (a JSON-ready export) for the tenant; returns the stored row. The caller commits."""
    export = PrivacyExport(
        tenant_id=tenant_id, account_id=account_id, source=source[:60], reference=reference[:100], orders=list(orders)
    )
    session.add(export)
    session.flush()
    plaintext = json.dumps(content, ensure_ascii=False, sort_keys=True).encode()
    export.envelope, export.key_version = keys.seal(session, tenant_id, _context(export), plaintext)
    session.flush()
    return export


def list_exports(session: Session, *, tenant_id: int) -> list[PrivacyExport]:
    """The tenant's exports, newest first (their metadata only: nothing is opened)."""
    return list(
        session.scalars(
            select(PrivacyExport).where(PrivacyExport.tenant_id == tenant_id).order_by(PrivacyExport.id.desc())
        )
    )


def fetch_export(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    export_id: int,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Open one of the tenant's exports for the seller to pass on; audited as ``rights.export-fetched``."""
    export = session.get(PrivacyExport, export_id)
    if export is None or export.tenant_id != tenant_id or export.envelope is None:
        raise NotFound("no such export")
    content: dict[str, Any] = json.loads(keys.open(session, tenant_id, _context(export), export.envelope))
    now = now or utcnow()
    export.fetched_at = now
    append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="rights.export-fetched",
        ip=ip,
        purpose="rights:access",
        details={"export_id": export.id, "source": export.source, "reference": export.reference},
        now=now,
    )
    return content
