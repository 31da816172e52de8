"""Minimise at the boundary: a Shopify order becomes non-PII facts plus at most one label record.

Only the fields :data:`connectors.shopify.query.ORDERS_QUERY` asks for exist here, and of those only the
shipping address's label fields become PII (sealed). Protected customer data Shopify withholds (the app is
not approved for it: the field comes back null, or with an ``ACCESS_DENIED`` error) is never stored as an
empty address: the order is stored with ``label_withheld = "redacted"`` and no label, and the connector
reports a notice. A withheld phone alone only leaves the label without a phone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from connectors.interfaces import BadResponse
from vault.records import WITHHELD_REDACTED, LabelRecord, OrderFacts, OrderStatus, repair_text

MARKETPLACE = "shopify"

#: ``Order.displayFulfillmentStatus`` -> labelvault's status (before cancellation, closing and the
#: fulfillment orders are looked at: see :func:`status_of`).
DISPLAY_STATUS: dict[str, OrderStatus] = {
    "UNFULFILLED": OrderStatus.UNSHIPPED,
    "OPEN": OrderStatus.UNSHIPPED,
    "IN_PROGRESS": OrderStatus.UNSHIPPED,
    "PENDING_FULFILLMENT": OrderStatus.UNSHIPPED,
    # A fulfilment service declined the request: the merchant ships it some other way, with a label.
    "REQUEST_DECLINED": OrderStatus.UNSHIPPED,
    "PARTIALLY_FULFILLED": OrderStatus.PARTIALLY_SHIPPED,
    "FULFILLED": OrderStatus.SHIPPED,
    # Held or scheduled (a subscription's later delivery): no label yet, the address is kept.
    "ON_HOLD": OrderStatus.PENDING,
    "SCHEDULED": OrderStatus.PENDING,
    # Items went back to stock: the order will not ship.
    "RESTOCKED": OrderStatus.CANCELLED,
}
#: States that are not a display status but decide as much (the platform's table shows them too).
CANCELLED = "CANCELLED"  # Order.cancelledAt is set
CLOSED_UNFULFILLED = "CLOSED"  # Order.closed (archived) before it was fulfilled
STATUSES: dict[str, OrderStatus] = {
    **DISPLAY_STATUS,
    CANCELLED: OrderStatus.CANCELLED,
    CLOSED_UNFULFILLED: OrderStatus.PENDING,
}
#: Fulfillment-order statuses in which that share of the order waits and needs no label yet.
_WAITING = frozenset({"ON_HOLD", "SCHEDULED"})
#: Countries whose labels write the province's code ("CA", "NSW") rather than its name.
_PROVINCE_CODES = frozenset({"US", "CA", "AU", "BR", "MX", "MY", "IN"})
#: MailingAddress fields without which there is no label: withheld, they make the order "redacted".
_REQUIRED_PROTECTED = ("name", "address1")


@dataclass(frozen=True, slots=True)
class Mapped:
    """One order, mapped: its facts, its label (or ``None``), and what Shopify withheld."""

    facts: OrderFacts
    label: LabelRecord | None
    #: The address's name or lines were withheld (protected customer data): no label, ``label_withheld`` set.
    redacted: bool = False
    #: Only the phone was withheld: the label has none.
    phone_withheld: bool = False


def _text(value: Any) -> str | None:
    """A non-empty, stripped, repaired string or None (Shopify passes on what a buyer typed)."""
    if not isinstance(value, str):
        return None
    value = repair_text(value).strip()
    return value or None


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadResponse(f"order has an unreadable {what}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadResponse(f"order has an unreadable {what}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _required_time(value: Any, what: str) -> datetime:
    parsed = _time(value, what)
    if parsed is None:
        raise BadResponse(f"order lacks {what}")
    return parsed


def fulfillment_order_statuses(order: Mapping[str, Any]) -> tuple[str, ...]:
    """The statuses of the order's fulfillment orders, as served."""
    connection = order.get("fulfillmentOrders")
    nodes = connection.get("nodes") if isinstance(connection, Mapping) else None
    if not isinstance(nodes, list):
        return ()
    return tuple(s for s in (n.get("status") for n in nodes if isinstance(n, Mapping)) if isinstance(s, str))


