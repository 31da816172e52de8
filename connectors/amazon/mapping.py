"""Minimise at the boundary: an SP-API order becomes non-PII facts plus one label record, nothing more.

Only the fields docs/architecture.md lists ("Minimise at the boundary") are read; buyer e-mail, buyer name
(as opposed to the recipient's), tax registrations, items and prices are never looked at, so they can't
leak into storage. Both API versions map to the same values: statuses to :class:`~vault.records.OrderStatus`,
address types to the v2026 spelling (``RESIDENTIAL``/``COMMERCIAL``/``PICKUP_POINT``; v0 says
``Residential``), empty strings to ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.interfaces import BadResponse
from vault.records import LabelRecord, OrderFacts, OrderStatus

MARKETPLACE = "amazon"

_STATUS_V2026: dict[str, OrderStatus] = {
    "PENDING_AVAILABILITY": OrderStatus.PENDING,
    "PENDING": OrderStatus.PENDING,
    "UNSHIPPED": OrderStatus.UNSHIPPED,
    "PARTIALLY_SHIPPED": OrderStatus.PARTIALLY_SHIPPED,
    "SHIPPED": OrderStatus.SHIPPED,
    "CANCELLED": OrderStatus.CANCELLED,
    "UNFULFILLABLE": OrderStatus.UNFULFILLABLE,
}
_STATUS_V0: dict[str, OrderStatus] = {
    "PendingAvailability": OrderStatus.PENDING,
    "Pending": OrderStatus.PENDING,
    "Unshipped": OrderStatus.UNSHIPPED,
    "PartiallyShipped": OrderStatus.PARTIALLY_SHIPPED,
    "Shipped": OrderStatus.SHIPPED,
    # Shipped, with the seller's invoice confirmation outstanding (China): nothing left to label.
    "InvoiceUnconfirmed": OrderStatus.SHIPPED,
    "Canceled": OrderStatus.CANCELLED,
    "Unfulfillable": OrderStatus.UNFULFILLABLE,
}
_CHANNEL_V2026 = {"MERCHANT": "MFN", "AMAZON": "AFN"}
_ADDRESS_TYPES = {"RESIDENTIAL": "RESIDENTIAL", "COMMERCIAL": "COMMERCIAL", "PICKUPPOINT": "PICKUP_POINT"}


def _text(value: Any) -> str | None:
    """A non-empty, stripped string or None (Amazon renders some absent fields as "")."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _time(value: Any, what: str, *, required: bool = False) -> datetime | None:
    """An ISO 8601 timestamp as aware UTC."""
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


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def address_type(value: Any) -> str | None:
    """Amazon's address type in one spelling across API versions."""
    text = _text(value)
    if text is None:
        return None
    return _ADDRESS_TYPES.get(text.upper().replace("_", ""), text.upper())


def _label(
    *,
    name: Any,
    company: Any,
    line1: Any,
    line2: Any,
    line3: Any,
    city: Any,
    district: Any,
    state: Any,
    municipality: Any,
    postal_code: Any,
    country_code: Any,
    phone: Any,
    kind: Any,
) -> LabelRecord | None:
    name_, line1_, city_, country_ = _text(name), _text(line1), _text(city), _text(country_code)
    if not (name_ and line1_ and country_):
        return None  # no PII was served (no RDT, or an order without an address): nothing to label
    return LabelRecord(
        name=name_,
        company=_text(company),
        address_line1=line1_,
        address_line2=_text(line2),
        address_line3=_text(line3),
        # Some addresses (Singapore, Hong Kong) have no city; the label still needs the other lines.
        city=city_ or "",
        district_or_county=_text(district),
        state_or_region=_text(state),
        municipality=_text(municipality),
        postal_code=_text(postal_code),
        country_code=country_.upper(),
        phone=_text(phone),
        address_type=address_type(kind),
    )


def from_v2026(order: Mapping[str, Any]) -> tuple[OrderFacts, LabelRecord | None]:
    """Map an Orders v2026-01-01 ``Order`` (with FULFILLMENT and RECIPIENT included)."""
    order_id = _text(order.get("orderId"))
    if order_id is None:
        raise BadResponse("order lacks orderId")
    fulfillment = _dict(order.get("fulfillment"))
    raw_status = _text(fulfillment.get("fulfillmentStatus"))
    status = _STATUS_V2026.get(raw_status or "")
    if status is None:
        raise BadResponse(f"order has an unknown fulfillmentStatus {raw_status!r}"[:120])
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=_required_time(order.get("createdTime"), "createdTime"),
        last_updated_at=_required_time(order.get("lastUpdatedTime"), "lastUpdatedTime"),
        marketplace_id=_text(_dict(order.get("salesChannel")).get("marketplaceId")),
        fulfillment_channel=_CHANNEL_V2026.get(_text(fulfillment.get("fulfilledBy")) or ""),
        ship_by=_time(_dict(fulfillment.get("shipByWindow")).get("latestDateTime"), "shipByWindow"),
        latest_delivery_at=_time(_dict(fulfillment.get("deliverByWindow")).get("latestDateTime"), "deliverByWindow"),
    )
    a = _dict(_dict(order.get("recipient")).get("deliveryAddress"))
    label = _label(
        name=a.get("name"),
        company=a.get("companyName"),
        line1=a.get("addressLine1"),
        line2=a.get("addressLine2"),
        line3=a.get("addressLine3"),
        city=a.get("city"),
        district=a.get("districtOrCounty"),
        state=a.get("stateOrRegion"),
        municipality=a.get("municipality"),
        postal_code=a.get("postalCode"),
        country_code=a.get("countryCode"),
        phone=a.get("phone"),
        kind=a.get("addressType"),
    )
    return facts, label


def from_v0(order: Mapping[str, Any]) -> tuple[OrderFacts, LabelRecord | None]:
    """Map an Orders v0 ``Order`` (fetched under an RDT covering ``shippingAddress``)."""
    order_id = _text(order.get("AmazonOrderId"))
    if order_id is None:
        raise BadResponse("order lacks AmazonOrderId")
    raw_status = _text(order.get("OrderStatus"))
    status = _STATUS_V0.get(raw_status or "")
    if status is None:
        raise BadResponse(f"order has an unknown OrderStatus {raw_status!r}"[:120])
    channel = _text(order.get("FulfillmentChannel"))
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=_required_time(order.get("PurchaseDate"), "PurchaseDate"),
        last_updated_at=_required_time(order.get("LastUpdateDate"), "LastUpdateDate"),
        marketplace_id=_text(order.get("MarketplaceId")),
        fulfillment_channel=channel if channel in ("MFN", "AFN") else None,
        ship_by=_time(order.get("LatestShipDate"), "LatestShipDate"),
        latest_delivery_at=_time(order.get("LatestDeliveryDate"), "LatestDeliveryDate"),
    )
    a = _dict(order.get("ShippingAddress"))
    label = _label(
        name=a.get("Name"),
        company=a.get("CompanyName"),
        line1=a.get("AddressLine1"),
        line2=a.get("AddressLine2"),
        line3=a.get("AddressLine3"),
        city=a.get("City"),
        # v0 splits what v2026 calls districtOrCounty (JP and CN addresses use District).
        district=_text(a.get("District")) or a.get("County"),
        state=a.get("StateOrRegion"),
        municipality=a.get("Municipality"),
        postal_code=a.get("PostalCode"),
        country_code=a.get("CountryCode"),
        phone=a.get("Phone"),
        kind=a.get("AddressType"),
    )
    return facts, label
