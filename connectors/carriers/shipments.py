"""Buying a carrier's label for an order inside the vault, so that a crash or a retry never buys it twice.

The purchase is two commits around the carrier's calls, each a state a later request (or the worker's
:func:`reconcile_pending`) can resume from:

1. **Quote.** Nothing is stored yet (and nothing is bought by a quote). The order's eligibility, the carrier
   account and that the order has no live shipment are checked first, so the carrier never hears of an
   order that may not ship; then the ship-to is unsealed and goes to the carrier once, with the seller's
   ship-from, and a rate is chosen.
2. **Intent.** A ``pending`` :class:`~vault.models.Shipment` row is committed *with the chosen rate* before
   the carrier is asked to buy it: the client's ``Idempotency-Key`` (hashed), a digest of the request, a
   random ``reference`` the carrier will keep with the label, the fields sent, and a lease.
   ``live_order_id`` (unique) gives each order at most one live label, whatever keys clients send; a
   request that loses that race (or the key's) bought nothing, and its quote is audited as a failed share.
3. **Purchase.** The carrier buys the rate under the ``reference``. If the answer is lost (timeout, 5xx, a
   SIGKILL of this process), whoever resumes the row asks the carrier (:meth:`Carrier.find_purchase`, by the
   committed rate and reference) before buying anything: found, it is recorded; not found, the committed
   rate is bought now. A rate the carrier withdrew is quoted once again, and the new rate committed before
   it is bought. A carrier whose records show a label only once it has finished buying it (Merchant
   Fulfillment reads the order's status) declares a ``settle_delay``: its "not found" is believed only that
   long after the shipment's last purchase attempt was sent, and until then the row stays pending
   (:func:`_settled`).
4. **Record.** ``bought``, the tracking number and the cost, and the ``shipment.purchase`` audit event
   (purpose ``shipping-label``, the carrier, the fields sent, never their values), in one commit: the event
   exists exactly when the label does.

A crash during the quote leaves nothing (no intent, nothing bought). A definite failure (carrier down before
buying, address refused, no matching rate) stores nothing or deletes the intent, so nothing is
half-recorded, and is audited as a failed share when the address had gone out. Never imports Flask.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors import confirmations
from connectors.carriers.interfaces import (
    Carrier,
    CarrierError,
    LabelDocument,
    LabelFormat,
    OrderContext,
    Parcel,
    Purchase,
    PurchaseUncertain,
    Rate,
    RateChanged,
    VoidStatus,
)
from connectors.carriers.registry import CARRIERS
from vault.audit import NewEvent, append_event, append_events
from vault.carrier_accounts import find_carrier_account, ship_from_of, unseal_carrier_credentials
from vault.db import rowcount
from vault.errors import (
    IdempotencyKeyReused,
    NotFound,
    PurchaseInProgress,
    PurchaseUnsettled,
    Refusal,
    ReissueCapReached,
    ShipmentExists,
    ShipmentNotActive,
    VaultError,
)
from vault.keys import KeyManager
from vault.labels import LabelledOrder, unseal_label
from vault.models import CarrierAccount, Order, Shipment, utcnow
from vault.orders import snapshot_order, snapshot_orders
from vault.release import check_eligible, order_ref

log = logging.getLogger(__name__)

#: The audit event's purpose for every share of an address with a carrier.
PURPOSE = "shipping-label"
#: How long a process buying a pending shipment holds it: longer than any carrier call it makes.
LEASE = timedelta(seconds=120)
PENDING, BOUGHT, VOIDED = "pending", "bought", "voided"

#: Builds the carrier client of a stored account from its opened credentials.
CarrierFactory = Callable[[CarrierAccount, dict[str, str]], Carrier]


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """What a client asks to ship: which order, the parcel, the service and the label format. No PII."""

    marketplace: str
    order_id: str
    parcel: Parcel
    #: ``cheapest``, ``fastest`` or a carrier's service token.
    service: str
    label_format: LabelFormat
    carrier_account_id: int | None = None

    def digest(self) -> str:
        """What the request asks for, hashed: a retry with the same key must ask the same."""
        canonical = json.dumps(
            [self.marketplace, self.order_id, self.parcel_json(), self.service, self.label_format.value,
             self.carrier_account_id],
            separators=(",", ":"),
        )  # fmt: skip
        return hashlib.sha256(canonical.encode()).hexdigest()

    def parcel_json(self) -> dict[str, int]:
        """The parcel as stored on the shipment."""
        p = self.parcel
        return {"weight_g": p.weight_g, "length_mm": p.length_mm, "width_mm": p.width_mm, "height_mm": p.height_mm}


def key_hash(key: str) -> str:
    """The stored form of an ``Idempotency-Key`` (SHA-256, domain-separated from the label API's)."""
    return hashlib.sha256(b"labelvault-shipment-key\x00" + key.encode()).hexdigest()


def buy_shipment(
    session: Session,
    *,
    keys: KeyManager,
    carriers: CarrierFactory,
    tenant_id: int,
    client_id: int | None,
    actor: str,
    idempotency_key_hash: str,
    request: ShipmentRequest,
    ip: str | None = None,
    now: datetime | None = None,
) -> Shipment:
    """Buy (or find again) the label ``request`` asks for; returns the shipment, ``bought``.

    The same key and request again returns the same shipment (settling it first if its purchase was
    interrupted); the same key with another request is :class:`IdempotencyKeyReused`. An order with a live
    shipment is :class:`ShipmentExists` (before the carrier hears of it). Carrier failures propagate as
    :class:`CarrierError` with nothing stored; :class:`PurchaseUnsettled` when the carrier's answer was lost
    and its records don't show the label yet. Commits as it goes (see the module docstring).
    """
    now = now or utcnow()
    existing = _existing(session, client_id, idempotency_key_hash, request, now)
    if existing is not None:
        shipment, held = existing
        if shipment.status != PENDING:
            return shipment
        return _resume(session, keys, carriers, shipment, held, actor, ip, now)
    order = snapshot_order(
        session, tenant_id=tenant_id, marketplace=request.marketplace, external_order_id=request.order_id
    )
    check_eligible(order, now=now)
    account = find_carrier_account(session, tenant_id=tenant_id, account_id=request.carrier_account_id)
    live = session.scalar(select(Shipment.id).where(Shipment.live_order_id == order.id))
    if live is not None:  # before the address goes anywhere
        raise ShipmentExists(live)
    shipment = Shipment(
        tenant_id=tenant_id,
        order_id=order.id,
        live_order_id=order.id,
        carrier_account_id=account.id,
        client_id=client_id,
        key_hash=idempotency_key_hash,
        request_hash=request.digest(),
        reference=secrets.token_hex(16),
        status=PENDING,
        parcel=request.parcel_json(),
        service_asked=request.service,
        label_format=request.label_format.value,
        lease_until=now + LEASE,
        created_at=now,
    )
    ref = order_ref(order.marketplace, order.external_order_id)
    carrier = carriers(account, unseal_carrier_credentials(session, keys=keys, account=account))
    try:
        try:
            rate = _quote(session, keys, carrier, shipment, account, order)
        except CarrierError as exc:
            _abandon(session, shipment, account, exc, actor, ip, ref, stored=False)
            raise
        session.add(shipment)
        fields = list(shipment.fields_sent or [])
        try:
            session.commit()  # the intent, with the rate it will buy: committed before anything is bought
        except IntegrityError:
            session.rollback()
            # The quote shared the address, and another request's intent won the order (or the key).
            _audit_share(session, tenant_id, fields, account, ShipmentExists.code, actor, ip, ref)
            again = _existing(session, client_id, idempotency_key_hash, request, now)
            if again is not None:  # a request with the same key got there first
                if again[0].status != PENDING:
                    return again[0]
                return _resume(session, keys, carriers, again[0], again[1], actor, ip, now)
            live = session.scalar(select(Shipment.id).where(Shipment.live_order_id == order.id))
            raise ShipmentExists(live or 0) from None
        return _buy(session, keys, carrier, shipment, account, order, rate, actor, ip, ref, now)
    finally:
        carrier.close()


def _existing(
    session: Session, client_id: int | None, hashed: str, request: ShipmentRequest, now: datetime
) -> tuple[Shipment, datetime | None] | None:
    """The shipment stored under the key, and for a pending one the lease taken over (:func:`_take_lease`)."""
    shipment = session.scalar(select(Shipment).where(Shipment.client_id == client_id, Shipment.key_hash == hashed))
    if shipment is None:
        return None
    if shipment.request_hash != request.digest():
        raise IdempotencyKeyReused()
    held = _take_lease(session, shipment, now) if shipment.status == PENDING else None
    return shipment, held


def _take_lease(session: Session, shipment: Shipment, now: datetime) -> datetime | None:
    """Take over a pending shipment whose buyer is gone (its lease ran out); :class:`PurchaseInProgress` if not.

    Returns the lease taken over (``None``: none). Every purchase attempt of the shipment was sent before it:
    attempts are made under a lease, and a lost attempt's release keeps when it was (:func:`_release`)."""
    held = session.scalar(select(Shipment.lease_until).where(Shipment.id == shipment.id))
    unmoved = Shipment.lease_until.is_(None) if held is None else Shipment.lease_until <= held
    taken = rowcount(
        session.execute(
            update(Shipment)
            .where(
                Shipment.id == shipment.id,
                Shipment.status == PENDING,
                (Shipment.lease_until.is_(None)) | (Shipment.lease_until <= now),
                unmoved,  # no other process took and gave it back meanwhile (its release is then what bounds)
            )
            .values(lease_until=now + LEASE)
        )
    )
    session.commit()
    if not taken:
        raise PurchaseInProgress()
    session.refresh(shipment)
    return held


def _settle_delay(carrier: Carrier) -> timedelta:
    """How long after a purchase attempt was sent the carrier's "not bought" may be believed: its
    ``settle_delay``, declared by a carrier whose records show a label only once it has finished buying it
    (Merchant Fulfillment, by the order's status); none for the others (their look-up is by the reference)."""
    delay = getattr(carrier, "settle_delay", None)
    return delay if isinstance(delay, timedelta) and delay > timedelta(0) else timedelta(0)


def _settles_at(carrier: Carrier, shipment: Shipment, held: datetime | None) -> datetime:
    """When the carrier has had its settle delay since the shipment's last purchase attempt was sent, by
    ``held``, the lease taken over (an intent an older vault released without one: since its creation)."""
    return (held or shipment.created_at) + _settle_delay(carrier)


def _settled(carrier: Carrier, shipment: Shipment, held: datetime | None, now: datetime) -> bool:
    """Whether the settle delay has passed (:func:`_settles_at`); always, for a carrier without one."""
    return not _settle_delay(carrier) or now >= _settles_at(carrier, shipment, held)


def _settles_in(carrier: Carrier, shipment: Shipment, held: datetime | None, now: datetime) -> int:
    """Whole seconds (at least 1) until :func:`_settled` holds."""
    return max(1, math.ceil((_settles_at(carrier, shipment, held) - now).total_seconds()))


def _release(shipment: Shipment, carrier: Carrier, sent_by: datetime | None) -> None:
    """Give the lease up so that a retry with the same key settles the shipment at once. For a carrier with a
    settle delay the lease keeps ``sent_by`` (a moment past, so it can be taken at once): by then the last
    purchase attempt had been sent, and :func:`_settled` counts from it."""
    shipment.lease_until = sent_by if _settle_delay(carrier) else None


def _resume(
    session: Session,
    keys: KeyManager,
    carriers: CarrierFactory,
    shipment: Shipment,
    held: datetime | None,
    actor: str,
    ip: str | None,
    now: datetime,
) -> Shipment:
    """Settle a pending shipment (its lease held, ``held`` the one taken over) left by a lost answer or a
    crash: ask the carrier whether its rate was bought under its reference; if not, buy it now (quoting again
    if the carrier withdrew it), unless the carrier may still be buying it (:func:`_settled`)."""
    account = session.get(CarrierAccount, shipment.carrier_account_id)
    order = session.get(Order, shipment.order_id)
    assert account is not None and order is not None  # foreign keys
    ref = order_ref(order.marketplace, order.external_order_id)
    carrier = carriers(account, unseal_carrier_credentials(session, keys=keys, account=account))
    try:
        if shipment.rate_id is None:  # an intent stored before its rate (an older vault's); nothing was bought
            try:
                rate = _quote(session, keys, carrier, shipment, account, order)
            except CarrierError as exc:
                _abandon(session, shipment, account, exc, actor, ip, ref)
                raise
            session.commit()
        else:
            try:
                found = carrier.find_purchase(rate=_stored_rate(shipment), reference=shipment.reference)
            except PurchaseUncertain:  # the carrier can't say (Amazon without a lookup): never buy again blindly
                _release(shipment, carrier, held)  # a retry with the same key asks again at once
                session.commit()
                raise PurchaseUnsettled() from None
            if found is not None:
                return _record_bought(session, shipment, account, found, actor, ip, ref, reconciled=True)
            if not _settled(carrier, shipment, held, now):  # the carrier may still be buying the last attempt
                _release(shipment, carrier, held)
                session.commit()
                raise PurchaseUnsettled(retry_after=_settles_in(carrier, shipment, held, now))
            rate = _stored_rate(shipment)
        return _buy(session, keys, carrier, shipment, account, order, rate, actor, ip, ref, now)
    finally:
        carrier.close()


def _buy(
    session: Session,
    keys: KeyManager,
    carrier: Carrier,
    shipment: Shipment,
    account: CarrierAccount,
    order: LabelledOrder,
    rate: Rate,
    actor: str,
    ip: str | None,
    ref: str,
    now: datetime,
) -> Shipment:
    """Buy the committed intent's rate and record the label; a withdrawn rate is quoted once again (the new
    rate committed before it is bought)."""
    requoted = False
    try:
        while True:
            try:
                bought = carrier.purchase(
                    rate, label_format=LabelFormat(shipment.label_format), reference=shipment.reference
                )
            except RateChanged:
                if requoted:
                    raise
                requoted = True
                rate = _quote(session, keys, carrier, shipment, account, order)
                session.commit()  # a lost purchase of the new rate is looked up by it
                continue
            return _record_bought(session, shipment, account, bought, actor, ip, ref, requoted=requoted)
    except PurchaseUncertain:
        try:
            found = carrier.find_purchase(rate=_stored_rate(shipment), reference=shipment.reference)
        except CarrierError:
            found = None
        if found is not None:
            return _record_bought(session, shipment, account, found, actor, ip, ref, reconciled=True)
        _release(shipment, carrier, max(now, utcnow()))  # a retry with the same key settles it at once
        session.commit()
        raise PurchaseUnsettled() from None
    except CarrierError as exc:
        _abandon(session, shipment, account, exc, actor, ip, ref)
        raise


def _quote(
    session: Session,
    keys: KeyManager,
    carrier: Carrier,
    shipment: Shipment,
    account: CarrierAccount,
    order: LabelledOrder,
) -> Rate:
    """Quote the parcel (the one step that sends the ship-to) and choose the rate, set on ``shipment``; the
    caller commits it before the rate is bought."""
    ship_to = unseal_label(session, keys=keys, order=order)
    # Until the carrier says what it took, the record's filled fields are what may have gone out (nothing,
    # for a carrier whose quote takes no ship-to).
    platform = CARRIERS.get(account.carrier)
    sends = platform is None or platform.sends_ship_to
    shipment.fields_sent = sorted(k for k, v in ship_to.as_dict().items() if v) if sends else []
    p = shipment.parcel
    try:
        quote = carrier.quote(
            ship_from=ship_from_of(account),
            ship_to=ship_to,
            parcel=Parcel(p["weight_g"], p["length_mm"], p["width_mm"], p["height_mm"]),
            reference=shipment.reference,
            order=OrderContext(order.marketplace, order.external_order_id),
        )
    except CarrierError as exc:
        if exc.fields_sent is not None:  # the carrier knows what its failed quote carried
            shipment.fields_sent = sorted(exc.fields_sent)
        raise
    shipment.carrier_shipment_id = quote.shipment_id
    shipment.fields_sent = list(quote.fields_sent)
    rate = quote.choose(shipment.service_asked)
    _store_rate(shipment, rate)
    return rate


def _store_rate(shipment: Shipment, rate: Rate) -> None:
    shipment.rate_id = rate.rate_id
    shipment.provider = rate.provider[:60]
    shipment.service = rate.service[:100]
    shipment.amount = str(rate.amount)
    shipment.currency = rate.currency[:3]
    shipment.estimated_days = rate.estimated_days


def _stored_rate(shipment: Shipment) -> Rate:
    return Rate(
        rate_id=shipment.rate_id or "",
        provider=shipment.provider or "",
        service=shipment.service or "",
        amount=Decimal(shipment.amount or "0"),
        currency=shipment.currency or "",
        estimated_days=shipment.estimated_days,
    )


def _record_bought(
    session: Session,
    shipment: Shipment,
    account: CarrierAccount,
    bought: Purchase,
    actor: str,
    ip: str | None,
    ref: str,
    *,
    requoted: bool = False,
    reconciled: bool = False,
) -> Shipment:
    """The label and its audit event, in one commit."""
    _mark_bought(shipment, bought)
    session.flush()
    confirmations.enqueue(session, shipment, account.carrier)  # the marketplace is told in the label's commit
    append_event(
        session,
        tenant_id=shipment.tenant_id,
        actor=actor,
        action="shipment.purchase",
        order_ref=ref,
        ip=ip,
        purpose=PURPOSE,
        details=_purchase_details(shipment, account, requoted=requoted, reconciled=reconciled),
    )
    session.commit()
    return shipment


def _mark_bought(shipment: Shipment, bought: Purchase) -> None:
    _store_rate(shipment, bought.rate)
    shipment.status = BOUGHT
    shipment.purchase_id = bought.purchase_id[:100]
    shipment.tracking_number = bought.tracking_number[:100]
    shipment.bought_at = bought.bought_at
    shipment.lease_until = None


def _purchase_details(
    shipment: Shipment, account: CarrierAccount, *, requoted: bool, reconciled: bool
) -> dict[str, Any]:
    """The ``shipment.purchase`` event's details: the carrier, the service, the fields sent (never values)."""
    return {
        "shipment_id": shipment.id,
        "carrier": account.carrier,
        "carrier_account_id": account.id,
        "provider": shipment.provider,
        "service": shipment.service,
        "fields_sent": shipment.fields_sent or [],
        "label_format": shipment.label_format,
        "result": "bought",
        "requoted": requoted,
        "reconciled": reconciled,
    }


def _abandon(
    session: Session,
    shipment: Shipment,
    account: CarrierAccount,
    error: CarrierError,
    actor: str,
    ip: str | None,
    ref: str,
    *,
    stored: bool = True,
) -> None:
    """Nothing was bought: remove the intent (if it was ``stored``), and audit the share if the address went
    out."""
    # Read before the rollback forgets them. Set once the ship-to was handed to the carrier's client: even a
    # quote that failed (an outage's 503 included) may have reached the carrier, so it is audited as a share.
    fields, tenant_id, shipment_id = list(shipment.fields_sent or []), shipment.tenant_id, shipment.id
    session.rollback()
    if stored:
        session.execute(delete(Shipment).where(Shipment.id == shipment_id, Shipment.status == PENDING))
    _audit_share(session, tenant_id, fields, account, error.code, actor, ip, ref)


def _audit_share(
    session: Session,
    tenant_id: int,
    fields: list[str],
    account: CarrierAccount,
    code: str,
    actor: str,
    ip: str | None,
    ref: str,
) -> None:
    """The failed share of an address that went out for a quote and bought nothing (``failed:<code>``), with
    whatever the session has pending; commits."""
    if fields:
        append_event(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="shipment.purchase",
            outcome=f"failed:{code}",
            order_ref=ref,
            ip=ip,
            purpose=PURPOSE,
            details={
                "carrier": account.carrier,
                "carrier_account_id": account.id,
                "fields_sent": fields,
                "result": code,
            },
        )
    session.commit()


#: Most orders one wave buys.
WAVE_MAX = 500
#: Orders one worker of a wave carries together: their intents are committed in one commit and their labels
#: and audit events in another, so a 500-order wave makes ~100 commits instead of 1,000 (on SQLite each is an
#: fsync under the one writer lock, which alone outlasted the carrier's limit), and reads its orders, keys
#: and live shipments in a few queries per chunk.
WAVE_CHUNK = 10
#: Most chunks of a wave in flight at once.
WAVE_CONCURRENCY_MAX = 32
#: The seconds one order of a chunk is assumed to take (a quote and a purchase at the carrier, and the
#: vault's share of two commits) when sizing a wave to the carrier's purchase limit: ~4 x what it takes at
#: best (2 x 20 ms at the carrier, ~10 ms here), since an idle worker costs nothing and a missing one leaves
#: the limit unused (on a loaded machine, 20 chunks in flight beat 10 in bench.ship: 2.10 vs 2.54 x).
WAVE_ORDER_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class WaveResult:
    """One order of a wave: its shipment id when bought, else the failure's code (never PII)."""

    marketplace: str
    order_id: str
    shipment_id: int | None = None
    error: str | None = None


def wave_key(idempotency_key_hash: str, request: ShipmentRequest) -> str:
    """The stored key of one order of a wave: derived from the wave's key and the order, so that a retried
    wave (the same key) finds every order it bought, and never buys one twice, whatever else it asks."""
    return hashlib.sha256(f"{idempotency_key_hash}:{request.marketplace}:{request.order_id}".encode()).hexdigest()


def wave_concurrency(purchase_rate: float | None, orders: int) -> int:
    """Chunks in flight that keep a carrier's purchase limit (purchases per second) busy: the orders the limit
    allows while one order takes :data:`WAVE_ORDER_SECONDS`, over the chunk size, capped; 4 unpaced."""
    chunks = max(1, -(-orders // WAVE_CHUNK))
    wanted = 4 if not purchase_rate else math.ceil(purchase_rate * WAVE_ORDER_SECONDS)
    return max(1, min(WAVE_CONCURRENCY_MAX, wanted, chunks))


def buy_wave(
    sessions: Callable[[], Session],
    *,
    keys: KeyManager,
    carriers: CarrierFactory,
    tenant_id: int,
    client_id: int | None,
    actor: str,
    idempotency_key_hash: str,
    requests: list[ShipmentRequest],
    concurrency: int | None = None,
    ip: str | None = None,
) -> list[WaveResult]:
    """Buy up to :data:`WAVE_MAX` orders' labels, in the order asked, with the guarantees of
    :func:`buy_shipment` for each (an intent with its rate committed before the purchase; the label and its
    audit event in one commit), :data:`WAVE_CHUNK` orders sharing each commit.

    Each order's key is :func:`wave_key` (a retried wave buys only what the first one didn't); one order's
    failure doesn't stop the others. ``concurrency`` (chunks in flight) defaults to
    :func:`wave_concurrency` of the carrier's purchase limit; the carrier client paces the purchases
    themselves (its account's one token bucket, connectors/carriers/pool.py), so the wave runs at the limit.
    """
    if not 1 <= len(requests) <= WAVE_MAX:
        raise ValueError(f"a wave is 1 to {WAVE_MAX} orders")
    if concurrency is None:
        concurrency = wave_concurrency(_purchase_rate(sessions, keys, carriers, tenant_id, requests), len(requests))
    chunks = [requests[i : i + WAVE_CHUNK] for i in range(0, len(requests), WAVE_CHUNK)]

    def one(chunk: list[ShipmentRequest]) -> list[WaveResult]:
        with sessions() as session:
            return _WaveChunk(session, keys, carriers, tenant_id, client_id, actor, ip).run(
                [(request, wave_key(idempotency_key_hash, request)) for request in chunk]
            )

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chunks)))) as pool:
        return [result for done in pool.map(one, chunks) for result in done]


