"""The loop back to the marketplace: once labelvault bought an order's label, the marketplace is told the order
shipped (carrier, service, tracking number), retried until it is, and the order's state and retention follow.

How it holds together:

1. **Queued with the label.** :func:`enqueue` adds a ``pending`` :class:`~vault.models.ShipmentConfirmation`
   inside the commit that records the bought label (connectors/carriers/shipments.py), so a label never exists
   without its confirmation, or a confirmation without its label. Nothing is queued when the carrier marks the
   order shipped itself (``CarrierPlatform.marks_order_shipped``: Amazon Merchant Fulfillment) or when the
   marketplace has no confirmation call (``Platform.confirm_shipment`` is None). A void before confirmation
   cancels it (:func:`cancel`).
2. **Leased, then called.** :func:`confirm_due` takes due rows one by one with a conditional UPDATE (status
   pending, due, lease free) that also bumps ``attempts``: whichever worker's UPDATE matched holds the row, on
   PostgreSQL and SQLite alike, and ``attempts`` is its fencing token. It opens the account's credentials as the
   sync does (the platform's connector factory) and calls ``Platform.confirm_shipment``.
3. **Recorded.** Confirmed: the row, the order moved to ``shipped`` with its retention deadline recomputed
   (vault/retention.py), and the ``shipment.confirm`` audit event, in one commit, only if the row still carries
   this worker's token. A transient failure is tried again after an exponential backoff with jitter, up to
   :data:`MAX_ATTEMPTS`; a permanent one (or the last attempt) leaves it ``failed`` with a short code, audited
   and shown on the order page, until an operator retries it (:func:`retry_failed`).

Confirmation calls are idempotent at each platform (an order already shown shipped with this tracking number is
success), so a worker killed between the platform's answer and the commit only makes the next one ask again.
The audit event names the shipment, the marketplace, the carrier and the result; not the tracking number, and
never PII. Never imports Flask.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors import registry
from connectors.carriers.registry import CARRIERS
from connectors.interfaces import (
    AuthRefused,
    BadResponse,
    Connector,
    ConnectorError,
    MarketplaceUnavailable,
    ThrottledOut,
)
from connectors.platform import ConfirmationError, ConfirmationRefused, Platform
from vault.audit import append_event
from vault.db import rowcount
from vault.keys import KeyManager
from vault.models import CarrierAccount, MarketplaceAccount, Order, Shipment, ShipmentConfirmation, utcnow
from vault.records import OrderStatus
from vault.retention import order_ref, retention_deadline

log = logging.getLogger(__name__)

PENDING, CONFIRMED, FAILED, CANCELLED = "pending", "confirmed", "failed", "cancelled"
#: The audit event's purpose: telling the marketplace is part of shipping the label (as the purchase is).
PURPOSE = "shipping-label"
ACTION = "shipment.confirm"
ACTOR = "system:confirm"
#: How long a worker holds a confirmation it leased: longer than any platform call with its own retries.
LEASE = timedelta(seconds=300)
#: The first retry's delay; each further one doubles, up to :data:`MAX_DELAY`, times a jitter of 0.5 to 1.
BASE_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=6)
#: Attempts before a confirmation that keeps failing transiently is given up (``failed``): about two days.
MAX_ATTEMPTS = 16
#: Orders in these states become ``shipped`` once confirmed (a later sync brings the platform's own state).
_SHIPPABLE = frozenset({OrderStatus.PENDING.value, OrderStatus.UNSHIPPED.value, OrderStatus.PARTIALLY_SHIPPED.value})


# -- queueing -----------------------------------------------------------------------------------------------


def needs_confirmation(marketplace: str, carrier: str) -> bool:
    """Whether a label bought from ``carrier`` for an order of ``marketplace`` must be confirmed to it."""
    platform = registry.PLATFORMS.get(marketplace)
    carrier_platform = CARRIERS.get(carrier)
    if platform is None or platform.confirm_shipment is None:
        return False
    return not (carrier_platform is not None and carrier_platform.marks_order_shipped)


def enqueue(session: Session, shipment: Shipment, carrier: str, *, now: datetime | None = None) -> bool:
    """Queue the confirmation of a shipment being recorded bought, in the caller's transaction (not committed).

    Whether one was queued (see :func:`needs_confirmation`); a shipment already queued (a reconciled purchase
    recorded again) keeps its row.
    """
    order = session.get(Order, shipment.order_id)
    assert order is not None  # a foreign key
    if not needs_confirmation(order.marketplace, carrier):
        return False
    session.flush()  # the shipment's id
    exists = session.scalar(select(ShipmentConfirmation.id).where(ShipmentConfirmation.shipment_id == shipment.id))
    if exists is None:
        session.add(
            ShipmentConfirmation(
                tenant_id=shipment.tenant_id,
                shipment_id=shipment.id,
                order_id=order.id,
                marketplace=order.marketplace,
                status=PENDING,
                attempts=0,
                next_attempt_at=now or utcnow(),
            )
        )
    return True


def cancel(session: Session, shipment_id: int) -> bool:
    """Cancel a voided shipment's confirmation not yet made (in the caller's transaction); whether one was.

    A confirmation already made stays ``confirmed``: the marketplace was told, and the seller corrects it there.
    """
    open_rows = ShipmentConfirmation.status.in_([PENDING, FAILED])
    query = update(ShipmentConfirmation).where(ShipmentConfirmation.shipment_id == shipment_id, open_rows)
    return bool(rowcount(session.execute(query.values(status=CANCELLED, lease_until=None, next_attempt_at=None))))


def retry_failed(session: Session, *, tenant_id: int | None = None, now: datetime | None = None) -> int:
    """Put failed confirmations back in the queue, due now, their attempts counted afresh; commits; how many.

    For an operator who fixed what failed them (a re-consent with the write scope, an account's endpoint)."""
    query = update(ShipmentConfirmation).where(ShipmentConfirmation.status == FAILED)
    if tenant_id is not None:
        query = query.where(ShipmentConfirmation.tenant_id == tenant_id)
    count = rowcount(
        session.execute(query.values(status=PENDING, attempts=0, next_attempt_at=now or utcnow(), lease_until=None))
    )
    session.commit()
    return count


# -- the state shown to people -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfirmationView:
    """What the order page shows of the latest shipment's confirmation. No PII."""

    status: str
    marketplace: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    confirmed_at: datetime | None


def confirmation_of_order(session: Session, *, tenant_id: int, order_id: int) -> ConfirmationView | None:
    """The confirmation of the order's latest shipment, if one was queued."""
    row = session.scalar(
        select(ShipmentConfirmation)
        .where(ShipmentConfirmation.tenant_id == tenant_id, ShipmentConfirmation.order_id == order_id)
        .order_by(ShipmentConfirmation.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    return ConfirmationView(
        row.status, row.marketplace, row.attempts, row.last_error, row.next_attempt_at, row.confirmed_at
    )


# -- the loop ----------------------------------------------------------------------------------------------


@dataclass
class ConfirmSummary:
    """What one :func:`confirm_due` run did (counts; for the worker's log and the CLI)."""

    confirmed: int = 0
    retried: int = 0
    failed: int = 0
    #: Rows another worker leased first, or whose outcome another worker recorded first.
    skipped: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The delay before attempt ``attempts + 1``: ``BASE_DELAY * 2**(attempts-1)``, capped, times 0.5..1."""
    delay = min(MAX_DELAY, BASE_DELAY * (1 << max(0, min(attempts - 1, 20))))
    jitter: float = (rng or random).random()
    return delay * (0.5 + jitter / 2)


def _error_code(exc: BaseException) -> tuple[str, bool]:
    """A failure's code and whether it is transient."""
    if isinstance(exc, ConfirmationError):
        return exc.code, not isinstance(exc, ConfirmationRefused)
    if isinstance(exc, ThrottledOut):
        return "throttled", True
    if isinstance(exc, MarketplaceUnavailable):
        return "unavailable", True
    if isinstance(exc, AuthRefused):
        return "auth-refused", False
    if isinstance(exc, BadResponse):
        return "bad-response", False
    if isinstance(exc, ConnectorError):
        return "connector-error", True
    return "error", True


def _due_ids(session: Session, now: datetime, limit: int, tenant_id: int | None = None) -> list[int]:
    query = select(ShipmentConfirmation.id).where(
        ShipmentConfirmation.status == PENDING,
        ShipmentConfirmation.next_attempt_at <= now,
        ShipmentConfirmation.lease_until.is_(None) | (ShipmentConfirmation.lease_until <= now),
    )
    if tenant_id is not None:
        query = query.where(ShipmentConfirmation.tenant_id == tenant_id)
    return list(
        session.scalars(query.order_by(ShipmentConfirmation.next_attempt_at, ShipmentConfirmation.id).limit(limit))
    )


@dataclass(frozen=True, slots=True)
class _Lease:
    """A leased confirmation, read once (a rollback must not refresh the token from another worker's lease)."""

    id: int
    tenant_id: int
    shipment_id: int
    order_id: int
    marketplace: str
    attempts: int


def _lease(session: Session, confirmation_id: int, now: datetime) -> _Lease | None:
    """Take one due confirmation for this worker (its ``attempts`` bumped: the lease's token), committed."""
    taken = rowcount(
        session.execute(
            update(ShipmentConfirmation)
            .where(
                ShipmentConfirmation.id == confirmation_id,
                ShipmentConfirmation.status == PENDING,
                ShipmentConfirmation.next_attempt_at <= now,
                ShipmentConfirmation.lease_until.is_(None) | (ShipmentConfirmation.lease_until <= now),
            )
            .values(lease_until=now + LEASE, attempts=ShipmentConfirmation.attempts + 1)
        )
    )
    session.commit()
    if not taken:
        return None
    row = session.get(ShipmentConfirmation, confirmation_id, populate_existing=True)
    assert row is not None
    return _Lease(row.id, row.tenant_id, row.shipment_id, row.order_id, row.marketplace, row.attempts)


def _settle(session: Session, lease: _Lease, **values: Any) -> bool:
    """Write this worker's outcome if the row is still its lease (pending, the attempt count it leased at)."""
    return bool(
        rowcount(
            session.execute(
                update(ShipmentConfirmation)
                .where(
                    ShipmentConfirmation.id == lease.id,
                    ShipmentConfirmation.status == PENDING,
                    ShipmentConfirmation.attempts == lease.attempts,
                )
                .values(lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
        )
    )


def _audit(session: Session, row: _Lease, order: Order, carrier: str, result: str, now: datetime) -> None:
    append_event(
        session,
        tenant_id=row.tenant_id,
        actor=ACTOR,
        action=ACTION,
        outcome="ok" if result == CONFIRMED else f"failed:{result}",
        order_ref=order_ref(order.marketplace, order.external_order_id),
        purpose=PURPOSE,
        details={
            "shipment_id": row.shipment_id,
            "marketplace": order.marketplace,
            "carrier": carrier,
            "result": result,
            "attempts": row.attempts,
        },
        now=now,
    )


class _Connectors:
    """The connectors of one run, one per account, closed at its end."""

    def __init__(
        self,
        session: Session,
        keys: KeyManager,
        speedup: float,
        endpoint_overrides: Collection[str],
        options: Mapping[str, Any],
    ) -> None:
        self.session, self.keys, self.speedup = session, keys, speedup
        self.endpoint_overrides, self.options = endpoint_overrides, options
        self.built: dict[int, Connector] = {}

    def get(self, platform: Platform, account: MarketplaceAccount) -> Connector:
        if account.id not in self.built:
            if account.removed_at is not None:
                raise ConfirmationRefused(f"account {account.id} has been removed", code="account-removed")
            self.built[account.id] = platform.connector(
                self.session,
                keys=self.keys,
                account=account,
                speedup=self.speedup,
                endpoint_overrides=self.endpoint_overrides,
                **self.options,
            )
        return self.built[account.id]

    def close(self) -> None:
        for connector in self.built.values():
            try:
                connector.close()
            except Exception as exc:  # closing is best effort
                log.warning("closing a connector failed (%s)", type(exc).__name__)
        self.built.clear()


def confirm_due(
    session: Session,
    keys: KeyManager,
    *,
    endpoint_overrides: Collection[str] = (),
    speedup: float = 1.0,
    connector_options: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    limit: int = 100,
    rng: random.Random | None = None,
    tenant_id: int | None = None,
) -> ConfirmSummary:
    """Confirm up to ``limit`` due shipments to their marketplaces (see the module docstring); commits per row.
    With ``tenant_id``, only that tenant's.

    Safe to run in several workers at once: each row is leased by one of them. ``speedup`` and
    ``connector_options`` go to the platforms' connector factories as the sync passes them (the fakes' tests).
    """
    now = now or utcnow()
    summary = ConfirmSummary()
    connectors = _Connectors(session, keys, speedup, endpoint_overrides, connector_options or {})
    try:
        for confirmation_id in _due_ids(session, now, limit, tenant_id):
            row = _lease(session, confirmation_id, now)
            if row is None:
                summary.skipped += 1
                continue
            _confirm_one(session, connectors, row, now, rng, summary)
    finally:
        connectors.close()
    return summary


def _confirm_one(
    session: Session,
    connectors: _Connectors,
    row: _Lease,
    now: datetime,
    rng: random.Random | None,
    summary: ConfirmSummary,
) -> None:
    shipment = session.get(Shipment, row.shipment_id)
    order = session.get(Order, row.order_id)
    assert shipment is not None and order is not None  # foreign keys
    carrier_account = session.get(CarrierAccount, shipment.carrier_account_id)
    carrier = carrier_account.carrier if carrier_account is not None else ""
    try:
        platform = registry.get(row.marketplace)
        if platform.confirm_shipment is None:
            raise ConfirmationRefused("the marketplace has no shipment confirmation", code="unsupported")
        if shipment.status != "bought" or not shipment.tracking_number:
            raise ConfirmationRefused("the shipment has no live label", code="no-label")
        account = session.get(MarketplaceAccount, order.account_id)
        assert account is not None
        connector = connectors.get(platform, account)
        platform.confirm_shipment(
            connector,
            order_id=order.external_order_id,
            provider=shipment.provider or carrier,
            service=shipment.service or "",
            tracking_number=shipment.tracking_number,
            shipped_at=shipment.bought_at or now,
        )
    except Exception as exc:
        session.rollback()
        code, transient = _error_code(exc)
        summary.errors[code] = summary.errors.get(code, 0) + 1
        log.warning(
            "confirming shipment %d to %s failed: %s (%s)",
            row.shipment_id,
            row.marketplace,
            code,
            type(exc).__name__,
            extra={"shipment_id": row.shipment_id, "marketplace": row.marketplace, "outcome": code},
        )
        if transient and row.attempts < MAX_ATTEMPTS:
            if _settle(session, row, last_error=code, next_attempt_at=now + backoff(row.attempts, rng)):
                summary.retried += 1
            else:
                summary.skipped += 1
            session.commit()
            return
        if _settle(session, row, status=FAILED, last_error=code, next_attempt_at=None):
            _audit(session, row, order, carrier, code, now)
            summary.failed += 1
        else:
            summary.skipped += 1
        session.commit()
        return
    if not _settle(session, row, status=CONFIRMED, last_error=None, next_attempt_at=None, confirmed_at=now):
        session.rollback()  # voided meanwhile, or another worker took over a lease that ran out
        summary.skipped += 1
        return
    _mark_shipped(session, order)
    _audit(session, row, order, carrier, CONFIRMED, now)
    session.commit()
    summary.confirmed += 1


def _mark_shipped(session: Session, order: Order) -> None:
    """The order is shipped now; its retention deadline as a shipped order's (vault/retention.py)."""
    if order.status in _SHIPPABLE:
        order.status = OrderStatus.SHIPPED.value
    if order.erased_at is None:
        order.retention_until = retention_deadline(
            session, tenant_id=order.tenant_id, marketplace=order.marketplace, order=order
        )
