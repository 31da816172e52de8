"""The shipment routes: buy a carrier's label for an order, read the shipment, print its label again, void it.

The address goes only to the carrier (connectors/carriers/shipments.py: the intent is committed before the
carrier is asked, a lost answer is settled from the carrier's records, the purchase is audited as a share
with purpose ``shipping-label``); the client gets the shipment's non-PII facts and the carrier's printed
label. Behind the same pipeline as the label routes (allowlist, IP limit, key, CIDRs, client limit), with the
``shipments:buy`` scope. ``POST /v1/shipments`` requires an ``Idempotency-Key``: a retried or crashed purchase
never buys twice.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, g, jsonify, request
from sqlalchemy import select

from app.api.auth import current_client, require_client
from app.api.labels import REFUSED_COUNT_HEADER
from app.api.request_checks import idempotency_key, well_formed
from app.security import no_store
from app.services import db_session, services
from connectors.carriers.interfaces import LabelFormat, Parcel, ServiceChoice
from connectors.carriers.shipments import (
    WAVE_MAX,
    CarrierFactory,
    ShipmentRequest,
    buy_shipment,
    buy_wave,
    find_shipment,
    key_hash,
    print_shipment_label,
    shipment_view,
    void_shipment,
)
from vault.clients import SHIPMENTS_BUY
from vault.errors import NotFound
from vault.models import Shipment
from vault.release import client_actor

_PARCEL_FIELDS = ("weight_g", "length_mm", "width_mm", "height_mm")
_SERVICE_MAX = 60


def _carriers() -> CarrierFactory:
    """The process's pooled carrier clients (kept alive across requests, one rate-limit bucket per account)."""
    return services().carriers


def _shipment_request(payload: Any, where: str = "") -> ShipmentRequest:
    """A shipment request body (or a batch's item, ``where`` naming it), checked; a 400 names the first thing
    wrong (never echoing a value)."""
    if not isinstance(payload, dict):
        abort(400, f"{where}the body is a JSON object: marketplace, order_id, parcel, service, format")
    marketplace, order_id = payload.get("marketplace"), payload.get("order_id")
    if not isinstance(marketplace, str) or not isinstance(order_id, str) or not well_formed(marketplace, order_id):
        abort(400, f"{where}marketplace and order_id name an order, such as amazon and 503-1234567-1234567")
    parcel = payload.get("parcel")
    if not isinstance(parcel, dict) or set(parcel) != set(_PARCEL_FIELDS):
        abort(400, f"{where}parcel has exactly weight_g, length_mm, width_mm and height_mm")
    try:
        box = Parcel(**{k: parcel[k] for k in _PARCEL_FIELDS})
    except ValueError as exc:
        abort(400, f"{where}parcel: {exc}")
    service = payload.get("service", ServiceChoice.CHEAPEST.value)
    if not isinstance(service, str) or not 0 < len(service) <= _SERVICE_MAX or not service.isprintable():
        abort(400, f"{where}service is cheapest, fastest or a carrier's service token such as usps_priority")
    try:
        fmt = LabelFormat(payload.get("format", LabelFormat.PDF.value))
    except (ValueError, TypeError):
        abort(400, f"{where}format is pdf, zpl or png")
    account = payload.get("carrier_account_id")
    if account is not None and (not isinstance(account, int) or isinstance(account, bool)):
        abort(400, f"{where}carrier_account_id is a number")
    return ShipmentRequest(marketplace, order_id, box, service, fmt, account)


@require_client(SHIPMENTS_BUY)
def post_shipment() -> Response:
    """Buy the carrier's label for one order (or answer the shipment a request with this key bought)."""
    key = idempotency_key()
    if key is None:
        abort(400, "Idempotency-Key is required: a retry with the same key never buys a second label")
    shipment_request = _shipment_request(request.get_json(silent=True))
    g.label_order = (shipment_request.marketplace, shipment_request.order_id)  # a refusal is audited with it
    client = current_client()
    session = db_session()
    svc = services()
    shipment = buy_shipment(
        session,
        keys=svc.keys,
        carriers=_carriers(),
        tenant_id=client.tenant_id,
        client_id=client.id,
        actor=client_actor(client),
        idempotency_key_hash=key_hash(key),
        request=shipment_request,
        ip=g.client_ip,
    )
    response = jsonify(shipment_view(session, shipment))
    response.status_code = 201
    response.headers["Location"] = f"/v1/shipments/{shipment.id}"
    return no_store(response)


