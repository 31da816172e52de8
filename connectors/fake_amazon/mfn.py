"""Merchant Fulfillment v0 as the fake marketplace serves it (``merchantFulfillmentV0.json``): on the SP-API
host, under the seller's LWA token, over the marketplace's own orders, so that the order a label is bought for
is the one ``getOrders`` shows Shipped afterwards.

What it models beyond the schema, from the document's descriptions: ``getEligibleShipmentServices`` offers
services for a merchant-fulfilled order Amazon would ship (unshipped, partly shipped, or shipped with every
label of it cancelled: "a seller can create a new shipment for an order while ``Status = RefundPending``"),
each item one of the order's for at most its quantity; each offer (``ShippingServiceOfferId``) is for that
order, service and request, for ``offer_ttl`` seconds. ``createShipment`` buys an offer with the same request
(a different one is refused), in a format the service lists, and marks the order Shipped; ``getShipment``
answers the shipment with its label (Base64 of GZip, MD5 checksum; empty once cancelled) and the buyer's
address, as Amazon does; ``cancelShipment`` moves a purchased label to ``RefundPending``, once.

Faults (each for the next ``count`` calls): :meth:`MerchantFulfillment.lose_purchase` (the label is bought,
the answer held longer than the client waits), :meth:`~MerchantFulfillment.reject` (no service offered: every
one rejected), :meth:`~MerchantFulfillment.expire_offers`; an outage is the marketplace's own ``inject``.
"""

from __future__ import annotations

import base64
import copy
import functools
import gzip
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.fake_shippo import labels
from connectors.fakeserver import FaultQueue

from .data import MARKETPLACES, FakeOrder
from .models import load_models

#: The operations of the Merchant Fulfillment model the fake serves (the rest answer 404).
SERVED = ("getEligibleShipmentServices", "createShipment", "getShipment", "cancelShipmentV0")
#: (carrier, service id, service name, days, base price, price per 100 g, tracking prefix).
SERVICES: tuple[tuple[str, str, str, int, Decimal, Decimal, str], ...] = (
    ("USPS", "USPS_PTP_PRI", "USPS Priority Mail", 3, Decimal("7.85"), Decimal("0.30"), "9405"),
    ("UPS", "UPS_PTP_GND", "UPS Ground", 5, Decimal("6.40"), Decimal("0.20"), "1Z"),
    ("UPS", "UPS_PTP_NEXT_DAY_AIR", "UPS Next Day Air", 1, Decimal("29.10"), Decimal("0.80"), "1Z"),
)
LABEL_FORMATS = ("PDF", "PNG", "ZPL203", "ZPL300")
_RENDER: dict[str, Callable[..., bytes]] = {
    "PDF": labels.pdf_label,
    "PNG": labels.png_label,
    "ZPL203": functools.partial(labels.zpl_label, dpi=203),
    "ZPL300": functools.partial(labels.zpl_label, dpi=300),
}
_FILE_TYPES = {"PDF": "application/pdf", "PNG": "image/png", "ZPL203": "application/zpl", "ZPL300": "application/zpl"}
_SHIPPABLE = frozenset({"UNSHIPPED", "PARTIALLY_SHIPPED"})
_CANCELLED = frozenset({"RefundPending", "RefundApplied"})


class Refused(Exception):
    """An SP-API error answer (the marketplace renders it in Amazon's error shape)."""

    def __init__(self, status: int, message: str, *, code: str = "InvalidInput") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class _Offer:
    order_id: str
    service: tuple[str, str, str, int, Decimal, Decimal, str]
    request: str = field(repr=False)  # the request's canonical JSON, without its label format
    amount: Decimal
    currency: str
    issued: float
    expired: bool = False


@dataclass
class _Shipment:
    shipment_id: str
    order_id: str
    seller_id: str
    details: dict[str, Any] = field(repr=False)
    offer: _Offer = field(repr=False)
    label_format: str
    tracking_id: str
    created: datetime
    status: str = "Purchased"
    updated: datetime | None = None


