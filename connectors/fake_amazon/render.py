"""Orders rendered the way each SP-API version serves them.

Orders v2026-01-01 (``searchOrders``/``getOrder``): each optional section appears only when ``includedData``
asks for it; the recipient's delivery address comes with ``RECIPIENT``, no RDT needed.
Orders v0: the shipping address and buyer data are PII, served in full only under a Restricted Data Token
whose ``dataElements`` cover them; otherwise the address keeps just its non-PII fields (city, state or
region, postal code, country) and buyer data is left out.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from .data import MARKETPLACES, FakeItem, FakeOrder, ShipTo


def iso(t: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the second, as Amazon writes timestamps."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(amount), "currencyCode": currency}


def _put(target: dict[str, Any], key: str, value: str | None, *, blank: bool) -> None:
    if value:
        target[key] = value
    elif blank:
        target[key] = ""


def delivery_address(ship_to: ShipTo, *, phone: bool) -> dict[str, Any]:
    """A v2026 ``CustomerAddress``."""
    blank = ship_to.blank_absent
    address: dict[str, Any] = {"name": ship_to.name}
    _put(address, "companyName", ship_to.company, blank=False)
    address["addressLine1"] = ship_to.address_line1
    _put(address, "addressLine2", ship_to.address_line2, blank=blank)
    _put(address, "addressLine3", ship_to.address_line3, blank=blank)
    address["city"] = ship_to.city
    _put(address, "districtOrCounty", ship_to.district_or_county, blank=blank)
    _put(address, "stateOrRegion", ship_to.state_or_region, blank=blank)
    _put(address, "municipality", ship_to.municipality, blank=blank)
    address["postalCode"] = ship_to.postal_code
    address["countryCode"] = ship_to.country_code
    if phone:
        address["phone"] = ship_to.phone
    address["addressType"] = ship_to.address_type
    return address


def _window(earliest: datetime, latest: datetime) -> dict[str, str]:
    return {"earliestDateTime": iso(earliest), "latestDateTime": iso(latest)}


def _item_v2026(order: FakeOrder, item: FakeItem, included: Collection[str]) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "orderItemId": item.order_item_id,
        "quantityOrdered": item.quantity,
        "product": {
            "asin": item.asin,
            "title": item.title,
            "sellerSku": item.seller_sku,
            "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
            "price": {"unitPrice": _money(item.unit_price, item.currency)},
        },
    }
    if "PROCEEDS" in included:
        subtotal = _money(item.unit_price * item.quantity, item.currency)
        rendered["proceeds"] = {"proceedsTotal": subtotal, "breakdowns": [{"type": "ITEM", "subtotal": subtotal}]}
    if "FULFILLMENT" in included:
        shipped = item.quantity if order.status == "SHIPPED" else 0
        unshipped = 0 if order.status in ("SHIPPED", "CANCELLED", "UNFULFILLABLE") else item.quantity
        rendered["fulfillment"] = {"quantityFulfilled": shipped, "quantityUnfulfilled": unshipped}
    return rendered


def order_v2026(order: FakeOrder, included: Collection[str], *, now: datetime) -> dict[str, Any]:
    """A v2026-01-01 ``Order`` with the sections ``included`` names."""
    marketplace = MARKETPLACES[order.marketplace_id]
    programs = []
    if order.is_prime:
        programs.append("PRIME")
    if order.is_business:
        programs.append("AMAZON_BUSINESS")
    if order.status == "PENDING_AVAILABILITY":
        programs.append("PREORDER")
    rendered: dict[str, Any] = {
        "orderId": order.order_id,
        "orderAliases": [{"aliasId": order.seller_order_id, "aliasType": "SELLER_ORDER_ID"}],
        "createdTime": iso(order.created),
        "lastUpdatedTime": iso(order.last_updated),
        "programs": programs,
        "salesChannel": {
            "channelName": order.channel,
            "marketplaceId": marketplace.marketplace_id,
            "marketplaceName": marketplace.name,
        },
    }
    if "BUYER" in included:
        buyer: dict[str, Any] = {"buyerName": order.buyer_name}
        if order.fulfilled_by == "MERCHANT":  # the model: buyerEmail only for merchant-fulfilled orders
            buyer["buyerEmail"] = order.buyer_email
        if order.ship_to.company:
            buyer["buyerCompanyName"] = order.ship_to.company
        if order.purchase_order_number:
            buyer["buyerPurchaseOrderNumber"] = order.purchase_order_number
        rendered["buyer"] = buyer
    if "RECIPIENT" in included and order.has_address:
        rendered["recipient"] = {
            "deliveryAddress": delivery_address(order.ship_to, phone=not order.phone_suppressed(now))
        }
    if "PROCEEDS" in included:
        rendered["proceeds"] = {"grandTotal": _money(order.total, marketplace.currency)}
    if "TAX" in included and order.tax is not None:
        rendered["tax"] = {
            "taxRegistrations": [
                {
                    "entityType": "BUYER",
                    "legalName": order.tax.legal_name,
                    "taxRegistrationType": order.tax.registration_type,
                    "taxRegistrationNumber": order.tax.registration_number,
                    "taxRegistrationAddress": delivery_address(order.ship_to, phone=False),
                }
            ],
            "taxInvoicing": {"buyerInvoicePreference": "BUSINESS"},
        }
    if "FULFILLMENT" in included:
        rendered["fulfillment"] = {
            "fulfillmentStatus": order.status,
            "fulfilledBy": order.fulfilled_by,
            "fulfillmentServiceLevel": order.service_level,
            "shipByWindow": _window(order.earliest_ship, order.latest_ship),
            "deliverByWindow": _window(order.earliest_delivery, order.latest_delivery),
        }
    rendered["orderItems"] = [_item_v2026(order, item, included) for item in order.items]
    # The model: packages "Only available for merchant-fulfilled (FBM) orders".
    if "PACKAGES" in included and order.fulfilled_by == "MERCHANT" and order.status in ("PARTIALLY_SHIPPED", "SHIPPED"):
        shipped_at = min(order.latest_ship, max(order.created, order.last_updated))
        rendered["packages"] = [
            {
                "packageReferenceId": f"PKG-{order.order_id}",
                "createdTime": iso(shipped_at),
                "packageStatus": {
                    "status": "DELIVERED" if order.delivered_at else "IN_TRANSIT",
                    "detailedStatus": "DELIVERED" if order.delivered_at else "PICKED_UP",
                },
                "carrier": "AMZN_" + order.country_code,
                "shipTime": iso(shipped_at),
                "trackingNumber": "TBA" + order.order_id.replace("-", "")[:12],
                "packageItems": [{"orderItemId": i.order_item_id, "quantity": i.quantity} for i in order.items],
            }
        ]
    return rendered


# --- Orders v0 ----------------------------------------------------------------------------------------------

_V0_SERVICE_LEVEL = {
    "STANDARD": "Standard",
    "EXPEDITED": "Expedited",
    "NEXT_DAY": "NextDay",
    "SECOND_DAY": "SecondDay",
    "SAME_DAY": "SameDay",
    "PRIORITY": "Priority",
    "FREE_ECONOMY": "FreeEconomy",
    "SCHEDULED": "Scheduled",
}
_V0_ADDRESS_TYPE = {"RESIDENTIAL": "Residential", "COMMERCIAL": "Commercial"}
# v0 has County and District where v2026 has districtOrCounty: JP and CN addresses use District.
_V0_DISTRICT_COUNTRIES = frozenset({"JP", "CN"})


def shipping_address_v0(order: FakeOrder, *, pii: bool, now: datetime) -> dict[str, Any]:
    """A v0 ``Address``: complete under an RDT, otherwise only its non-PII fields."""
    ship_to = order.ship_to
    address: dict[str, Any] = {}
    if pii:
        address["Name"] = ship_to.name
        _put(address, "CompanyName", ship_to.company, blank=False)
        address["AddressLine1"] = ship_to.address_line1
        _put(address, "AddressLine2", ship_to.address_line2, blank=ship_to.blank_absent)
        _put(address, "AddressLine3", ship_to.address_line3, blank=ship_to.blank_absent)
    address["City"] = ship_to.city
    district_key = "District" if ship_to.country_code in _V0_DISTRICT_COUNTRIES else "County"
    _put(address, district_key, ship_to.district_or_county, blank=False)
    _put(address, "StateOrRegion", ship_to.state_or_region, blank=False)
    _put(address, "Municipality", ship_to.municipality, blank=False)
    address["PostalCode"] = ship_to.postal_code
    address["CountryCode"] = ship_to.country_code
    if pii:
        if not order.phone_suppressed(now):
            address["Phone"] = ship_to.phone
        address["AddressType"] = _V0_ADDRESS_TYPE[ship_to.address_type]
    return address


def buyer_info_v0(order: FakeOrder) -> dict[str, Any]:
    """A v0 ``BuyerInfo`` (PII: only under an RDT with ``buyerInfo``)."""
    info: dict[str, Any] = {"BuyerEmail": order.buyer_email, "BuyerName": order.buyer_name}
    if order.tax is not None:
        info["BuyerTaxInfo"] = {
            "CompanyLegalName": order.tax.legal_name,
            "TaxingRegion": order.tax.taxing_region,
            "TaxClassifications": [{"Name": "VATNumber", "Value": order.tax.registration_number}],
        }
    if order.purchase_order_number:
        info["PurchaseOrderNumber"] = order.purchase_order_number
    return info


def order_v0(order: FakeOrder, *, data_elements: Collection[str], now: datetime) -> dict[str, Any]:
    """A v0 ``Order``; ``data_elements`` are those the caller's RDT grants (empty for a plain LWA token)."""
    marketplace = MARKETPLACES[order.marketplace_id]
    rendered: dict[str, Any] = {
        "AmazonOrderId": order.order_id,
        "SellerOrderId": order.seller_order_id,
        "PurchaseDate": iso(order.created),
        "LastUpdateDate": iso(order.last_updated),
        "OrderStatus": order.v0_status,
        "FulfillmentChannel": order.fulfillment_channel,
        "SalesChannel": marketplace.sales_channel if order.channel == "AMAZON" else "Non-Amazon",
        "ShipServiceLevel": _V0_SERVICE_LEVEL[order.service_level],
        "OrderTotal": {"CurrencyCode": marketplace.currency, "Amount": str(order.total)},
        "NumberOfItemsShipped": order.items_shipped,
        "NumberOfItemsUnshipped": order.items_unshipped,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": marketplace.marketplace_id,
        "ShipmentServiceLevelCategory": _V0_SERVICE_LEVEL[order.service_level],
        "OrderType": "Preorder" if order.status == "PENDING_AVAILABILITY" else "StandardOrder",
        "EarliestShipDate": iso(order.earliest_ship),
        "LatestShipDate": iso(order.latest_ship),
        "EarliestDeliveryDate": iso(order.earliest_delivery),
        "LatestDeliveryDate": iso(order.latest_delivery),
        "IsBusinessOrder": order.is_business,
        "IsPrime": order.is_prime,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": order.country_code != marketplace.country_code,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
    }
    if order.has_address:
        rendered["ShippingAddress"] = shipping_address_v0(order, pii="shippingAddress" in data_elements, now=now)
    if "buyerInfo" in data_elements:
        rendered["BuyerInfo"] = buyer_info_v0(order)
    if "buyerTaxInformation" in data_elements and order.tax is not None:
        rendered["BuyerTaxInformation"] = {
            "BuyerLegalCompanyName": order.tax.legal_name,
            "BuyerTaxRegistrationId": order.tax.registration_number,
        }
    return rendered


def order_address_v0(order: FakeOrder, *, pii: bool, now: datetime) -> dict[str, Any]:
    """The payload of v0 ``getOrderAddress``."""
    payload: dict[str, Any] = {"AmazonOrderId": order.order_id}
    if pii and order.ship_to.company:
        payload["BuyerCompanyName"] = order.ship_to.company
    if order.has_address:
        payload["ShippingAddress"] = shipping_address_v0(order, pii=pii, now=now)
    return payload


def order_buyer_info_v0(order: FakeOrder, *, pii: bool) -> dict[str, Any]:
    """The payload of v0 ``getOrderBuyerInfo``."""
    payload: dict[str, Any] = {"AmazonOrderId": order.order_id}
    if pii:
        payload.update(buyer_info_v0(order))
    return payload
