"""``/v1/audit/head``: the head of the client's tenant audit chain, for anchoring it outside labelvault."""

from __future__ import annotations

from flask import Response, jsonify

from app.api.auth import current_client, require_client
from app.security import no_store
from app.services import db_session
from vault.audit import chain_for
from vault.clients import ADMIN
from vault.models import AuditHead


@require_client(ADMIN)
def audit_head() -> Response:
    """The head of the client's tenant audit chain (seq and hash), to anchor it outside labelvault."""
    chain = chain_for(current_client().tenant_id)
    head = db_session().get(AuditHead, chain)
    body = {
        "chain": chain,
        "seq": 0 if head is None else head.seq,
        "hash": "0" * 64 if head is None else head.hash,
        "updated_at": None if head is None else head.updated_at.isoformat(),
    }
    return no_store(jsonify(body))