def _purchase_rate(
    sessions: Callable[[], Session],
    keys: KeyManager,
    carriers: CarrierFactory,
    tenant_id: int,
    requests: list[ShipmentRequest],
) -> float | None:
    """The purchase limit of the carrier account the wave's first order asks for (``None``: unknown)."""
    with sessions() as session:
        try:
            account = find_carrier_account(session, tenant_id=tenant_id, account_id=requests[0].carrier_account_id)
            carrier = carriers(account, unseal_carrier_credentials(session, keys=keys, account=account))
        except (CarrierError, VaultError):
            return None
        try:
            rate = getattr(carrier, "purchase_rate", None)
        finally:
            carrier.close()
    return float(rate) if isinstance(rate, int | float) and rate > 0 else None


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "code", None) or getattr(exc, "reason", None) or type(exc).__name__)


@dataclass(slots=True)
class _Quoted:
    index: int
    shipment: Shipment
    order: LabelledOrder
    account: CarrierAccount
    carrier: Carrier
    rate: Rate
    ref: str
    bought: Purchase | None = None
    requoted: bool = False
    reconciled: bool = False


class _WaveChunk:
    """One chunk of a wave in one session: read together, quote, one intent commit, buy, one record commit."""

    def __init__(
        self,
        session: Session,
        keys: KeyManager,
        carriers: CarrierFactory,
        tenant_id: int,
        client_id: int | None,
        actor: str,
        ip: str | None,
    ) -> None:
        self.session, self.keys, self.carriers = session, keys, carriers
        self.tenant_id, self.client_id, self.actor, self.ip = tenant_id, client_id, actor, ip
        self.now = utcnow()
        self._accounts: dict[int | None, CarrierAccount | VaultError] = {}
        self._clients: dict[int, Carrier] = {}
        self._refusals: list[NewEvent] = []

    def run(self, items: list[tuple[ShipmentRequest, str]]) -> list[WaveResult]:
        results: list[WaveResult | None] = [None] * len(items)
        try:
            quoted = self._quote_all(items, results)
            stored = self._store_intents(quoted, results)
            for q in stored:
                self._purchase(q, results)
            self._record([q for q in stored if q.bought is not None], results)
            if self._refusals:  # orders refused before the carrier heard of them, audited as the API does
                append_events(self.session, tenant_id=self.tenant_id, events=self._refusals)
                self.session.commit()
        finally:
            for client in self._clients.values():
                client.close()
        return [r if r is not None else WaveResult(i.marketplace, i.order_id, error="not-settled")
                for r, (i, _) in zip(results, items, strict=True)]  # fmt: skip

    def _fail(self, results: list[WaveResult | None], index: int, request: ShipmentRequest, code: str) -> None:
        results[index] = WaveResult(request.marketplace, request.order_id, error=code)

    def _single(self, request: ShipmentRequest, hashed: str) -> WaveResult:
        """An order the chunk can't carry in bulk (its key seen before): the one-order path settles it."""
        try:
            shipment = buy_shipment(
                self.session, keys=self.keys, carriers=self.carriers, tenant_id=self.tenant_id,
                client_id=self.client_id, actor=self.actor, idempotency_key_hash=hashed, request=request, ip=self.ip,
            )  # fmt: skip
        except (CarrierError, VaultError) as exc:
            return WaveResult(request.marketplace, request.order_id, error=_error_code(exc))
        return WaveResult(request.marketplace, request.order_id, shipment_id=shipment.id)

    def _account(self, account_id: int | None) -> CarrierAccount:
        found = self._accounts.get(account_id)
        if found is None:
            try:
                found = find_carrier_account(self.session, tenant_id=self.tenant_id, account_id=account_id)
            except VaultError as exc:
                found = exc
            self._accounts[account_id] = found
        if isinstance(found, VaultError):
            raise found
        return found

    def _client(self, account: CarrierAccount) -> Carrier:
        client = self._clients.get(account.id)
        if client is None:
            secrets = unseal_carrier_credentials(self.session, keys=self.keys, account=account)
            client = self._clients[account.id] = self.carriers(account, secrets)
        return client

    def _quote_all(self, items: list[tuple[ShipmentRequest, str]], results: list[WaveResult | None]) -> list[_Quoted]:
        session = self.session
        hashes = [hashed for _, hashed in items]
        seen = set(session.scalars(
            select(Shipment.key_hash).where(Shipment.client_id == self.client_id, Shipment.key_hash.in_(hashes))
        ))  # fmt: skip
        fresh: list[tuple[int, ShipmentRequest, str]] = []
        for index, (request, hashed) in enumerate(items):
            if hashed in seen:  # a retried wave: found again (or settled) as one order
                results[index] = self._single(request, hashed)
            else:
                fresh.append((index, request, hashed))
        orders = snapshot_orders(
            session, tenant_id=self.tenant_id, refs=[(r.marketplace, r.order_id) for _, r, _ in fresh]
        )
        ids = [o.id for o in orders.values()]
        live: dict[int, int] = {}
        if ids:
            found = session.execute(select(Shipment.live_order_id, Shipment.id).where(Shipment.live_order_id.in_(ids)))
            live = {order_id: shipment_id for order_id, shipment_id in found if order_id is not None}
        quoted: list[_Quoted] = []
        for index, request, hashed in fresh:
            order = orders.get((request.marketplace, request.order_id))
            try:
                if order is None:
                    raise NotFound("no such order")
                check_eligible(order, now=self.now)
                account = self._account(request.carrier_account_id)
                if order.id in live:
                    raise ShipmentExists(live[order.id])
                carrier = self._client(account)
            except (CarrierError, VaultError) as exc:
                self._fail(results, index, request, _error_code(exc))
                if isinstance(exc, Refusal):
                    ref = order_ref(request.marketplace, request.order_id)
                    self._refusals.append(NewEvent(
                        actor=self.actor, action="shipment.purchase", outcome=f"refused:{exc.reason}"[:60],
                        order_ref=ref, ip=self.ip, purpose=None, details=None,
                    ))  # fmt: skip
                continue
            shipment = Shipment(
                tenant_id=self.tenant_id, order_id=order.id, live_order_id=order.id, carrier_account_id=account.id,
                client_id=self.client_id, key_hash=hashed, request_hash=request.digest(),
                reference=secrets.token_hex(16), status=PENDING, parcel=request.parcel_json(),
                service_asked=request.service, label_format=request.label_format.value,
                lease_until=self.now + LEASE, created_at=self.now,
            )  # fmt: skip
            ref = order_ref(order.marketplace, order.external_order_id)
            try:
                rate = _quote(session, self.keys, carrier, shipment, account, order)
            except (CarrierError, VaultError) as exc:
                if isinstance(exc, CarrierError):
                    _audit_share(session, self.tenant_id, list(shipment.fields_sent or []), account, exc.code,
                                 self.actor, self.ip, ref)  # fmt: skip
                self._fail(results, index, request, _error_code(exc))
                continue
            live[order.id] = 0  # the same order twice in one chunk: the second is refused
            quoted.append(_Quoted(index, shipment, order, account, carrier, rate, ref))
        return quoted

    def _store_intents(self, quoted: list[_Quoted], results: list[WaveResult | None]) -> list[_Quoted]:
        """Every quoted intent in one commit; if one of them collides (its order taken meanwhile), one by one."""
        session = self.session
        session.add_all([q.shipment for q in quoted])
        try:
            session.commit()
            return quoted
        except IntegrityError:
            session.rollback()
        stored: list[_Quoted] = []
        for q in quoted:
            session.add(q.shipment)
            try:
                session.commit()
                stored.append(q)
            except IntegrityError:
                session.rollback()
                _audit_share(session, self.tenant_id, list(q.shipment.fields_sent or []), q.account,
                             ShipmentExists.code, self.actor, self.ip, q.ref)  # fmt: skip
                results[q.index] = WaveResult(q.order.marketplace, q.order.external_order_id,
                                              error=ShipmentExists.code)  # fmt: skip
        return stored

    def _purchase(self, q: _Quoted, results: list[WaveResult | None]) -> None:
        """Buy one stored intent's rate (quoted once more if withdrawn); a lost answer is looked up."""
        session, shipment = self.session, q.shipment
        fmt = LabelFormat(shipment.label_format)
        try:
            while True:
                try:
                    q.bought = q.carrier.purchase(q.rate, label_format=fmt, reference=shipment.reference)
                    return
                except RateChanged:
                    if q.requoted:
                        raise
                    q.requoted = True
                    q.rate = _quote(session, self.keys, q.carrier, shipment, q.account, q.order)
                    session.commit()  # a lost purchase of the new rate is looked up by it
        except PurchaseUncertain:
            try:
                q.bought = q.carrier.find_purchase(rate=_stored_rate(shipment), reference=shipment.reference)
            except CarrierError:
                q.bought = None
            if q.bought is not None:
                q.reconciled = True
                return
            _release(shipment, q.carrier, max(self.now, utcnow()))  # a retry with the same key settles it at once
            session.commit()
            code = PurchaseUnsettled.code
        except CarrierError as exc:
            _abandon(session, shipment, q.account, exc, self.actor, self.ip, q.ref)
            code = exc.code
        results[q.index] = WaveResult(q.order.marketplace, q.order.external_order_id, error=code)

    def _record(self, bought: list[_Quoted], results: list[WaveResult | None]) -> None:
        """Every bought label of the chunk and its audit event, in one commit (as :func:`_record_bought` does
        for one: keep the two in step)."""
        if not bought:
            return
        session = self.session
        for q in bought:
            assert q.bought is not None
            _mark_bought(q.shipment, q.bought)
        session.flush()
        for q in bought:  # each marketplace is told in its label's commit, as for one purchase
            confirmations.enqueue(session, q.shipment, q.account.carrier)
        append_events(
            session,
            tenant_id=self.tenant_id,
            events=[
                NewEvent(
                    actor=self.actor, action="shipment.purchase", outcome="ok", order_ref=q.ref, ip=self.ip,
                    purpose=PURPOSE,
                    details=_purchase_details(q.shipment, q.account, requoted=q.requoted, reconciled=q.reconciled),
                )
                for q in bought
            ],
        )  # fmt: skip
        session.commit()
        for q in bought:
            results[q.index] = WaveResult(q.order.marketplace, q.order.external_order_id, shipment_id=q.shipment.id)


