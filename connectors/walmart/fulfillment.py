"""Telling Walmart an order shipped: ``shippingUpdates`` (Ship Order Lines) with the tracking.

Called by connectors/confirmations.py once labelvault bought the order's label (``Platform.confirm_shipment``).
``getAnOrder`` first, for the order's lines and their statuses (line numbers, quantities, statuses and tracking
numbers are read; nothing of the buyer is kept): lines Shipped or Delivered with this tracking number already
mean an earlier answer was lost, and it is done. Then one ``POST /v3/orders/{purchaseOrderId}/shipping`` with
every line still Created or Acknowledged, each Shipped for its whole quantity with ``trackingInfo``:
``shipDateTime`` (epoch milliseconds), ``carrierName`` (Walmart's ``carrier`` enumeration value where the
carrier is one, else ``otherCarrier`` with its name), ``methodCode`` from the service, ``trackingNumber``, and
for an ``otherCarrier`` the ``trackingURL`` Walmart then requires (the carrier's public tracking page; a
carrier outside Walmart's list whose page labelvault doesn't know is refused before any call, visibly).
Walmart takes shipping updates of one order at a time and charges the buyer on them: the POST isn't
retried after a 5xx or a lost answer (the client raises at once); the confirmation is tried again later,
and that try looks first.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connectors.interfaces import AuthRefused, Connector
from connectors.platform import ConfirmationRefused
from connectors.walmart.client import RequestRefused, WalmartClient
from connectors.walmart.connector import ORDERS_PATH, WalmartConnector

#: Walmart's ``carrierName.carrier`` values for the carriers labels come from, by the provider's name in
#: capitals without spaces or punctuation; any other carrier is sent as ``otherCarrier``.
CARRIERS = {
    "USPS": "USPS",
    "UPS": "UPS",
    "FEDEX": "FedEx",
    "DHL": "DHL",
    "DHLEXPRESS": "DHL",
    "DHLECOMMERCE": "DHL Ecommerce - US",
    "DHLECOMMERCEUS": "DHL Ecommerce - US",
    "ONTRAC": "OnTrac",
    "LASERSHIP": "LS",
    "LSO": "LSO",
    "CANADAPOST": "Canada Post",
    "ROYALMAIL": "Royal Mail",
    "ASENDIA": "Asendia",
    "GLS": "GLS",
    "SENDLE": "Sendle",
    "OSMWORLDWIDE": "OSM Worldwide",
    "YUNEXPRESS": "YunExpress",
    "CHINAPOST": "China Post",
}
#: Public tracking pages of carriers outside Walmart's list (Walmart requires ``trackingURL`` with
#: ``otherCarrier``), by the same compacted name; ``{}`` is the tracking number.
TRACKING_PAGES = {
    "AMZNUS": "https://track.amazon.com/tracking/{}",  # Amazon Shipping's carrier id in the US
    "AMAZONSHIPPING": "https://track.amazon.com/tracking/{}",
}
#: ``methodCode`` by words in the service's name, first match wins; anything else is ``Standard``.
METHODS = (
    (re.compile(r"overnight|next[ -]?day|one[ -]?day|1[ -]?day", re.I), "OneDay"),
    (re.compile(r"express|2[ -]?day|two[ -]?day|second[ -]?day", re.I), "Express"),
    (re.compile(r"freight|ltl", re.I), "Freight"),
)
SHIPPABLE = frozenset({"Created", "Acknowledged"})
SHIPPED = frozenset({"Shipped", "Delivered"})
CLOSED = frozenset({"Cancelled", "Refund"})


def _compact(provider: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", provider).upper()


def carrier_name(provider: str) -> dict[str, str]:
    """Walmart's ``carrierName`` for a carrier ("DHL Express" -> ``{"carrier": "DHL"}``)."""
    compact = _compact(provider)
    if compact in CARRIERS:
        return {"carrier": CARRIERS[compact]}
    return {"otherCarrier": provider.strip()[:100] or "Other"}


def tracking_info(provider: str, service: str, tracking_number: str, shipped_at: datetime) -> dict[str, Any]:
    """The line's ``trackingInfo``; a carrier outside Walmart's list comes with its public tracking page."""
    info: dict[str, Any] = {
        "shipDateTime": ship_millis(shipped_at),
        "carrierName": carrier_name(provider),
        "methodCode": method_code(service),
        "trackingNumber": tracking_number,
    }
    if "otherCarrier" in info["carrierName"]:
        page = TRACKING_PAGES.get(_compact(provider))
        if page is None:
            raise ConfirmationRefused(
                "Walmart takes a carrier outside its list only with a tracking page, and this carrier has none "
                "labelvault knows; confirm the shipment in Seller Center",
                code="no-tracking-page",
            )
        info["trackingURL"] = page.format(quote(tracking_number, safe=""))
    return info


