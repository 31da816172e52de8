"""Telling eBay an order shipped: ``createShippingFulfillment`` (Sell Fulfillment v1) with the tracking.

Called by connectors/confirmations.py once labelvault bought the order's label (``Platform.confirm_shipment``).
``getShippingFulfillments`` first: a fulfillment already carrying this tracking number means an earlier answer
was lost, and it is done. Then ``getOrder`` for the line items not fulfilled yet (their ids and quantities only:
nothing of the buyer is read here, and nothing is stored), and one ``POST /order/{orderId}/shipping_fulfillment``
with ``lineItems``, ``shippedDate``, ``shippingCarrierCode`` and ``trackingNumber``. The POST isn't idempotent at
eBay, so the client doesn't retry it after a 5xx or a lost answer: the confirmation is tried again later, and
that try looks first. Needs the ``sell.fulfillment`` scope (a grant of ``sell.fulfillment.readonly`` is refused
with 403, failing the confirmation until the seller consents again).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from connectors.ebay.client import EbayClient, RequestRefused
from connectors.ebay.connector import EbayConnector
from connectors.ebay.endpoints import ORDERS_PATH
from connectors.interfaces import Connector
from connectors.platform import ConfirmationRefused

#: eBay's shipping carrier enumeration values (``ShippingCarrierDetails``) for the carriers labels come from;
#: any other provider is sent as its name's letters and digits.
CARRIER_CODES = {"USPS": "USPS", "UPS": "UPS", "FEDEX": "FedEx", "DHL": "DHL", "DHLEXPRESS": "DHL"}


def carrier_code(provider: str) -> str:
    """eBay's ``shippingCarrierCode`` for a carrier's name ("DHL Express" -> "DHL")."""
    compact = re.sub(r"[^A-Za-z0-9]", "", provider)
    return CARRIER_CODES.get(compact.upper(), compact or "Other")


def tracking_value(tracking_number: str) -> str:
    """A tracking number as eBay takes it: letters and digits only (no spaces or hyphens)."""
    return re.sub(r"[^A-Za-z0-9]", "", tracking_number)


def shipped_date(t: datetime) -> str:
    """``[YYYY]-[MM]-[DD]T[hh]:[mm]:[ss].[sss]Z``."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _client(connector: Connector) -> EbayClient:
    if not isinstance(connector, EbayConnector):
        raise TypeError("an eBay confirmation needs the eBay connector")
    return connector.client


def _get(client: EbayClient, operation: str, path: str) -> dict[str, Any]:
    try:
        return client.get(operation, path)
    except RequestRefused as exc:
        if exc.status == 404:
            raise ConfirmationRefused("eBay has no such order for this seller", code="order-not-found") from None
        raise ConfirmationRefused(f"{operation}: eBay refused (HTTP {exc.status})", code="refused") from None


def confirm_shipment(
    connector: Connector,
    *,
    order_id: str,
    provider: str,
    service: str,
    tracking_number: str,
    shipped_at: datetime,
) -> None:
    """Create the order's shipping fulfillment with the tracking (see the module docstring)."""
    client = _client(connector)
    path = f"{ORDERS_PATH}/{order_id}"
    tracking = tracking_value(tracking_number)
    done = _get(client, "getShippingFulfillments", f"{path}/shipping_fulfillment")
    if any(f.get("shipmentTrackingNumber") == tracking for f in done.get("fulfillments") or ()):
        return  # an earlier answer was lost: eBay has it
    order = _get(client, "getOrder", path)
    if (order.get("cancelStatus") or {}).get("cancelState") == "CANCELED":
        raise ConfirmationRefused("the order is cancelled", code="order-cancelled")
    if order.get("orderFulfillmentStatus") == "FULFILLED":
        return  # the seller marked it shipped on eBay meanwhile
    items = [
        {"lineItemId": item["lineItemId"], "quantity": int(item.get("quantity") or 1)}
        for item in order.get("lineItems") or ()
        if item.get("lineItemId") and item.get("lineItemFulfillmentStatus") != "FULFILLED"
    ]
    if not items:
        raise ConfirmationRefused("the order has no line item left to ship", code="not-fulfillable")
    body = {
        "lineItems": items,
        "shippedDate": shipped_date(shipped_at),
        "shippingCarrierCode": carrier_code(provider),
        "trackingNumber": tracking,
    }
    try:
        client.post("createShippingFulfillment", f"{path}/shipping_fulfillment", body)
    except RequestRefused as exc:
        if exc.status == 409:
            return  # eBay: a fulfillment of these line items exists (made meanwhile)
        raise ConfirmationRefused(
            f"createShippingFulfillment: eBay refused (HTTP {exc.status})", code="refused"
        ) from None