# -- after the purchase -------------------------------------------------------------------------------------


def find_shipment(session: Session, *, tenant_id: int, shipment_id: int) -> Shipment:
    """One of the tenant's shipments; another tenant's is :class:`NotFound` like a missing one."""
    shipment = session.get(Shipment, shipment_id)
    if shipment is None or shipment.tenant_id != tenant_id:
        raise NotFound("no such shipment")
    return shipment


def shipment_view(session: Session, shipment: Shipment) -> dict[str, Any]:
    """What a client may read of a shipment: status, carrier, service, tracking, cost. No PII."""
    order = session.get(Order, shipment.order_id)
    account = session.get(CarrierAccount, shipment.carrier_account_id)
    assert order is not None and account is not None
    return {
        "id": shipment.id,
        "status": shipment.status,
        "marketplace": order.marketplace,
        "order_id": order.external_order_id,
        "carrier": account.carrier,
        "carrier_account_id": account.id,
        "provider": shipment.provider,
        "service": shipment.service,
        "tracking_number": shipment.tracking_number,
        "cost": None if shipment.amount is None else {"amount": shipment.amount, "currency": shipment.currency},
        "estimated_days": shipment.estimated_days,
        "label_format": shipment.label_format,
        "labels_issued": shipment.labels_issued,
        "bought_at": None if shipment.bought_at is None else shipment.bought_at.isoformat(),
        "voided_at": None if shipment.voided_at is None else shipment.voided_at.isoformat(),
    }


