"""People's rights, handled by the seller for their buyers: access, correction and erasure of label data.

Each request names who acts (``actor``), the seller's request reference (``request_id``) and who checked
the buyer's identity (``verified_by``); each is appended to the tenant's audit chain with its purpose
(``rights:access``, ``rights:correction``, ``rights:erasure``) in the same transaction as the change. The
chain holds references only, never the buyer's data. The caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from vault.audit import append_event
from vault.errors import VaultError
from vault.keys import KeyManager
from vault.labels import CORRECTION as SELLER_CORRECTION
from vault.labels import seal_label, shred_label, unseal_label
from vault.models import Order, utcnow
from vault.orders import find_order
from vault.records import LabelRecord
from vault.retention import holds_in_force, order_ref

ACCESS, CORRECTION, ERASURE = "rights:access", "rights:correction", "rights:erasure"
EXPORT_FORMAT = "labelvault-access-export/1"


class RightsError(VaultError):
    """A rights request can't be carried out as asked (the message says why; no PII)."""


@dataclass(frozen=True, slots=True)
class RightsRequest:
    """Who asks for what: the acting person or system, the seller's request reference and the identity check."""

    actor: str
    request_id: str
    verified_by: str

    def __post_init__(self) -> None:
        if not self.request_id.strip():
            raise RightsError("a rights request needs the seller's request reference")
        if not self.verified_by.strip():
            raise RightsError("a rights request needs the person who checked the buyer's identity")

    def details(self, **extra: Any) -> dict[str, Any]:
        return {"request_id": self.request_id[:100], "identity_verified_by": self.verified_by[:100], **extra}


@dataclass(frozen=True, slots=True)
class ErasureOutcome:
    """Whether an erasure request erased the order's label data, or which legal holds kept it."""

    erased: bool
    already_erased: bool
    hold_ids: tuple[int, ...] = ()
    hold_summary: str = ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _audit(session: Session, order: Order, request: RightsRequest, *, purpose: str, outcome: str, **extra: Any) -> None:
    append_event(
        session,
        tenant_id=order.tenant_id,
        actor=request.actor,
        action=purpose.replace("rights:", "rights."),
        outcome=outcome,
        order_ref=order_ref(order.marketplace, order.external_order_id),
        purpose=purpose,
        details=request.details(**extra),
    )


def export_order_data(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    marketplace: str,
    external_order_id: str,
    request: RightsRequest,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Access: everything labelvault holds about one order's buyer, as a JSON-ready dict for the buyer."""
    now = now or utcnow()
    order = find_order(session, tenant_id=tenant_id, marketplace=marketplace, external_order_id=external_order_id)
    label = None if order.label is None else unseal_label(session, keys=keys, order=order)
    _audit(session, order, request, purpose=ACCESS, outcome="exported" if label else "no-label-data")
    return {
        "format": EXPORT_FORMAT,
        "request_id": request.request_id,
        "exported_at": now.isoformat(),
        "order": {
            "marketplace": order.marketplace,
            "order_id": order.external_order_id,
            "status": order.status,
            "purchased_at": _iso(order.purchased_at),
            "ship_by": _iso(order.ship_by),
            "latest_delivery_at": _iso(order.latest_delivery_at),
            "delivered_at": _iso(order.delivered_at),
        },
        "shipping_label_data": None if label is None else {k: v for k, v in label.as_dict().items() if v is not None},
        "record_version": order.label.version if order.label is not None else None,
        "purpose": "printing the shipping label for this order",
        "erase_after": _iso(order.retention_until),
        "erased_at": _iso(order.erased_at),
    }


def correct_address(
    session: Session,
    *,
    keys: KeyManager,
    tenant_id: int,
    marketplace: str,
    external_order_id: str,
    label: LabelRecord,
    request: RightsRequest,
) -> int:
    """Correction: seal ``label`` as the order's new record version (the old one is shredded); returns it."""
    order = find_order(session, tenant_id=tenant_id, marketplace=marketplace, external_order_id=external_order_id)
    if order.erased_at is not None or order.label is None:
        raise RightsError("the order holds no label data (erased or never synced): there is nothing to correct")
    previous = order.label.version
    row = seal_label(session, keys=keys, order=order, label=label, source=SELLER_CORRECTION)
    _audit(
        session,
        order,
        request,
        purpose=CORRECTION,
        outcome="corrected",
        replaced_version=previous,
        record_version=row.version,
    )
    return row.version


def erase_order(
    session: Session,
    *,
    tenant_id: int,
    marketplace: str,
    external_order_id: str,
    request: RightsRequest,
    now: datetime | None = None,
) -> ErasureOutcome:
    """Erasure: shred the order's label data now, whatever its retention deadline, unless a legal hold applies.

    A hold is not overridden: the request is audited as refused and the outcome names the holds.
    """
    now = now or utcnow()
    order = find_order(session, tenant_id=tenant_id, marketplace=marketplace, external_order_id=external_order_id)
    if order.erased_at is not None and order.label is None:
        _audit(session, order, request, purpose=ERASURE, outcome="already-erased")
        return ErasureOutcome(erased=False, already_erased=True)
    holds = holds_in_force(session, order=order, now=now)
    if holds:
        summary = "; ".join(
            f"hold {h.id} ({'whole tenant' if h.order_id is None else 'this order'}) until "
            f"{h.ends_at:%Y-%m-%d}, owner {h.owner}, reason: {h.reason}"
            for h in holds
        )
        _audit(session, order, request, purpose=ERASURE, outcome="refused:legal-hold", hold_ids=[h.id for h in holds])
        return ErasureOutcome(
            erased=False, already_erased=False, hold_ids=tuple(h.id for h in holds), hold_summary=summary
        )
    shred_label(session, order=order, now=now)
    _audit(session, order, request, purpose=ERASURE, outcome="erased")
    return ErasureOutcome(erased=True, already_erased=False)
