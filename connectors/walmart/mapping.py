"""Minimise at the boundary: a Walmart purchase order becomes non-PII facts plus one label record.

Only what a label needs is read: the purchase order id, its dates, the order lines' statuses (and their
dates), ``shippingInfo.postalAddress`` and ``shippingInfo.phone``. ``customerEmailId`` (a relay address that
still reaches the buyer), ``customerOrderId``, ``buyerId``, items, charges, refunds and pickup persons are
never looked at, so they can't leak into storage.

Walmart has no order-level status: each line has statuses, each for a quantity (:func:`order_status`
combines them). Walmart US ships within the US: its three-letter ``USA`` becomes ISO ``US``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connectors.interfaces import BadResponse
from vault.records import LabelRecord, OrderFacts, OrderStatus, repair_text

MARKETPLACE = "walmart"
#: The one market an account syncs: Walmart Marketplace US (``marketplace_ids``).
MARKET_US = "WALMART_US"

#: Each order-line status Walmart documents, and what a line in it means for labelvault.
LINE_STATUS: Mapping[str, OrderStatus] = {
    "Created": OrderStatus.UNSHIPPED,  # released to the seller, to acknowledge and ship: the address is there
    "Acknowledged": OrderStatus.UNSHIPPED,
    "Shipped": OrderStatus.SHIPPED,
    "Delivered": OrderStatus.SHIPPED,
    "Cancelled": OrderStatus.CANCELLED,
    "Refund": OrderStatus.CANCELLED,  # refunded units: nothing of them is left to ship
}
#: Walmart US's country codes (ISO 3166 alpha-3, as served) as labelvault stores them (alpha-2).
COUNTRIES: Mapping[str, str] = {"USA": "US", "US": "US", "PRI": "PR", "GUM": "GU", "VIR": "VI", "ASM": "AS"}


def _text(value: Any) -> str | None:
    """A non-empty, stripped, repaired string or None (Walmart serves an absent phone as "")."""
    if not isinstance(value, str):
        return None
    value = repair_text(value).strip()
    return value or None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _time(value: Any, what: str) -> datetime | None:
    """Walmart's timestamps: epoch milliseconds (``getAllOrders``) or an ISO date-time (``getAnOrder``)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise BadResponse(f"order has an unreadable {what}") from None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadResponse(f"order has an unreadable {what}") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _quantity(entry: Mapping[str, Any]) -> float:
    try:
        return float(_dict(entry.get("statusQuantity")).get("amount", 1))
    except (TypeError, ValueError):
        return 1.0


def order_status(entries: Iterable[tuple[str, float]]) -> OrderStatus:
    """An order's status from its lines' ``(status, quantity)`` entries.

    Cancelled and refunded units don't count; of the rest, units still to ship (Created, Acknowledged)
    beside shipped ones (Shipped, Delivered) make the order partially shipped, so a label can still be
    issued for what is left; only shipped units: shipped; nothing but cancelled units: cancelled.
    """
    open_units = shipped_units = 0.0
    for status, quantity in entries:
        mapped = LINE_STATUS.get(status)
        if mapped is None:
            raise BadResponse(f"order has an unknown order-line status {status!r}"[:120])
        if mapped is OrderStatus.UNSHIPPED:
            open_units += quantity
        elif mapped is OrderStatus.SHIPPED:
            shipped_units += quantity
    if open_units and shipped_units:
        return OrderStatus.PARTIALLY_SHIPPED
    if open_units:
        return OrderStatus.UNSHIPPED
    if shipped_units:
        return OrderStatus.SHIPPED
    return OrderStatus.CANCELLED


def from_order(order: Mapping[str, Any]) -> tuple[OrderFacts, LabelRecord | None]:
    """Map one ``getAllOrders`` purchase order (``getAnOrder``'s shape too) to facts and a label record."""
    order_id = _text(order.get("purchaseOrderId"))
    if order_id is None:
        raise BadResponse("order lacks purchaseOrderId")
    purchased = _time(order.get("orderDate"), "orderDate")
    if purchased is None:
        raise BadResponse("order lacks orderDate")
    entries: list[tuple[str, float]] = []
    changed = [purchased]
    delivered: list[datetime] = []
    for line in _list(_dict(order.get("orderLines")).get("orderLine")):
        line = _dict(line)
        stamp = _time(line.get("statusDate"), "statusDate")
        if stamp is not None:
            changed.append(stamp)
        for entry in _list(_dict(line.get("orderLineStatuses")).get("orderLineStatus")):
            status = _text(_dict(entry).get("status")) or ""
            entries.append((status, _quantity(_dict(entry))))
            if status == "Delivered" and stamp is not None:
                delivered.append(stamp)
    if not entries:
        raise BadResponse("order has no order-line statuses")
    status = order_status(entries)
    live = {s for s, _ in entries if LINE_STATUS[s] is not OrderStatus.CANCELLED}
    shipping = _dict(order.get("shippingInfo"))
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=purchased,
        # Walmart reports no order-level change time; the latest line status date is when it last changed.
        last_updated_at=max(changed),
        marketplace_id=MARKET_US,
        fulfillment_channel=_text(_dict(order.get("shipNode")).get("type")) or "SellerFulfilled",
        ship_by=_time(shipping.get("estimatedShipDate"), "estimatedShipDate"),
        latest_delivery_at=_time(shipping.get("estimatedDeliveryDate"), "estimatedDeliveryDate"),
        # Delivered when every unit that is not cancelled is: retention counts from the last line's delivery.
        delivered_at=max(delivered) if live == {"Delivered"} and delivered else None,
    )
    if status is OrderStatus.CANCELLED:
        return facts, None  # nothing left to ship: the address is not kept
    label, repaired = _label(_dict(shipping.get("postalAddress")), shipping.get("phone"))
    return (replace(facts, text_repaired=True) if repaired else facts), label


def _label(address: Mapping[str, Any], phone: Any) -> tuple[LabelRecord | None, bool]:
    """The label record from ``postalAddress`` and ``phone``, and whether its text had to be repaired."""
    name, line1, country = _text(address.get("name")), _text(address.get("address1")), _text(address.get("country"))
    if not (name and line1 and country):
        return None, False
    served = [address.get(k) for k in ("name", "address1", "address2", "city", "state", "postalCode")] + [phone]
    repaired = any(isinstance(v, str) and repair_text(v).strip() != v.strip() for v in served)
    kind = _text(address.get("addressType"))
    return LabelRecord(
        name=name,
        address_line1=line1,
        address_line2=_text(address.get("address2")),
        city=_text(address.get("city")) or "",
        state_or_region=_text(address.get("state")),
        postal_code=_text(address.get("postalCode")),
        country_code=COUNTRIES.get(country.upper(), country.upper()),
        phone=_text(phone),
        address_type=kind.upper() if kind else None,
    ), repaired