def _purchase_of(shipment: Shipment) -> Purchase:
    if shipment.status != BOUGHT or shipment.purchase_id is None:
        raise ShipmentNotActive(f"the shipment is {shipment.status}; it has no label")
    return Purchase(
        purchase_id=shipment.purchase_id,
        tracking_number=shipment.tracking_number or "",
        rate=_stored_rate(shipment),
        label_format=LabelFormat(shipment.label_format),
        bought_at=shipment.bought_at or utcnow(),
    )


def _carrier_of(session: Session, keys: KeyManager, carriers: CarrierFactory, shipment: Shipment) -> Carrier:
    account = find_carrier_account(session, tenant_id=shipment.tenant_id, account_id=shipment.carrier_account_id)
    return carriers(account, unseal_carrier_credentials(session, keys=keys, account=account))


def print_shipment_label(
    session: Session,
    *,
    keys: KeyManager,
    carriers: CarrierFactory,
    shipment: Shipment,
    reprint_cap: int,
    actor: str,
    ip: str | None = None,
) -> LabelDocument:
    """The carrier's label of a bought shipment, counted and audited (``shipment.label``) before it goes out.

    At most ``reprint_cap`` issues per shipment (:class:`ReissueCapReached` after). The label is fetched from
    the carrier first, so a carrier failure counts nothing; the count and the audit event commit together.
    """
    purchase = _purchase_of(shipment)
    if shipment.labels_issued >= reprint_cap:
        raise ReissueCapReached(issued=shipment.labels_issued, cap=reprint_cap)
    carrier = _carrier_of(session, keys, carriers, shipment)
    try:
        document = carrier.label(purchase)
    finally:
        carrier.close()
    counted = rowcount(
        session.execute(
            update(Shipment)
            .where(Shipment.id == shipment.id, Shipment.labels_issued < reprint_cap)
            .values(labels_issued=Shipment.labels_issued + 1)
        )
    )
    if not counted:
        session.rollback()
        raise ReissueCapReached(issued=reprint_cap, cap=reprint_cap)
    session.refresh(shipment)
    order = session.get(Order, shipment.order_id)
    assert order is not None
    append_event(
        session,
        tenant_id=shipment.tenant_id,
        actor=actor,
        action="shipment.label",
        order_ref=order_ref(order.marketplace, order.external_order_id),
        ip=ip,
        purpose=PURPOSE,
        details={"shipment_id": shipment.id, "issue": shipment.labels_issued, "label_format": shipment.label_format},
    )
    session.commit()
    return document


