"""Minimise at the boundary: an eBay ``Order`` becomes non-PII facts plus one label record, nothing more.

Read: the order id, its dates and states, the first ship-to (``fulfillmentStartInstructions[]
.shippingStep.shipTo``: name, company, address, phone), the latest estimated delivery, the line items'
ship-by dates and purchase marketplace. Never read: ``buyer`` (username, e-mail, registration and tax
address, tax ids), prices, payments, titles and the rest of the line items, so they can't reach storage,
logs or errors. Text is repaired (:func:`~vault.records.repair_text`) as every connector's is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connectors.interfaces import BadResponse
from vault.records import LabelRecord, OrderFacts, OrderStatus, repair_text

MARKETPLACE = "ebay"

#: ``orderFulfillmentStatus`` -> labelvault's status, for orders whose ``cancelState`` is not CANCELED.
FULFILLMENT_STATUSES: dict[str, OrderStatus] = {
    "NOT_STARTED": OrderStatus.UNSHIPPED,
    "IN_PROGRESS": OrderStatus.PARTIALLY_SHIPPED,
    "FULFILLED": OrderStatus.SHIPPED,
}
#: ``cancelStatus.cancelState`` values. Only CANCELED ends an order: a cancellation request in progress may
#: still be refused by the seller, so until then the order keeps its fulfilment status.
CANCEL_STATES = frozenset({"NONE_REQUESTED", "IN_PROGRESS", "CANCELED"})
#: The platform's states as one table (docs, dashboard): cancelState CANCELED overrides the fulfilment status.
STATUSES: dict[str, OrderStatus] = {**FULFILLMENT_STATUSES, "CANCELED": OrderStatus.CANCELLED}


def _text(value: Any) -> str | None:
    """A non-empty, stripped, repaired string or None."""
    if not isinstance(value, str):
        return None
    value = repair_text(value).strip()
    return value or None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _time(value: Any, what: str, *, required: bool = False) -> datetime | None:
    text = _text(value)
    if text is None:
        if required:
            raise BadResponse(f"order lacks {what}")
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadResponse(f"order has an unreadable {what}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _required_time(value: Any, what: str) -> datetime:
    parsed = _time(value, what, required=True)
    assert parsed is not None
    return parsed


def status_of(order: Mapping[str, Any]) -> OrderStatus:
    """labelvault's status of an eBay order: CANCELED if eBay says so, else by ``orderFulfillmentStatus``."""
    cancel = _text(_dict(order.get("cancelStatus")).get("cancelState"))
    if cancel == "CANCELED":
        return OrderStatus.CANCELLED
    raw = _text(order.get("orderFulfillmentStatus"))
    status = FULFILLMENT_STATUSES.get(raw or "")
    if status is None:
        raise BadResponse(f"order has an unknown orderFulfillmentStatus {raw!r}"[:120])
    return status


def _ship_to(order: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The first fulfilment instruction that has a ship-to, and that ship-to (empty when none has)."""
    for instruction in _list(order.get("fulfillmentStartInstructions")):
        ship_to = _dict(_dict(_dict(instruction).get("shippingStep")).get("shipTo"))
        if ship_to:
            return _dict(instruction), ship_to
    return {}, {}


def from_order(order: Mapping[str, Any]) -> tuple[OrderFacts, LabelRecord | None]:
    """Map one Sell Fulfillment ``Order``; the label is None for a cancelled order or one with no ship-to."""
    order_id = _text(order.get("orderId"))
    if order_id is None:
        raise BadResponse("order lacks orderId")
    status = status_of(order)
    items = [_dict(i) for i in _list(order.get("lineItems"))]
    ship_by = [
        t
        for t in (_time(_dict(i.get("lineItemFulfillmentInstructions")).get("shipByDate"), "shipByDate") for i in items)
        if t is not None
    ]
    instruction, ship_to = _ship_to(order)
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=_required_time(order.get("creationDate"), "creationDate"),
        last_updated_at=_required_time(order.get("lastModifiedDate"), "lastModifiedDate"),
        marketplace_id=next((m for m in (_text(i.get("purchaseMarketplaceId")) for i in items) if m), None),
        ship_by=min(ship_by) if ship_by else None,
        latest_delivery_at=_time(instruction.get("maxEstimatedDeliveryDate"), "maxEstimatedDeliveryDate"),
    )
    if status is OrderStatus.CANCELLED:
        return facts, None  # nothing to ship: no address is kept
    label, repaired = _label(ship_to)
    return (replace(facts, text_repaired=True) if repaired else facts), label


def _label(ship_to: Mapping[str, Any]) -> tuple[LabelRecord | None, bool]:
    address = _dict(ship_to.get("contactAddress"))
    served = {
        "name": ship_to.get("fullName"),
        "company": ship_to.get("companyName"),
        "line1": address.get("addressLine1"),
        "line2": address.get("addressLine2"),
        "city": address.get("city"),
        "county": address.get("county"),
        "state": address.get("stateOrProvince"),
        "postal": address.get("postalCode"),
        "phone": _dict(ship_to.get("primaryPhone")).get("phoneNumber"),
    }
    name, line1, country = _text(served["name"]), _text(served["line1"]), _text(address.get("countryCode"))
    if not (name and line1 and country):
        return None, False  # no ship-to (local pickup, digital) or one without an address: nothing to label
    repaired = any(isinstance(v, str) and repair_text(v).strip() != v.strip() for v in served.values())
    return LabelRecord(
        name=name,
        company=_text(served["company"]),
        address_line1=line1,
        address_line2=_text(served["line2"]),
        city=_text(served["city"]) or "",
        district_or_county=_text(served["county"]),
        state_or_region=_text(served["state"]),
        postal_code=_text(served["postal"]),
        country_code=country.upper(),
        phone=_text(served["phone"]),
    ), repaired