def _canonical(details: dict[str, Any]) -> str:
    options = {k: v for k, v in (details.get("ShippingServiceOptions") or {}).items() if k != "LabelFormat"}
    return json.dumps({**details, "ShippingServiceOptions": options}, sort_keys=True, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _grams(weight: dict[str, Any]) -> Decimal:
    value = Decimal(str(weight.get("Value") or 0))
    return value * Decimal("28.349523125") if weight.get("Unit") == "oz" else value


class MerchantFulfillment:
    """Merchant Fulfillment's state on one fake marketplace: offers, shipments, faults and what was asked."""

    def __init__(self, *, lock: threading.RLock, offer_ttl: float = 600.0) -> None:
        self._lock = lock
        self.offer_ttl = offer_ttl
        self.faults = FaultQueue()
        self._offers: dict[str, _Offer] = {}
        self._shipments: dict[str, _Shipment] = {}
        #: Every Merchant Fulfillment request taken: (operation, path with query, body), for tests to check
        #: that no buyer data went out (the fake holds it; the client must not send it).
        self.requests: list[tuple[str, str, str]] = []

    # --- faults and inspection ------------------------------------------------------------------------------

    def lose_purchase(self, *, seconds: float, count: int = 1) -> None:
        """Buy the next ``count`` labels, then hold each answer ``seconds`` before sending it."""
        self.faults.add("lose", count, "createShipment", seconds=seconds)

    def reject(self, *, count: int = 1) -> None:
        """The next ``count`` ``getEligibleShipmentServices`` offer no service (every one rejected)."""
        self.faults.add("reject", count, "getEligibleShipmentServices")

    def expire_offers(self) -> None:
        """Every offer made so far expires now (it can no longer be bought)."""
        with self._lock:
            for offer in self._offers.values():
                offer.expired = True

    def held_answer(self) -> float:
        """Seconds to hold the answer of the ``createShipment`` just served (0: none)."""
        lost = self.faults.take("createShipment", "lose")
        return lost.seconds if lost is not None else 0.0

    def purchases_by_order(self) -> dict[str, int]:
        """Labels bought per order (cancelled ones included): a double purchase is 2."""
        with self._lock:
            counts: dict[str, int] = {}
            for s in self._shipments.values():
                counts[s.order_id] = counts.get(s.order_id, 0) + 1
            return counts

    def shipments(self) -> list[dict[str, Any]]:
        """Every bought shipment's ids and state (no address)."""
        with self._lock:
            return [
                {"shipment_id": s.shipment_id, "order_id": s.order_id, "tracking_id": s.tracking_id,
                 "status": s.status, "label_format": s.label_format}
                for s in self._shipments.values()
            ]  # fmt: skip

    # --- operations -----------------------------------------------------------------------------------------

    def operate(
        self,
        name: str,
        *,
        seller_id: str,
        orders: dict[str, FakeOrder],
        path: dict[str, str],
        full_path: str,
        body: Any,
        raw: str,
        now: datetime,
    ) -> tuple[int, Any]:
        """Serve ``name`` for ``seller_id`` (called under the marketplace's lock, the body already checked
        against the model)."""
        self.requests.append((name, full_path, raw))
        handler: Callable[..., tuple[int, Any]] = {
            "getEligibleShipmentServices": self._eligible,
            "createShipment": self._create,
            "getShipment": self._get,
            "cancelShipmentV0": self._cancel,
        }[name]
        return handler(seller_id=seller_id, orders=orders, path=path, body=body, now=now)

    def _order(self, seller_id: str, orders: dict[str, FakeOrder], details: dict[str, Any]) -> FakeOrder:
        order_id = details["AmazonOrderId"]
        order = orders.get(order_id)
        if order is None or order.seller_id != seller_id:
            raise Refused(404, f"Order {order_id} was not found.", code="NotFound")
        if order.fulfilled_by != "MERCHANT":
            raise Refused(400, "The order is not fulfilled by the merchant.")
        labels_of = [s for s in self._shipments.values() if s.order_id == order_id]
        reshipping = order.status == "SHIPPED" and labels_of and all(s.status in _CANCELLED for s in labels_of)
        if order.status not in _SHIPPABLE and not reshipping:
            raise Refused(400, "The order is not eligible for Merchant Fulfillment shipping.")
        quantities = {item.order_item_id: item.quantity for item in order.items}
        for item in details["ItemList"]:
            if not 0 < item["Quantity"] <= quantities.get(item["OrderItemId"], 0):
                raise Refused(400, "An order item or its quantity is invalid.")
        if not details["ItemList"]:
            raise Refused(400, "ItemList must name the items shipped.")
        if _grams(details["Weight"]) <= 0:
            raise Refused(400, "Weight must be positive.")
        return order

    def _eligible(
        self, *, seller_id: str, orders: dict[str, FakeOrder], path: dict[str, str], body: Any, now: datetime
    ) -> tuple[int, Any]:
        details = body["ShipmentRequestDetails"]
        order = self._order(seller_id, orders, details)
        options = details["ShippingServiceOptions"]
        currency = MARKETPLACES[order.marketplace_id].currency
        grams = _grams(details["Weight"])
        if self.faults.take("getEligibleShipmentServices", "reject") is not None:
            rejected = [
                {"CarrierName": c, "ShippingServiceId": sid, "ShippingServiceName": sname,
                 "RejectionReasonCode": "InvalidPackageDimensions"}
                for c, sid, sname, *_ in SERVICES
            ]  # fmt: skip
            return 200, {"payload": {"ShippingServiceList": [], "RejectedShippingServiceList": rejected}}
        services = []
        for service in SERVICES:
            carrier, service_id, service_name, days, base, per_100g, _ = service
            amount = (base + per_100g * grams / 100).quantize(Decimal("0.01"))
            offer_id = base64.b64encode(secrets.token_bytes(120)).decode()  # Amazon's are long and opaque
            self._offers[offer_id] = _Offer(order.order_id, service, _canonical(details), amount, currency,
                                            time.monotonic())  # fmt: skip
            charge = {"CurrencyCode": currency, "Amount": float(amount)}
            services.append(
                {
                    "ShippingServiceName": service_name,
                    "CarrierName": carrier,
                    "ShippingServiceId": service_id,
                    "ShippingServiceOfferId": offer_id,
                    "ShipDate": _iso(now),
                    "EarliestEstimatedDeliveryDate": _iso(now + timedelta(days=max(days - 1, 0), hours=12)),
                    "LatestEstimatedDeliveryDate": _iso(now + timedelta(days=days)),
                    "Rate": charge,
                    "RateWithAdjustments": charge,
                    "ShippingServiceOptions": {
                        "DeliveryExperience": options["DeliveryExperience"],
                        "CarrierWillPickUp": options["CarrierWillPickUp"],
                    },
                    "AvailableLabelFormats": list(LABEL_FORMATS),
                    "AvailableFormatOptionsForLabel": [{"LabelFormat": f} for f in LABEL_FORMATS],
                    "RequiresAdditionalSellerInputs": False,
                }
            )
        return 200, {"payload": {"ShippingServiceList": services}}

    def _create(
        self, *, seller_id: str, orders: dict[str, FakeOrder], path: dict[str, str], body: Any, now: datetime
    ) -> tuple[int, Any]:
        details = body["ShipmentRequestDetails"]
        order = self._order(seller_id, orders, details)
        offer = self._offers.get(body.get("ShippingServiceOfferId") or "")
        if offer is None or offer.order_id != order.order_id or offer.service[1] != body["ShippingServiceId"]:
            raise Refused(400, "The ShippingServiceOfferId is not valid for this order and service.")
        if offer.expired or time.monotonic() - offer.issued > self.offer_ttl:
            raise Refused(400, "The ShippingServiceOfferId has expired; get eligible shipping services again.")
        if offer.request != _canonical(details):
            raise Refused(400, "The ShipmentRequestDetails differ from those the offer was made for.")
        fmt = details["ShippingServiceOptions"].get("LabelFormat") or "ShippingServiceDefault"
        fmt = "PDF" if fmt == "ShippingServiceDefault" else fmt
        if fmt not in LABEL_FORMATS:
            raise Refused(400, "The LabelFormat is not available for the shipping service.")
        del self._offers[body["ShippingServiceOfferId"]]  # an offer is bought once
        prefix = offer.service[6]
        shipment = _Shipment(
            shipment_id=str(uuid.uuid4()),
            order_id=order.order_id,
            seller_id=seller_id,
            details=copy.deepcopy(details),
            offer=offer,
            label_format=fmt,
            tracking_id=prefix + str(uuid.uuid4().int)[: 20 - len(prefix)],
            created=now,
        )
        self._shipments[shipment.shipment_id] = shipment
        order.status = "SHIPPED"  # Amazon marks the order shipped when its label is bought
        order.last_updated = max(order.last_updated, now.replace(microsecond=0))
        return 200, {"payload": self._render(shipment, order)}

    def _shipment(self, seller_id: str, path: dict[str, str]) -> _Shipment:
        shipment = self._shipments.get(path["shipmentId"])
        if shipment is None or shipment.seller_id != seller_id:
            raise Refused(404, "No shipment has this ShipmentId.", code="NotFound")
        return shipment

    def _get(
        self, *, seller_id: str, orders: dict[str, FakeOrder], path: dict[str, str], body: Any, now: datetime
    ) -> tuple[int, Any]:
        shipment = self._shipment(seller_id, path)
        return 200, {"payload": self._render(shipment, orders[shipment.order_id])}

    def _cancel(
        self, *, seller_id: str, orders: dict[str, FakeOrder], path: dict[str, str], body: Any, now: datetime
    ) -> tuple[int, Any]:
        shipment = self._shipment(seller_id, path)
        if shipment.status != "Purchased":
            raise Refused(400, "The shipment is already cancelled.")
        shipment.status = "RefundPending"  # the order stays Shipped, as the model says
        shipment.updated = now
        return 200, {"payload": self._render(shipment, orders[shipment.order_id])}

    # --- rendering ------------------------------------------------------------------------------------------

    def _render(self, shipment: _Shipment, order: FakeOrder) -> dict[str, Any]:
        carrier, service_id, service_name, *_ = shipment.offer.service
        details = shipment.details
        if shipment.status in _CANCELLED:
            content = b""  # "If the shipment is canceled, an empty label is returned."
            contents = checksum = ""
        else:
            content = self._label(shipment, order, service_name)
            contents = base64.b64encode(gzip.compress(content, mtime=0)).decode()
            checksum = base64.b64encode(hashlib.md5(content).digest()).decode()  # noqa: S324 - Amazon's checksum
        charge = {"CurrencyCode": shipment.offer.currency, "Amount": float(shipment.offer.amount)}
        out: dict[str, Any] = {
            "ShipmentId": shipment.shipment_id,
            "AmazonOrderId": shipment.order_id,
            "ItemList": copy.deepcopy(details["ItemList"]),
            "ShipFromAddress": copy.deepcopy(details["ShipFromAddress"]),
            "ShipToAddress": _ship_to(order),
            "PackageDimensions": copy.deepcopy(details["PackageDimensions"]),
            "Weight": copy.deepcopy(details["Weight"]),
            "Insurance": {"CurrencyCode": shipment.offer.currency, "Amount": 0.0},
            "ShippingService": {
                "ShippingServiceName": service_name,
                "CarrierName": carrier,
                "ShippingServiceId": service_id,
                "ShippingServiceOfferId": "",
                "ShipDate": _iso(shipment.created),
                "Rate": charge,
                "RateWithAdjustments": charge,
                "ShippingServiceOptions": copy.deepcopy(details["ShippingServiceOptions"]),
                "RequiresAdditionalSellerInputs": False,
            },
            "Label": {
                "Dimensions": {"Length": 6, "Width": 4, "Unit": "inches"},
                "FileContents": {
                    "Contents": contents,
                    "FileType": _FILE_TYPES[shipment.label_format],
                    "Checksum": checksum,
                },
                "LabelFormat": shipment.label_format,
            },
            "Status": shipment.status,
            "TrackingId": shipment.tracking_id,
            "CreatedDate": _iso(shipment.created),
        }
        if shipment.updated is not None:
            out["LastUpdatedDate"] = _iso(shipment.updated)
        return out

    @staticmethod
    def _label(shipment: _Shipment, order: FakeOrder, service_name: str) -> bytes:
        to = order.ship_to
        lines = [v for v in (to.name, to.company, to.address_line1, to.address_line2, to.address_line3) if v]
        lines += [" ".join(v for v in (to.city, to.state_or_region, to.postal_code) if v), to.country_code]
        return _RENDER[shipment.label_format](service=service_name.upper(), tracking=shipment.tracking_id, lines=lines)


def _limits() -> dict[str, int]:
    """The model's ``maxLength`` of each ``Address`` field."""
    definitions = load_models()["mfn"]["definitions"]
    out: dict[str, int] = {}
    for name, prop in definitions["Address"]["properties"].items():
        target = definitions.get(str(prop.get("$ref", "")).rsplit("/", 1)[-1], prop)
        if "maxLength" in target:
            out[name] = int(target["maxLength"])
    return out


def _ship_to(order: FakeOrder) -> dict[str, Any]:
    """The buyer's address as Merchant Fulfillment answers it, cut to the model's lengths."""
    to = order.ship_to
    values = {
        "Name": to.name,
        "AddressLine1": to.address_line1,
        "AddressLine2": to.address_line2,
        "AddressLine3": to.address_line3,
        "DistrictOrCounty": to.district_or_county,
        "Email": order.buyer_email,
        "City": to.city,
        "StateOrProvinceCode": to.state_or_region,
        "PostalCode": to.postal_code,
        "CountryCode": to.country_code,
        "Phone": to.phone or "",
    }
    limits = _limits()
    required = ("Name", "AddressLine1", "City", "CountryCode", "Email", "Phone", "PostalCode")
    return {k: (v or "")[: limits.get(k, 1000)] for k, v in values.items() if v or k in required}