def void_shipment(
    session: Session,
    *,
    keys: KeyManager,
    carriers: CarrierFactory,
    shipment: Shipment,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> VoidStatus:
    """Void a bought label at the carrier; audited as ``shipment.void``. Once voided the order may be shipped
    again (its live shipment is released). :class:`~connectors.carriers.interfaces.VoidRefused` leaves it
    bought."""
    purchase = _purchase_of(shipment)
    carrier = _carrier_of(session, keys, carriers, shipment)
    try:
        status = carrier.void(purchase)
    finally:
        carrier.close()
    shipment.status = VOIDED
    shipment.live_order_id = None
    shipment.voided_at = now or utcnow()
    confirmations.cancel(session, shipment.id)  # not yet told: the marketplace isn't told any more
    order = session.get(Order, shipment.order_id)
    assert order is not None
    append_event(
        session,
        tenant_id=shipment.tenant_id,
        actor=actor,
        action="shipment.void",
        order_ref=order_ref(order.marketplace, order.external_order_id),
        ip=ip,
        purpose=PURPOSE,
        details={"shipment_id": shipment.id, "refund": status.value},
    )
    session.commit()
    return status


def reconcile_pending(
    session: Session,
    *,
    keys: KeyManager,
    carriers: CarrierFactory,
    actor: str = "system:reconcile",
    now: datetime | None = None,
) -> tuple[int, int]:
    """Settle every pending shipment whose buyer is gone (lease run out): recorded if the carrier bought its
    label, removed if not; left for a later run while the carrier can't say, or may still be buying it
    (:func:`_settled`), or while its carrier account can't be opened (its tenant key, its set-up): one
    account's trouble never holds up the others'. Returns ``(recorded, removed)``. For the worker, after a crash."""
    now = now or utcnow()
    recorded = removed = 0
    stale = session.scalars(
        select(Shipment.id).where(
            Shipment.status == PENDING, (Shipment.lease_until.is_(None)) | (Shipment.lease_until <= now)
        )
    ).all()
    for shipment_id in stale:
        shipment = session.get(Shipment, shipment_id)
        if shipment is None or shipment.status != PENDING:
            continue
        try:
            held = _take_lease(session, shipment, now)
        except PurchaseInProgress:
            continue
        account = session.get(CarrierAccount, shipment.carrier_account_id)
        order = session.get(Order, shipment.order_id)
        assert account is not None and order is not None
        ref = order_ref(order.marketplace, order.external_order_id)
        found = None
        if shipment.rate_id is not None:
            try:
                carrier = carriers(account, unseal_carrier_credentials(session, keys=keys, account=account))
            except Exception as exc:  # this account's key or set-up: every other shipment is settled all the same
                log.warning(
                    "shipment %d: its carrier account could not be opened (%s); left for a later run",
                    shipment.id,
                    type(exc).__name__,
                )
                session.rollback()
                shipment.lease_until = held  # as it was: the next run takes it over at once
                session.commit()
                continue
            try:
                try:
                    found = carrier.find_purchase(rate=_stored_rate(shipment), reference=shipment.reference)
                except CarrierError:
                    unsettled = True
                else:
                    unsettled = found is None and not _settled(carrier, shipment, held, now)
                if unsettled:  # the carrier can't say, or may still be buying it: a later run asks again
                    _release(shipment, carrier, held)
                    session.commit()
            finally:
                carrier.close()
            if unsettled:
                continue
        if found is not None:
            _record_bought(session, shipment, account, found, actor, None, ref, reconciled=True)
            recorded += 1
        else:
            session.execute(delete(Shipment).where(Shipment.id == shipment.id, Shipment.status == PENDING))
            session.commit()
            removed += 1
    return recorded, removed
