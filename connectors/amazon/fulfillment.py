"""Telling Amazon an order shipped: ``confirmShipment`` (Orders v0) with the carrier and tracking.

Called by connectors/confirmations.py once labelvault bought the order's label (``Platform.confirm_shipment``).
``getOrder`` (v0, without a restricted data token: its status and marketplace only, nothing of the buyer)
first: Shipped means an earlier answer was lost or the seller confirmed it in Seller Central, and it is done;
Canceled is refused; Pending (payment not cleared) is tried again later. Then ``getOrderItems`` for the items'
ids and the quantities not shipped yet, and one ``POST /orders/v0/orders/{orderId}/shipmentConfirmation``
with the order's ``marketplaceId`` and a ``packageDetail``: ``packageReferenceId`` 1 (one label, one
package), ``carrierCode`` (Amazon's code where the carrier has one, else ``Other`` with ``carrierName``),
``shippingMethod`` (the carrier's service), ``trackingNumber``, ``shipDate`` and ``orderItems``. The POST
isn't retried after a 5xx or a lost answer (``idempotent=False``): the confirmation is tried again later, and
that try looks first. Amazon answers 204 with no body.

A label bought through Amazon's Merchant Fulfillment (``connectors/carriers/amazon_mfn/``) marks the order
shipped at Amazon by itself (that carrier's ``marks_order_shipped``): its labels are never confirmed here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.amazon.client import RequestRefused, SpApiClient
from connectors.amazon.connector import AmazonConnector
from connectors.interfaces import AuthRefused, Connector
from connectors.platform import ConfirmationRefused, ConfirmationRetry

ORDERS_V0 = "/orders/v0/orders"
#: Amazon's ``carrierCode`` values for the carriers labels come from, by the provider's name in capitals
#: without spaces or punctuation; any other carrier is sent as ``Other`` with its name.
CARRIER_CODES = {
    "USPS": "USPS",
    "UPS": "UPS",
    "FEDEX": "FedEx",
    "DHL": "DHL",
    "DHLEXPRESS": "DHL",
    "DHLECOMMERCE": "DHL eCommerce",
    "ONTRAC": "OnTrac",
    "CANADAPOST": "Canada Post",
    "ROYALMAIL": "Royal Mail",
    "DPD": "DPD",
    "HERMES": "Hermes",
    "EVRI": "Evri",
    "GLS": "GLS",
    "PARCELFORCE": "Parcelforce",
    "AUSTRALIAPOST": "Australia Post",
    "DEUTSCHEPOST": "Deutsche Post",
}
SHIPPABLE = frozenset({"Unshipped", "PartiallyShipped"})


def carrier_fields(provider: str) -> dict[str, str]:
    """``carrierCode`` (and ``carrierName`` when it is ``Other``) for a carrier's name."""
    compact = re.sub(r"[^A-Za-z0-9]", "", provider).upper()
    if compact in CARRIER_CODES:
        return {"carrierCode": CARRIER_CODES[compact]}
    return {"carrierCode": "Other", "carrierName": provider.strip()[:100] or "Other"}


def order_items(fetch: Callable[[Mapping[str, str] | None], Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every item ``getOrderItems`` answers for one order, page after page: ``fetch(params)`` makes the call
    (``params`` ``None`` for the first page, then ``{"NextToken": ...}``) and returns its ``payload``. A token
    answered twice ends the paging rather than looping on it."""
    params: Mapping[str, str] | None = None
    seen: set[str] = set()
    while True:
        payload = fetch(params)
        yield from (item for item in payload.get("OrderItems") or () if isinstance(item, dict))
        token = payload.get("NextToken")
        if not isinstance(token, str) or not token or token in seen:
            return
        seen.add(token)
        params = {"NextToken": token}


def ship_date(t: datetime) -> str:
    """``shipDate``: ISO 8601 in UTC."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _client(connector: Connector) -> SpApiClient:
    if not isinstance(connector, AmazonConnector):
        raise TypeError("an Amazon confirmation needs the Amazon connector")
    return connector.client


def _get(client: SpApiClient, operation: str, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
    try:
        body = client.call(operation, "GET", path, params=params)
    except RequestRefused as exc:
        if exc.status == 404:
            raise ConfirmationRefused("Amazon has no such order for this seller", code="order-not-found") from None
        raise ConfirmationRefused(f"{operation}: Amazon refused (HTTP {exc.status})", code="refused") from None
    payload = body.get("payload")
    return payload if isinstance(payload, dict) else {}


def confirm_shipment(
    connector: Connector,
    *,
    order_id: str,
    provider: str,
    service: str,
    tracking_number: str,
    shipped_at: datetime,
) -> None:
    """Confirm the order's shipment with the tracking (see the module docstring)."""
    client = _client(connector)
    order = _get(client, "getOrderV0", f"{ORDERS_V0}/{order_id}")
    status = order.get("OrderStatus")
    if status == "Shipped":
        return  # an earlier answer was lost, or the seller confirmed it in Seller Central
    if status == "Canceled":
        raise ConfirmationRefused("the order is cancelled", code="order-cancelled")
    if status == "Pending":
        raise ConfirmationRetry("the order's payment isn't cleared yet", code="not-ready")
    if status not in SHIPPABLE:
        raise ConfirmationRefused("the order is not one the seller ships", code="not-fulfillable")
    items = []
    path = f"{ORDERS_V0}/{order_id}/orderItems"
    for item in order_items(lambda params: _get(client, "getOrderItems", path, params)):
        left = int(item.get("QuantityOrdered") or 0) - int(item.get("QuantityShipped") or 0)
        if item.get("OrderItemId") and left > 0:
            items.append({"orderItemId": str(item["OrderItemId"]), "quantity": left})
    if not items:
        raise ConfirmationRefused("the order has no item left to ship", code="not-fulfillable")
    package: dict[str, Any] = {
        "packageReferenceId": "1",
        **carrier_fields(provider),
        "trackingNumber": tracking_number,
        "shipDate": ship_date(shipped_at),
        "orderItems": items,
    }
    if service:
        package["shippingMethod"] = service[:100]
    body = {"marketplaceId": str(order.get("MarketplaceId") or ""), "packageDetail": package}
    try:
        client.call(
            "confirmShipment", "POST", f"{ORDERS_V0}/{order_id}/shipmentConfirmation", json_body=body, idempotent=False
        )
    except AuthRefused:
        raise ConfirmationRefused("confirmShipment: Amazon denied access", code="access-denied") from None
    except RequestRefused as exc:
        shipped = _get(client, "getOrderV0", f"{ORDERS_V0}/{order_id}").get("OrderStatus") == "Shipped"
        if exc.status == 400 and shipped:
            return  # shipped meanwhile (another attempt's answer was lost)
        raise ConfirmationRefused(f"confirmShipment: Amazon refused (HTTP {exc.status})", code="refused") from None