def status_of(display: str, *, cancelled: bool, closed: bool, fulfillment_orders: Sequence[str]) -> OrderStatus:
    """labelvault's status of a Shopify order.

    Cancelled wins; then the display status; then the fulfillment orders refine an order that still has
    something to ship: every one cancelled means nothing will ship, every open one held or scheduled means
    no label yet. An order closed (archived) before it was fulfilled is held: nothing to label while it is
    archived, its address kept in case it is reopened.
    """
    if cancelled:
        return OrderStatus.CANCELLED
    status = DISPLAY_STATUS.get(display)
    if status is None:
        raise BadResponse(f"order has an unknown displayFulfillmentStatus {display!r}"[:120])
    if status in (OrderStatus.UNSHIPPED, OrderStatus.PARTIALLY_SHIPPED) and fulfillment_orders:
        if all(s == "CANCELLED" for s in fulfillment_orders):
            return OrderStatus.CANCELLED if status is OrderStatus.UNSHIPPED else OrderStatus.SHIPPED
        remaining = [s for s in fulfillment_orders if s not in ("CLOSED", "CANCELLED")]
        if not remaining:
            return OrderStatus.SHIPPED  # every share was fulfilled (or cancelled): nothing left to label
        if all(s in _WAITING for s in remaining):
            return OrderStatus.PENDING
    if closed and status in (OrderStatus.UNSHIPPED, OrderStatus.PARTIALLY_SHIPPED):
        return OrderStatus.PENDING
    return status


def order_id_of(order: Mapping[str, Any]) -> str:
    """The order's id as labelvault keeps it: Shopify's numeric ``legacyResourceId`` (the one the admin's
    URLs and the privacy webhooks' ``orders_to_redact`` use), checked against the GraphQL id."""
    legacy = order.get("legacyResourceId")
    text = str(legacy) if isinstance(legacy, (str, int)) and not isinstance(legacy, bool) else ""
    if not text.isdigit() or len(text) > 20:
        raise BadResponse("order lacks a numeric legacyResourceId")
    gid = order.get("id")
    if isinstance(gid, str) and gid.startswith("gid://shopify/Order/") and gid.rsplit("/", 1)[1] != text:
        raise BadResponse("order's id and legacyResourceId disagree")
    return text


def from_order(order: Mapping[str, Any], *, withheld: Collection[str] = ()) -> Mapped:
    """Map one ``Order`` node of :data:`~connectors.shopify.query.ORDERS_QUERY`.

    ``withheld``: the ``MailingAddress`` fields Shopify refused with ``ACCESS_DENIED`` for this order
    (``"*"`` for the whole address), from the answer's ``errors``.
    """
    order_id = order_id_of(order)
    display = order.get("displayFulfillmentStatus")
    status = status_of(
        display if isinstance(display, str) else "",
        cancelled=order.get("cancelledAt") is not None,
        closed=order.get("closed") is True,
        fulfillment_orders=fulfillment_order_statuses(order),
    )
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=_required_time(order.get("createdAt"), "createdAt"),
        last_updated_at=_required_time(order.get("updatedAt"), "updatedAt"),
    )
    if status is OrderStatus.CANCELLED:
        return Mapped(facts, None)  # nothing will ship: no address is kept (the sync erases any stored one)
    address = order.get("shippingAddress")
    if "*" in withheld or (address is None and withheld):
        return Mapped(replace(facts, label_withheld=WITHHELD_REDACTED), None, redacted=True)
    if not isinstance(address, Mapping):
        return Mapped(facts, None)  # nothing to ship (digital goods, pickup in store)
    a = address
    if any(f in withheld or a.get(f) is None for f in _REQUIRED_PROTECTED) and _text(a.get("countryCodeV2")):
        # The address exists (it has a country) but its protected lines came back null or refused.
        return Mapped(replace(facts, label_withheld=WITHHELD_REDACTED), None, redacted=True)
    name, line1, country = _text(a.get("name")), _text(a.get("address1")), _text(a.get("countryCodeV2"))
    if not (name and line1 and country):
        return Mapped(facts, None)
    served = [a.get(f) for f in ("name", "company", "address1", "address2", "city", "province", "zip", "phone")]
    repaired = any(isinstance(v, str) and repair_text(v).strip() != v.strip() for v in served)
    country = country.upper()
    province = _text(a.get("provinceCode")) if country in _PROVINCE_CODES else None
    label = LabelRecord(
        name=name,
        company=_text(a.get("company")),
        address_line1=line1,
        address_line2=_text(a.get("address2")),
        city=_text(a.get("city")) or "",
        state_or_region=province or _text(a.get("province")),
        postal_code=_text(a.get("zip")),
        country_code=country,
        phone=None if "phone" in withheld else _text(a.get("phone")),
    )
    return Mapped(
        replace(facts, text_repaired=True) if repaired else facts,
        label,
        phone_withheld="phone" in withheld,
    )