def _batch_requests(payload: Any) -> list[ShipmentRequest]:
    """A batch body, ``{"shipments": [...]}``: 1 to 500 items as ``POST /v1/shipments`` takes them, each order
    once."""
    items = payload.get("shipments") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= WAVE_MAX:
        abort(400, f'the body must be {{"shipments": [...]}} with 1 to {WAVE_MAX} shipment requests')
    requests = [_shipment_request(item, f"shipments[{n}]: ") for n, item in enumerate(items)]
    seen: set[tuple[str, str]] = set()
    for n, r in enumerate(requests):
        if (r.marketplace, r.order_id) in seen:
            abort(400, f"shipments[{n}]: the order is in the batch twice; an order has one label")
        seen.add((r.marketplace, r.order_id))
    return requests


@require_client(SHIPMENTS_BUY)
def post_shipment_batch() -> Response:
    """Buy up to 500 orders' carrier labels in one request (a warehouse's wave), answering per order.

    The batch's ``Idempotency-Key`` (required) is the wave's: each order's own key is derived from it and the
    order (:func:`~connectors.carriers.shipments.wave_key`), so a retried batch (after a timeout, a crash, a
    partial answer) finds every order it bought and buys only the rest, never one twice; an order that
    changed between the two asks is refused ``idempotency-key-reused``. Orders go through the one-order
    path's guarantees (:func:`~connectors.carriers.shipments.buy_wave`), a few at a time, as fast as the
    carrier's purchase limit allows; an order that fails (not eligible, a live shipment already, the address
    refused, a carrier outage) is reported by reference and reason, and doesn't fail the batch.
    """
    key = idempotency_key()
    if key is None:
        abort(400, "Idempotency-Key is required: a retried batch buys only what the first one didn't")
    requests = _batch_requests(request.get_json(silent=True))
    client = current_client()
    svc = services()
    results = buy_wave(
        svc.sessions,
        keys=svc.keys,
        carriers=_carriers(),
        tenant_id=client.tenant_id,
        client_id=client.id,
        actor=client_actor(client),
        idempotency_key_hash=key_hash(key),
        requests=requests,
        ip=g.client_ip,
    )
    session = db_session()
    bought = [r.shipment_id for r in results if r.shipment_id is not None]
    views = {s.id: s for s in session.scalars(select(Shipment).where(Shipment.id.in_(bought)))} if bought else {}
    refused = [
        {"marketplace": r.marketplace, "order_id": r.order_id, "reason": r.error}
        for r in results
        if r.shipment_id is None
    ]
    response = jsonify(
        shipments=[shipment_view(session, views[i]) for i in bought],
        refused=refused,
    )
    response.headers[REFUSED_COUNT_HEADER] = str(len(refused))
    return no_store(response)


def _shipment(shipment_id: str) -> Shipment:
    """The client's tenant's shipment; any other id (another tenant's, or not a number) is a 404."""
    if not shipment_id.isascii() or not shipment_id.isdigit() or len(shipment_id) > 18:
        raise NotFound("no such shipment")
    return find_shipment(db_session(), tenant_id=current_client().tenant_id, shipment_id=int(shipment_id))


@require_client(SHIPMENTS_BUY)
def get_shipment(shipment_id: str) -> Response:
    """A shipment's status, carrier, service, tracking number and cost; no PII."""
    return no_store(jsonify(shipment_view(db_session(), _shipment(shipment_id))))


@require_client(SHIPMENTS_BUY)
def get_shipment_label(shipment_id: str) -> Response:
    """The carrier's label of a bought shipment, in the format it was bought in; counted against the reprint
    cap (``LABELVAULT_LABEL_REISSUE_CAP``) and audited before it goes out."""
    shipment = _shipment(shipment_id)
    asked = request.args.get("format")
    if asked is not None and asked != shipment.label_format:
        abort(406, f"this label was bought as {shipment.label_format}; the carrier prints it only so")
    client = current_client()
    svc = services()
    document = print_shipment_label(
        db_session(),
        keys=svc.keys,
        carriers=_carriers(),
        shipment=shipment,
        reprint_cap=svc.settings.label_reissue_cap,
        actor=client_actor(client),
        ip=g.client_ip,
    )
    response = Response(document.content, mimetype=document.media_type)
    if shipment.tracking_number:
        response.headers["Labelvault-Tracking-Number"] = shipment.tracking_number
    return no_store(response)


@require_client(SHIPMENTS_BUY)
def post_shipment_void(shipment_id: str) -> Response:
    """Void (refund) a bought label; the order may then be shipped again."""
    shipment = _shipment(shipment_id)
    client = current_client()
    session = db_session()
    status = void_shipment(
        session,
        keys=services().keys,
        carriers=_carriers(),
        shipment=shipment,
        actor=client_actor(client),
        ip=g.client_ip,
    )
    return no_store(jsonify({**shipment_view(session, shipment), "refund": status.value}))
