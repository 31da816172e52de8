"""Minimise at the boundary: a TikTok Shop order becomes non-PII facts plus at most one label record.

Only what a label needs is read: the order's id, status, times, who ships it, its shop, and its
``recipient_address`` (name, phone, address lines, district info, postal code, region code). The buyer's
e-mail, nickname, avatar, message, user id, CPF, items and payment are never looked at.

Who ships an order decides whether there is a label record at all. ``shipping_type = TIKTOK`` ("shipping
service provided by TikTok. The seller should obtain shipping label from TikTok") and fulfilment by TikTok
(``FULFILLMENT_BY_TIKTOK``: TikTok's warehouse ships it) are *platform-shipped*: TikTok desensitises the
recipient for the seller, so the order is stored with ``label_withheld = "platform-shipped"`` and no label
record, and the warehouse prints TikTok's own document instead (connectors/tiktok/documents.py).

Statuses: ``AWAITING_COLLECTION`` (shipment arranged, the parcel still waiting for the carrier) counts as
unshipped: the parcel is still in the seller's warehouse, which is exactly when its label is printed (and
reprinted). Once the carrier has it (``IN_TRANSIT``), it is shipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connectors.interfaces import BadResponse
from vault.records import WITHHELD_PLATFORM_SHIPPED, LabelRecord, OrderFacts, OrderStatus, repair_text

MARKETPLACE = "tiktok"

STATUSES: dict[str, OrderStatus] = {
    "UNPAID": OrderStatus.PENDING,
    "ON_HOLD": OrderStatus.PENDING,
    "AWAITING_SHIPMENT": OrderStatus.UNSHIPPED,
    "PARTIALLY_SHIPPING": OrderStatus.PARTIALLY_SHIPPED,
    "AWAITING_COLLECTION": OrderStatus.UNSHIPPED,
    "IN_TRANSIT": OrderStatus.SHIPPED,
    "DELIVERED": OrderStatus.SHIPPED,
    "COMPLETED": OrderStatus.SHIPPED,
    "CANCELLED": OrderStatus.CANCELLED,
}


def _text(value: Any) -> str | None:
    """A non-empty, stripped, repaired string or None (TikTok renders absent lines as "")."""
    if not isinstance(value, str):
        return None
    value = repair_text(value).strip()
    return value or None


def _repaired(value: Any) -> bool:
    return isinstance(value, str) and repair_text(value) != value


def _time(value: Any, what: str, *, required: bool = False) -> datetime | None:
    """A Unix timestamp (seconds) as aware UTC."""
    if value is None or value == 0:
        if required:
            raise BadResponse(f"order lacks {what}")
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise BadResponse(f"order has an unreadable {what}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadResponse(f"order has an unreadable {what}") from None


def _required_time(value: Any, what: str) -> datetime:
    parsed = _time(value, what, required=True)
    assert parsed is not None
    return parsed


def platform_shipped(order: Mapping[str, Any]) -> bool:
    """Whether TikTok ships the order itself (its shipping service, or its warehouse)."""
    return order.get("shipping_type") == "TIKTOK" or order.get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK"


def fulfillment_channel(order: Mapping[str, Any]) -> str:
    """How the order ships, in a word: ``SELLER``, ``TIKTOK`` (TikTok's shipping) or ``FBT`` (TikTok's warehouse)."""
    if order.get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK":
        return "FBT"
    return "TIKTOK" if order.get("shipping_type") == "TIKTOK" else "SELLER"


def _districts(address: Mapping[str, Any]) -> dict[str, str]:
    """``district_info`` by level (``L0`` the country ... ``L4``), names repaired."""
    levels: dict[str, str] = {}
    info = address.get("district_info")
    for entry in info if isinstance(info, list) else ():
        if isinstance(entry, Mapping):
            level, name = entry.get("address_level"), _text(entry.get("address_name"))
            if isinstance(level, str) and name:
                levels.setdefault(level, name)
    return levels


def label_from(address: Mapping[str, Any]) -> tuple[LabelRecord | None, bool]:
    """The label record of a ``recipient_address``, and whether its text had to be repaired.

    Districts by level: L1 the state or region, L3 the city (a UK ``post_town`` before it), L2 the county
    when a city follows, else the city itself (Japan's 市区町村, Malaysia's city). Lines 3 and 4 (Brazil)
    make one line; ``address_detail`` stands in for a missing first line. No name, street, city or region
    code: no label (``None``), rather than an address a carrier can't deliver to.
    """
    levels = _districts(address)
    post_town = _text(address.get("post_town"))
    has_city_level = post_town is not None or "L3" in levels
    line1 = _text(address.get("address_line1")) or _text(address.get("address_detail"))
    line3 = " ".join(x for x in (_text(address.get("address_line3")), _text(address.get("address_line4"))) if x)
    name = _text(address.get("name"))
    city = post_town or levels.get("L3") or levels.get("L2")
    region = _text(address.get("region_code"))
    repaired = any(
        _repaired(address.get(key))
        for key in ("name", "address_line1", "address_line2", "address_line3", "address_line4", "phone_number")
    )
    if not (name and line1 and city and region):
        return None, repaired
    return (
        LabelRecord(
            name=name,
            address_line1=line1,
            address_line2=_text(address.get("address_line2")),
            address_line3=line3 or None,
            city=city,
            district_or_county=levels.get("L2") if has_city_level else None,
            state_or_region=levels.get("L1"),
            postal_code=_text(address.get("postal_code")),
            country_code=region.upper(),
            phone=_text(address.get("phone_number")),
        ),
        repaired,
    )


def from_order(order: Mapping[str, Any], *, shop_cipher: str) -> tuple[OrderFacts, LabelRecord | None]:
    """One order of the search (or detail) response, minimised; ``shop_cipher`` is the shop it came from."""
    order_id = _text(order.get("id"))
    if order_id is None:
        raise BadResponse("an order in the response has no id")
    raw_status = order.get("status")
    status = STATUSES.get(raw_status) if isinstance(raw_status, str) else None
    if status is None:
        raise BadResponse("an order in the response has an unknown status")
    facts = OrderFacts(
        marketplace=MARKETPLACE,
        external_order_id=order_id,
        status=status,
        purchased_at=_required_time(order.get("create_time"), "create_time"),
        last_updated_at=_required_time(order.get("update_time"), "update_time"),
        marketplace_id=shop_cipher,
        fulfillment_channel=fulfillment_channel(order),
        ship_by=_time(order.get("rts_sla_time"), "rts_sla_time"),
        latest_delivery_at=_time(order.get("delivery_sla_time"), "delivery_sla_time"),
        delivered_at=_time(order.get("delivery_time"), "delivery_time"),
    )
    if platform_shipped(order):
        return replace(facts, label_withheld=WITHHELD_PLATFORM_SHIPPED), None
    address = order.get("recipient_address")
    if status in (OrderStatus.PENDING, OrderStatus.CANCELLED) or not isinstance(address, Mapping):
        return facts, None
    label, repaired = label_from(address)
    return (replace(facts, text_repaired=True) if repaired else facts), label