def method_code(service: str) -> str:
    """Walmart's ``methodCode`` for a carrier's service ("UPS Next Day Air" -> ``OneDay``)."""
    return next((code for pattern, code in METHODS if pattern.search(service)), "Standard")


def ship_millis(t: datetime) -> int:
    """``shipDateTime``: epoch milliseconds."""
    return int(t.astimezone(UTC).timestamp() * 1000)


def _client(connector: Connector) -> WalmartClient:
    if not isinstance(connector, WalmartConnector):
        raise TypeError("a Walmart confirmation needs the Walmart connector")
    return connector.client


def _statuses(line: dict[str, Any]) -> list[dict[str, Any]]:
    return list(((line.get("orderLineStatuses") or {}).get("orderLineStatus")) or ())


def _get_order(client: WalmartClient, order_id: str) -> dict[str, Any]:
    try:
        return client.get("getAnOrder", f"{ORDERS_PATH}/{order_id}")
    except RequestRefused as exc:
        if exc.status == 404:
            raise ConfirmationRefused("Walmart has no such order for this seller", code="order-not-found") from None
        raise ConfirmationRefused(f"getAnOrder: Walmart refused (HTTP {exc.status})", code="refused") from None


def confirm_shipment(
    connector: Connector,
    *,
    order_id: str,
    provider: str,
    service: str,
    tracking_number: str,
    shipped_at: datetime,
) -> None:
    """Ship the order's open lines with the tracking (see the module docstring)."""
    client = _client(connector)
    tracking = tracking_info(provider, service, tracking_number, shipped_at)  # refused before any call
    order = _get_order(client, order_id)
    lines = list(((order.get("orderLines") or {}).get("orderLine")) or ())
    tracked = {
        (status.get("trackingInfo") or {}).get("trackingNumber")
        for line in lines
        for status in _statuses(line)
        if status.get("status") in SHIPPED
    }
    open_lines = [line for line in lines if {s.get("status") for s in _statuses(line)} & SHIPPABLE]
    if not open_lines:
        if tracking_number in tracked or (tracked and all(_all_in(line, SHIPPED | CLOSED) for line in lines)):
            return  # an earlier answer was lost, or the seller shipped it in Seller Center
        if lines and all(_all_in(line, CLOSED) for line in lines):
            raise ConfirmationRefused("the order is cancelled", code="order-cancelled")
        raise ConfirmationRefused("the order has no line left to ship", code="not-fulfillable")
    body = {
        "orderShipment": {
            "orderLines": {
                "orderLine": [
                    {
                        "lineNumber": str(line.get("lineNumber")),
                        "sellerOrderId": str(order.get("customerOrderId") or ""),
                        "orderLineStatuses": {
                            "orderLineStatus": [
                                {
                                    "status": "Shipped",
                                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": _quantity(line)},
                                    "trackingInfo": tracking,
                                }
                            ]
                        },
                    }
                    for line in open_lines
                ]
            }
        }
    }
    try:
        client.post("shippingUpdates", f"{ORDERS_PATH}/{order_id}/shipping", body)
    except AuthRefused:
        raise ConfirmationRefused("shippingUpdates: Walmart denied access", code="access-denied") from None
    except RequestRefused as exc:
        if exc.status == 400 and _shipped_with(client, order_id, tracking_number):
            return  # shipped meanwhile with this tracking (another attempt's answer was lost)
        raise ConfirmationRefused(f"shippingUpdates: Walmart refused (HTTP {exc.status})", code="refused") from None


def _shipped_with(client: WalmartClient, order_id: str, tracking_number: str) -> bool:
    """Whether a line of the order is Shipped or Delivered with this tracking number (read again)."""
    order = _get_order(client, order_id)
    return any(
        status.get("status") in SHIPPED and (status.get("trackingInfo") or {}).get("trackingNumber") == tracking_number
        for line in ((order.get("orderLines") or {}).get("orderLine")) or ()
        for status in _statuses(line)
    )


def _all_in(line: dict[str, Any], states: frozenset[str]) -> bool:
    statuses = _statuses(line)
    return bool(statuses) and all(s.get("status") in states for s in statuses)


def _quantity(line: dict[str, Any]) -> str:
    """The line's units still to ship: those of its Created or Acknowledged statuses."""
    total = 0
    for status in _statuses(line):
        if status.get("status") in SHIPPABLE:
            amount = str((status.get("statusQuantity") or {}).get("amount") or "0")
            total += int(float(amount)) if amount.replace(".", "", 1).isdigit() else 0
    if total <= 0:
        amount = str((line.get("orderLineQuantity") or {}).get("amount") or "1")
        total = int(float(amount)) if amount.replace(".", "", 1).isdigit() else 1
    return str(total)
