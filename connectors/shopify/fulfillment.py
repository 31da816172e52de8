"""Telling Shopify an order shipped: ``fulfillmentCreate`` on its open fulfillment orders, with the tracking.

Called by connectors/confirmations.py once labelvault bought the order's label (``Platform.confirm_shipment``).
First one read of the order (its fulfillment orders' ids and states, the tracking numbers of its fulfillments),
then one ``fulfillmentCreate`` per fulfillable fulfillment order (each is one location's share, and Shopify
takes fulfillment orders of one location per call) with ``trackingInfo { company number }`` and the customer
notified. Idempotent: a retry after a lost answer finds the fulfillment orders closed and the tracking number on
a fulfillment, and is done. Needs a write scope (``write_merchant_managed_fulfillment_orders``, or the assigned
or third-party one): without it Shopify answers ACCESS_DENIED, which fails the confirmation visibly until the
seller installs the app again with the scope.

Nothing of the buyer is asked for or sent; Shopify's ``userErrors`` messages are never logged or kept (they may
quote the order), only a short code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connectors.interfaces import Connector
from connectors.platform import ConfirmationRefused, ConfirmationRetry
from connectors.shopify.client import QueryRefused, error_codes
from connectors.shopify.connector import ShopifyConnector

ORDER_OPERATION = "LabelvaultFulfillmentOrders"
CREATE_OPERATION = "LabelvaultFulfillmentCreate"
#: Fulfillment orders and fulfillments read: one per location that ships a share; more is rare.
FULFILLMENT_ORDERS = 10

ORDER_QUERY = (
    f"query {ORDER_OPERATION}($id: ID!) {{\n"
    "  order(id: $id) {\n"
    "    id\n"
    "    cancelledAt\n"
    "    displayFulfillmentStatus\n"
    f"    fulfillments(first: {FULFILLMENT_ORDERS}) {{ trackingInfo(first: 5) {{ number }} }}\n"
    f"    fulfillmentOrders(first: {FULFILLMENT_ORDERS}) {{ nodes {{ id status }} }}\n"
    "  }\n"
    "}\n"
)
#: order 1, fulfillments (a list) 1 + trackingInfo (a list) 1, fulfillmentOrders 2 + 10 nodes of 1.
ORDER_COST = 1 + 2 + 2 + FULFILLMENT_ORDERS

CREATE_MUTATION = (
    f"mutation {CREATE_OPERATION}($fulfillment: FulfillmentInput!) {{\n"
    "  fulfillmentCreate(fulfillment: $fulfillment) {\n"
    "    fulfillment { id status }\n"
    "    userErrors { field message }\n"
    "  }\n"
    "}\n"
)
#: A mutation 10, its payload 1, the fulfillment 1, userErrors (a list) 1.
CREATE_COST = 10 + 1 + 1 + 1

#: Fulfillment order states ``fulfillmentCreate`` takes, and those that may become fulfillable later.
FULFILLABLE = frozenset({"OPEN", "IN_PROGRESS"})
WAITING = frozenset({"ON_HOLD", "SCHEDULED"})
ORDER_GID = "gid://shopify/Order/"


def _client(connector: Connector) -> Any:
    if not isinstance(connector, ShopifyConnector):
        raise TypeError("a Shopify confirmation needs the Shopify connector")
    return connector.client


def _query(client: Any, operation: str, document: str, variables: Mapping[str, Any], cost: int) -> dict[str, Any]:
    try:
        body: dict[str, Any] = client.query(operation, document, variables, cost=cost)
    except QueryRefused as exc:
        raise ConfirmationRefused(f"{operation}: Shopify refused ({exc.code or exc.status})", code="refused") from None
    codes = error_codes(body)
    if "ACCESS_DENIED" in codes:
        raise ConfirmationRefused(f"{operation}: the app lacks a fulfillment write scope", code="scope-missing")
    if codes:
        raise ConfirmationRetry(f"{operation}: Shopify answered with errors ({', '.join(codes[:3])})", code="errors")
    return body


def confirm_shipment(
    connector: Connector,
    *,
    order_id: str,
    provider: str,
    service: str,
    tracking_number: str,
    shipped_at: datetime,
) -> None:
    """Fulfil the order's open fulfillment orders with the tracking (see the module docstring)."""
    client = _client(connector)
    body = _query(client, ORDER_OPERATION, ORDER_QUERY, {"id": f"{ORDER_GID}{order_id}"}, ORDER_COST)
    order = (body.get("data") or {}).get("order")
    if order is None:
        raise ConfirmationRefused("Shopify has no such order for this app", code="order-not-found")
    tracked = {
        info.get("number")
        for fulfillment in order.get("fulfillments") or ()
        for info in fulfillment.get("trackingInfo") or ()
    }
    nodes = (order.get("fulfillmentOrders") or {}).get("nodes") or []
    open_ids = [n["id"] for n in nodes if n.get("status") in FULFILLABLE]
    if not open_ids:
        if tracking_number in tracked or order.get("displayFulfillmentStatus") == "FULFILLED":
            return  # done already: an earlier answer was lost, or the seller fulfilled it in Shopify
        if order.get("cancelledAt"):
            raise ConfirmationRefused("the order is cancelled", code="order-cancelled")
        if any(n.get("status") in WAITING for n in nodes):
            raise ConfirmationRetry("the order's fulfillment is on hold or scheduled", code="on-hold")
        raise ConfirmationRefused("the order has no fulfillable fulfillment order", code="not-fulfillable")
    for fulfillment_order_id in open_ids:
        try:
            _create(client, fulfillment_order_id, provider=provider, tracking_number=tracking_number)
        except ConfirmationRefused as exc:
            if exc.code != "user-error" or not _done(client, order_id, tracking_number):
                raise
            return  # fulfilled meanwhile (by another attempt or the seller): done


def _done(client: Any, order_id: str, tracking_number: str) -> bool:
    """Whether the order is fulfilled now, or carries the tracking number (read again after a refusal)."""
    body = _query(client, ORDER_OPERATION, ORDER_QUERY, {"id": f"{ORDER_GID}{order_id}"}, ORDER_COST)
    order = (body.get("data") or {}).get("order") or {}
    tracked = {
        info.get("number")
        for fulfillment in order.get("fulfillments") or ()
        for info in fulfillment.get("trackingInfo") or ()
    }
    return tracking_number in tracked or order.get("displayFulfillmentStatus") == "FULFILLED"


def _create(client: Any, fulfillment_order_id: str, *, provider: str, tracking_number: str) -> None:
    variables = {
        "fulfillment": {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fulfillment_order_id}],
            "notifyCustomer": True,
            "trackingInfo": {"company": provider, "number": tracking_number},
        }
    }
    body = _query(client, CREATE_OPERATION, CREATE_MUTATION, variables, CREATE_COST)
    payload = (body.get("data") or {}).get("fulfillmentCreate") or {}
    if payload.get("userErrors"):
        raise ConfirmationRefused("Shopify refused the fulfillment (userErrors)", code="user-error")
    if not payload.get("fulfillment"):
        raise ConfirmationRetry("Shopify answered without a fulfillment", code="no-fulfillment")
