"""Releasing a label: the one way buyer data leaves the vault.

:func:`release_label` is the domain half of the label API's pipeline: order lookup inside the client's tenant
→ eligibility → unseal → the client's label profile → reissue count → audit event, all in the caller's
transaction. The caller renders, then commits, and sends the label only after the commit succeeded: if the
audit event can't be written, the transaction fails and nothing is released.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from vault.audit import append_event
from vault.clients import LabelProfile
from vault.errors import NotEligible, ReissueCapReached
from vault.keys import KeyManager
from vault.labels import find_order, unseal_label
from vault.models import ApiClient, AuditEvent, Order, utcnow
from vault.records import LabelRecord, OrderStatus

RELEASE_ACTION = "label.release"
#: The purpose recorded on every label release (Amazon's DPP asks for the purpose of each access).
SHIPPING_LABEL = "shipping-label"


def order_ref(marketplace: str, order_id: str) -> str:
    """How the audit chain names an order: ``marketplace:order id`` (no PII)."""
    return f"{marketplace}:{order_id}"[:160]


def client_actor(client: ApiClient) -> str:
    """How the audit chain names an API client (its public key id)."""
    return f"client:{client.key_id}"


@dataclass(frozen=True, slots=True)
class ReleasedLabel:
    """One released label: the profiled record (PII, never printed) and the facts of its release."""

    marketplace: str
    order_id: str
    label: LabelRecord = field(repr=False)
    released_fields: tuple[str, ...]
    issue: int  # this is the n-th label issued for the order
    audit_seq: int


def check_eligible(order: Order, *, now: datetime) -> None:
    """Raise :class:`NotEligible` unless a label may be issued for ``order`` now (the cap is separate)."""
    if order.erased_at is not None:
        raise NotEligible("erased")
    if order.status == OrderStatus.CANCELLED:
        raise NotEligible("cancelled")
    if order.status not in {s.value for s in OrderStatus if s.labels_allowed}:
        raise NotEligible("status")
    if order.retention_until is not None and order.retention_until <= now:
        raise NotEligible("retention-expired")
    if order.label is None:
        raise NotEligible("no-label-data")


# Built once (it runs on every label request): the reissue count is one conditional UPDATE.
_ORDERS = cast(Table, Order.__table__)
_COUNT_ISSUE = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("b_id"), _ORDERS.c.labels_issued < bindparam("b_cap"))
    .values(labels_issued=_ORDERS.c.labels_issued + 1)
    .returning(_ORDERS.c.labels_issued)
)


def _count_issue(session: Session, order: Order, reissue_cap: int) -> int:
    # One conditional UPDATE: concurrent requests for the same order serialise on the row, and the cap
    # holds exactly however many workers race for it.
    issued = session.execute(_COUNT_ISSUE, {"b_id": order.id, "b_cap": reissue_cap}).scalar()
    if issued is None:
        raise ReissueCapReached()
    set_committed_value(order, "labels_issued", issued)
    return int(issued)


def release_label(
    session: Session,
    *,
    keys: KeyManager,
    client: ApiClient,
    marketplace: str,
    order_id: str,
    ip: str,
    reissue_cap: int,
    fmt: str = "json",
    now: datetime | None = None,
) -> ReleasedLabel:
    """Look up, check, unseal, profile and audit one label for ``client``, in the caller's transaction.

    Raises :class:`~vault.errors.NotFound` for an order outside the client's tenant exactly as for a
    missing one, :class:`NotEligible` / :class:`ReissueCapReached`, and lets
    :class:`~vault.errors.KeyServiceUnavailable` and :class:`~vault.errors.DecryptionError` through. On
    any exception the caller rolls back; nothing was released.
    """
    now = now or utcnow()
    order = find_order(session, tenant_id=client.tenant_id, marketplace=marketplace, external_order_id=order_id)
    check_eligible(order, now=now)
    if order.labels_issued >= reissue_cap:
        raise ReissueCapReached()  # early answer; the conditional UPDATE below is what enforces the cap
    profile = LabelProfile.from_json(client.profile)
    label = profile.apply(unseal_label(session, keys=keys, order=order))
    released = tuple(sorted(k for k, v in label.as_dict().items() if v is not None))
    # The writes come last: the reissue count and the audit head are row locks (on SQLite, the database's
    # write lock) held until the caller commits, so nothing slow (unsealing, a KMS call) runs under them.
    issue = _count_issue(session, order, reissue_cap)
    event = append_event(
        session,
        tenant_id=client.tenant_id,
        actor=client_actor(client),
        action=RELEASE_ACTION,
        outcome="released",
        order_ref=order_ref(marketplace, order_id),
        ip=ip,
        purpose=SHIPPING_LABEL,
        details={"fields": list(released), "issue": issue, "format": fmt},
        now=now,
    )
    return ReleasedLabel(marketplace, order_id, label, released, issue, event.seq)


def record_refusal(
    session: Session,
    *,
    tenant_id: int | None,
    actor: str,
    reason: str,
    ip: str | None,
    action: str = RELEASE_ACTION,
    marketplace: str | None = None,
    order_id: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append a refusal (``outcome = refused:<reason>``) to the tenant's chain, or the platform's if unknown.

    The caller commits, in a transaction of its own: the refused request released nothing to commit with.
    """
    ref = order_ref(marketplace, order_id) if marketplace is not None and order_id is not None else None
    return append_event(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        outcome=f"refused:{reason}"[:60],
        order_ref=ref,
        ip=ip,
        purpose=SHIPPING_LABEL if action == RELEASE_ACTION else None,
        details=details,
        now=now,
    )
