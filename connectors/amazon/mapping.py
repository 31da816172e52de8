"""Minimise at the boundary: an SP-API order becomes non-PII facts plus one label record, nothing more.

Only the fields docs/architecture.md lists ("Minimise at the boundary") are read; buyer e-mail, buyer name
(as opposed to the recipient's), tax registrations, items and prices are never looked at, so they can't
leak into storage. Both API versions map to the same values: statuses to :class:`~vault.records.OrderStatus`,
address types to the v2026 spelling (``RESIDENTIAL``/``COMMERCIAL``/``PICKUP_POINT``; v0 says
``Residential``), empty strings to ``None``, text that can't be sealed or printed repaired (lone surrogates
to U+FFFD, control characters dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connectors.interfaces import BadResponse
from vault.records import LabelRecord, OrderFacts, OrderStatus, repair_text

MARKETPLACE = "amazon"

STATUS_V2026: dict[str, OrderStatus] = {
    "PENDING_AVAILABILITY": OrderStatus.PENDING,
    "PENDING": OrderStatus.PENDING,
    "UNSHIPPED": OrderStatus.UNSHIPPED,
    "PARTIALLY_SHIPPED": OrderStatus.PARTIALLY_SHIPPED,
    "SHIPPED": OrderStatus.SHIPPED,
    "CANCELLED": OrderStatus.CANCELLED,
    "UNFULFILLABLE": OrderStatus.UNFULFILLABLE,
}
STATUS_V0: dict[str, OrderStatus] = {
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
    """A non-empty, stripped, repaired string or None (Amazon renders some absent fields as "").

    Repaired with :func:`~vault.records.repair_text`: Amazon passes on whatever a buyer typed, lone
    surrogates and control characters included, and one such order must not block its account's sync.
    """
    if not isinstance(value, str):
        return None
    value = repair_text(value).strip()
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
) -> tuple[LabelRecord | None, bool]:
    """The label record, and whether any of its text had to be repaired (the seller is told)."""
    name_, line1_, city_, country_ = _text(name), _text(line1), _text(city), _text(country_code)
    if not (name_ and line1_ and country_):
        return None, False  # no PII was served (no RDT, or an order without an address): nothing to label
    served = (name, company, line1, line2, line3, city, district, state, municipality, postal_code, phone)
    repaired = any(isinstance(v, str) and repair_text(v).strip() != v.strip() for v in served)
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
    ), repaired


def delivered_v2026(order: Mapping[str, Any], status: OrderStatus, last_updated: datetime) -> datetime | None:
    """When a v2026 order was delivered, as Amazon says: ``None`` until it shipped whole and every package
    reads DELIVERED.

    Amazon reports that a package was delivered, not when (``OrderPackage`` has no delivery time), and the
    delivery updates the order: the order's ``lastUpdatedTime`` when it is first seen delivered is the
    time reported. (:func:`vault.orders.store_order` keeps the earliest one seen, so a later change, a
    return say, doesn't postpone the erasure.) Orders v0 reports no delivery at all.
    """
    packages = order.get("packages")
    if status is not OrderStatus.SHIPPED or not isinstance(packages, list) or not packages:
        return None
    statuses = {_text(_dict(_dict(p).get("packageStatus")).get("status")) for p in packages}
    return last_updated if statuses == {"DELIVERED"} else None


def from_v2026(order: Mapping[str, Any]) -> tuple[OrderFacts, LabelRecord | None]:
    """Map an Orders v2026-01-01 ``Order`` (with FULFILLMENT, RECIPIENT and PACKAGES included)."""
    order_id = _text(order.get("orderId"))
    if order_id is None:
        raise BadResponse("order lacks orderId")
    fulfillment = _dict(order.get("fulfillment"))
    raw_status = _text(fulfillment.get("fulfillmentStatus"))
    status = STATUS_V2026.get(raw_status or "")
    if status is None:
        raise BadResponse(f"order has an unknown fulfillmentStatus {raw_status!r}"[:120])
    last_updated = _required_time(order.get("lastUpdatedTime"), "lastUpdatedTime")
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=_required_time(order.get("createdTime"), "createdTime"),
        last_updated_at=last_updated,
        marketplace_id=_text(_dict(order.get("salesChannel")).get("marketplaceId")),
        fulfillment_channel=_CHANNEL_V2026.get(_text(fulfillment.get("fulfilledBy")) or ""),
        ship_by=_time(_dict(fulfillment.get("shipByWindow")).get("latestDateTime"), "shipByWindow"),
        latest_delivery_at=_time(_dict(fulfillment.get("deliverByWindow")).get("latestDateTime"), "deliverByWindow"),
        delivered_at=delivered_v2026(order, status, last_updated),
    )
    a = _dict(_dict(order.get("recipient")).get("deliveryAddress"))
    label, repaired = _label(
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
    return (replace(facts, text_repaired=True) if repaired else facts), label


def from_v0(order: Mapping[str, Any]) -> tuple[OrderFacts, LabelRecord | None]:
    """Map an Orders v0 ``Order`` (fetched under an RDT covering ``shippingAddress``)."""
    order_id = _text(order.get("AmazonOrderId"))
    if order_id is None:
        raise BadResponse("order lacks AmazonOrderId")
    raw_status = _text(order.get("OrderStatus"))
    status = STATUS_V0.get(raw_status or "")
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
    label, repaired = _label(
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
    return (replace(facts, text_repaired=True) if repaired else facts), label
