"""The Amazon Merchant Fulfillment v0 client: Amazon's own label buying for an Amazon order the seller ships
(``getEligibleShipmentServices`` → ``createShipment`` → ``getShipment`` → ``cancelShipment``, the document in
``connectors/platform_specs/amazon/merchantFulfillmentV0.json``), on the same SP-API host and Login with
Amazon grant as the Orders API.

Merchant Fulfillment quotes by ``AmazonOrderId``: Amazon has the buyer's address, so **the ship-to is never
sent** (``Quote.fields_sent`` is empty) and only the seller's ship-from, the parcel and the order's items go
out. The vault doesn't store the items; :meth:`~MerchantFulfillmentCarrier.quote` reads them with the Orders
API's ``getOrderItems`` (item ids and quantities; no buyer data), under the same access token. Only an Amazon
order can be quoted (anything else is :class:`NoMatchingRate` before any call). Amazon marks the order shipped
when the label is bought (``marks_order_shipped`` in the registry: no confirmation is queued).

``createShipment`` needs the whole request again (ship-from, parcel, items) with the offer it buys, more than
the 100 characters a stored rate id keeps; the client keeps its quotes' requests in memory under their rate
ids (``<ShippingServiceId>|<AmazonOrderId>|<offer digest>``, the last :data:`MAX_OFFERS`), and a rate it did
not quote itself (a new process resuming a purchase) is :class:`RateChanged`: nothing bought, the purchase
flow quotes again.

Merchant Fulfillment has no idempotency key and no look-up of a shipment by a client reference, so a lost
``createShipment`` answer is settled by the order's status (``getOrder`` v0, no restricted data token):
Amazon marks an order Shipped when its label is bought, so an order not Shipped had no label bought and
:meth:`~MerchantFulfillmentCarrier.find_purchase` answers ``None`` (the flow may buy it); a Shipped order
may have been bought by the lost request, and the shipment it made can't be found, so ``find_purchase``
raises :class:`PurchaseUncertain` and the shipment stays pending, never bought again blindly; the seller
settles it in Seller Central (``docs/carriers.md``). The order shows Shipped only once Amazon has finished
the purchase, and a ``createShipment`` the client stopped waiting for may still be under way: the carrier's
``settle_delay`` (``MerchantFulfillmentPolicy.settle_after``, five minutes by default) tells the shipment
flow to believe ``None`` only that long after the last attempt was sent; until then the shipment stays
pending.

Labels: PDF, PNG, ZPL at 203 dpi (``ZPL300`` with ``MerchantFulfillmentPolicy.dpi = 300``), 4 × 6 in, fixed at
purchase; ``getShipment`` serves it again (Base64 of GZip). URLs carry only order and shipment ids; nothing
here logs a body (``getShipment`` answers the buyer's address, which is read past and dropped); error
messages name the operation, the status and Amazon's error code, never Amazon's text.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.amazon.endpoints import REGIONS
from connectors.amazon.fulfillment import order_items
from connectors.carriers.fields import required_str, timestamp
from connectors.carriers.http import CarrierPolicy
from connectors.carriers.interfaces import (
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierError,
    LabelDocument,
    LabelFormat,
    NoMatchingRate,
    OrderContext,
    Parcel,
    Purchase,
    PurchaseUncertain,
    Quote,
    Rate,
    RateChanged,
    ShipFrom,
    Tracking,
    TrackingStatus,
    VoidRefused,
    VoidStatus,
)
from connectors.carriers.spapi import LIVE_HOSTS as LIVE_HOSTS
from connectors.carriers.spapi import (
    SpApiCarrier,
    SpApiCredentials,
    SpApiPolicy,
    cm,
    lwa_url_for,
    names,
    region_base,
)
from vault.records import LabelRecord

CARRIER = "amazonmfn"
#: The SP-API regions an account's selling partner may live in (``na``, ``eu``, ``fe``).
REGION_CODES: tuple[str, ...] = tuple(REGIONS)
ORDERS_V0 = "/orders/v0/orders"
#: How the seller wants delivery confirmed: tracked, no signature (the labels the vault buys elsewhere).
DELIVERY_EXPERIENCE = "DeliveryConfirmationWithoutSignature"
_STATUS = {
    "Purchased": TrackingStatus.PRE_TRANSIT,
    "RefundPending": TrackingStatus.FAILURE,
    "RefundApplied": TrackingStatus.FAILURE,
    "RefundRejected": TrackingStatus.UNKNOWN,
}
_REFUNDED = frozenset({"RefundPending", "RefundApplied"})
_SEP = "|"
_MAX_ID = 100
#: Quoted services a client remembers (a pooled client lives long, and most quotes are never bought); the
#: oldest are forgotten first, and buying one forgotten is :class:`RateChanged` (quoted again).
MAX_OFFERS = 10_000
_OFFER_WORDS = ("shippingserviceofferid", "offer", "expired")


@dataclass(frozen=True, slots=True)
class MerchantFulfillmentCredentials(SpApiCredentials):
    """The selling partner's LWA app credentials and refresh token, and its SP-API region."""

    region: str = "na"

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> MerchantFulfillmentCredentials:
        """From the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        grant = cls.grant(secrets)
        region = secrets.get("region") or "na"
        if region not in REGIONS:
            raise CarrierAuthRefused(f"unknown SP-API region {region!r}")
        return cls(*grant, region)


@dataclass(frozen=True, slots=True)
class MerchantFulfillmentPolicy(SpApiPolicy):
    """The shared carrier policy (a plain :class:`CarrierPolicy` gets 203 dpi), and the ZPL label's resolution
    (Amazon offers ``ZPL203`` and ``ZPL300``)."""

    dpi: int = 203
    #: Seconds after a purchase attempt was sent before Amazon's "order not shipped" is believed
    #: (:attr:`MerchantFulfillmentCarrier.settle_delay`): Amazon documents no bound on a ``createShipment`` it
    #: is still processing after the client stopped waiting (the read timeout), nor on the order's status
    #: catching up with it.
    settle_after: float = 300.0

    def label_format(self, label_format: LabelFormat) -> str:
        """Amazon's ``LabelFormat`` for the vault's."""
        if label_format is LabelFormat.ZPL:
            return "ZPL300" if self.dpi == 300 else "ZPL203"
        return label_format.value.upper()


@dataclass(frozen=True, slots=True)
class _Offer:
    """A quoted service: what ``createShipment`` must send again to buy it."""

    details: dict[str, Any] = field(repr=False)
    service_id: str
    offer_id: str = field(repr=False)
    formats: tuple[str, ...]


class MerchantFulfillmentCarrier(SpApiCarrier[MerchantFulfillmentCredentials, MerchantFulfillmentPolicy]):
    """One selling partner's Merchant Fulfillment (its LWA grant and region) as a
    :class:`~connectors.carriers.interfaces.Carrier`; the SP-API plumbing is :class:`SpApiCarrier`'s."""

    carrier = CARRIER

    def __init__(
        self,
        credentials: MerchantFulfillmentCredentials,
        *,
        api_base: str,
        lwa_url: str | None = None,
        policy: CarrierPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            credentials,
            MerchantFulfillmentPolicy.of(policy),
            base_url=region_base(api_base, credentials.region),
            lwa_url=lwa_url or lwa_url_for(api_base),
            transport=transport,
        )
        self._offers: dict[str, _Offer] = {}
        self._lock = threading.Lock()

    @property
    def settle_delay(self) -> timedelta:
        """How long after a purchase attempt was sent :meth:`find_purchase`'s ``None`` may be believed (the
        shipment flow keeps the shipment pending until then: ``connectors/carriers/shipments.py::_settled``)."""
        return timedelta(seconds=self.policy.settle_after)

    # --- the contract ---------------------------------------------------------------------------------------

    def quote(
        self,
        *,
        ship_from: ShipFrom,
        ship_to: LabelRecord,
        parcel: Parcel,
        reference: str = "",
        order: OrderContext | None = None,
    ) -> Quote:
        """The services Amazon offers for ``order`` (an Amazon order: anything else is :class:`NoMatchingRate`,
        before any call); ``ship_to`` is not sent (Amazon has it)."""
        if order is None or order.marketplace != "amazon" or not order.order_id:
            raise NoMatchingRate("Amazon Merchant Fulfillment ships Amazon orders only")
        details: dict[str, Any] = {
            "AmazonOrderId": order.order_id,
            "ItemList": self._items(order.order_id),
            "ShipFromAddress": _address_from(ship_from),
            "PackageDimensions": {
                "Length": cm(parcel.length_mm),
                "Width": cm(parcel.width_mm),
                "Height": cm(parcel.height_mm),
                "Unit": "centimeters",
            },
            "Weight": {"Value": parcel.weight_g, "Unit": "g"},
            "ShippingServiceOptions": {"DeliveryExperience": DELIVERY_EXPERIENCE, "CarrierWillPickUp": False},
        }
        body = {"ShipmentRequestDetails": details}
        result = self._payload(
            self._call("getEligibleShipmentServices", "POST", "/mfn/v0/eligibleShippingServices", json=body)
        )
        rates = []
        offers: dict[str, _Offer] = {}
        for raw in result.get("ShippingServiceList") or []:
            if not isinstance(raw, dict):
                continue
            offer = _Offer(
                details=details,
                service_id=required_str(raw, "ShippingServiceId"),
                offer_id=required_str(raw, "ShippingServiceOfferId"),
                formats=tuple(str(f) for f in raw.get("AvailableLabelFormats") or ()),
            )
            rate = _rate(raw, order.order_id, offer)
            offers[rate.rate_id] = offer
            rates.append(rate)
        with self._lock:
            self._offers.update(offers)
            while len(self._offers) > MAX_OFFERS:
                del self._offers[next(iter(self._offers))]
        return Quote(shipment_id=order.order_id[:_MAX_ID], rates=tuple(rates), fields_sent=())

    def purchase(self, rate: Rate, *, label_format: LabelFormat, reference: str) -> Purchase:
        """``createShipment`` of a rate this client quoted (else :class:`RateChanged`: quote again), sent once;
        ``reference`` has nowhere to go at Amazon (see the module docstring)."""
        with self._lock:
            offer = self._offers.get(rate.rate_id)
        if offer is None:
            raise RateChanged("the rate was not quoted by this client; quote again")
        wanted = self.policy.label_format(label_format)
        if offer.formats and wanted not in offer.formats:
            raise NoMatchingRate("the carrier offers no label in the format asked for with this service")
        options = {**offer.details["ShippingServiceOptions"], "LabelFormat": wanted}
        body = {
            "ShipmentRequestDetails": {**offer.details, "ShippingServiceOptions": options},
            "ShippingServiceId": offer.service_id,
            "ShippingServiceOfferId": offer.offer_id,
        }
        response = self._send_purchase("/mfn/v0/shipments", body, {})
        status = response.status_code
        if status >= 500:
            raise PurchaseUncertain(f"the carrier answered the purchase with HTTP {status}")
        if status == 400 and names(response, _OFFER_WORDS):
            raise RateChanged("the offer expired or is no longer offered")
        result = self._payload(self._json(response, "createShipment"))
        try:
            bought = _purchase(result, rate, label_format)
        except CarrierBadResponse:  # Amazon answered 200: a label exists that this answer can't name
            raise PurchaseUncertain("the carrier's answer to the purchase names no usable shipment") from None
        with self._lock:
            self._offers.pop(rate.rate_id, None)
        return bought

    def find_purchase(self, *, rate: Rate, reference: str) -> Purchase | None:
        """``None`` when Amazon shows the rate's order not shipped (its label was not bought, once
        :attr:`settle_delay` has passed since the purchase was sent); :class:`PurchaseUncertain` when it is
        shipped or Amazon can't say: Merchant Fulfillment has no look-up of the shipment a lost answer made, so
        it is never bought again blindly (see the module docstring)."""
        order_id = _order_of(rate)
        try:
            order = self._payload(self._call("getOrderV0", "GET", f"{ORDERS_V0}/{order_id}"))
        except CarrierError as exc:
            raise PurchaseUncertain(f"the carrier could not say whether the label was bought ({exc.code})") from None
        if order.get("OrderStatus") == "Shipped":
            raise PurchaseUncertain("Amazon shows the order shipped; the lost purchase can't be looked up")
        return None

    def label(self, purchase: Purchase) -> LabelDocument:
        shipment = self._shipment(purchase)
        if shipment.get("Status") in _REFUNDED:  # "If the shipment is canceled, an empty label is returned."
            raise CarrierBadResponse("the shipment is cancelled at the carrier; it has no label")
        contents = ((shipment.get("Label") or {}).get("FileContents") or {}).get("Contents")
        return LabelDocument(purchase.label_format, _unpack(contents))

    def void(self, purchase: Purchase) -> VoidStatus:
        try:
            result = self._payload(
                self._call("cancelShipment", "DELETE", f"/mfn/v0/shipments/{_shipment_id(purchase)}")
            )
        except CarrierBadResponse as exc:
            raise VoidRefused("the carrier refused to cancel the shipment") from exc
        return VoidStatus.VOIDED if result.get("Status") == "RefundApplied" else VoidStatus.PENDING

    def tracking(self, purchase: Purchase) -> Tracking:
        shipment = self._shipment(purchase)
        status = _STATUS.get(str(shipment.get("Status")), TrackingStatus.UNKNOWN)
        updated = timestamp(shipment.get("LastUpdatedDate")) or timestamp(shipment.get("CreatedDate"))
        return Tracking(str(shipment.get("TrackingId") or purchase.tracking_number), status, updated)

    # --- Amazon's calls -------------------------------------------------------------------------------------

    def _items(self, order_id: str) -> list[dict[str, Any]]:
        """The order's items and quantities still to ship; all of them once none is left (a voided label
        bought again: Amazon counts the cancelled one's items shipped)."""
        path = f"{ORDERS_V0}/{order_id}/orderItems"
        ordered: list[tuple[str, int, int]] = []
        for item in order_items(lambda params: self._payload(self._call("getOrderItems", "GET", path, params=params))):
            if item.get("OrderItemId"):
                quantity = int(item.get("QuantityOrdered") or 0)
                ordered.append((str(item["OrderItemId"]), quantity, quantity - int(item.get("QuantityShipped") or 0)))
        left = [{"OrderItemId": i, "Quantity": n} for i, _, n in ordered if n > 0]
        items = left or [{"OrderItemId": i, "Quantity": n} for i, n, _ in ordered if n > 0]
        if not items:
            raise NoMatchingRate("the Amazon order has no item to ship")
        return items

    def _shipment(self, purchase: Purchase) -> dict[str, Any]:
        return self._payload(self._call("getShipment", "GET", f"/mfn/v0/shipments/{_shipment_id(purchase)}"))


def _rate(raw: dict[str, Any], order_id: str, offer: _Offer) -> Rate:
    charge = raw.get("Rate") or {}
    try:
        amount = Decimal(str(charge.get("Amount")))
    except InvalidOperation:
        raise CarrierBadResponse("the carrier quoted a service without a price") from None
    if not amount.is_finite():
        raise CarrierBadResponse("the carrier quoted a service without a price")
    digest = hashlib.sha256(offer.offer_id.encode()).hexdigest()[:12]
    rate_id = _SEP.join((offer.service_id, order_id, digest))
    if len(rate_id) > _MAX_ID:
        raise CarrierBadResponse("the carrier's service and order ids are longer than the vault keeps")
    return Rate(
        rate_id=rate_id,
        provider=required_str(raw, "CarrierName"),
        service=offer.service_id,
        amount=amount,
        currency=str(charge.get("CurrencyCode") or ""),
        estimated_days=_days(raw.get("LatestEstimatedDeliveryDate") or raw.get("EarliestEstimatedDeliveryDate")),
    )


def _days(value: object) -> int | None:
    end = timestamp(value)
    if end is None:
        return None
    return max(0, math.ceil((end - datetime.now(UTC)).total_seconds() / 86400))


def _order_of(rate: Rate) -> str:
    parts = rate.rate_id.split(_SEP)
    if len(parts) != 3 or not all(parts):
        raise PurchaseUncertain("the rate is not a Merchant Fulfillment quote; the carrier can't be asked")
    return parts[1]


def _purchase(result: dict[str, Any], rate: Rate, label_format: LabelFormat) -> Purchase:
    shipment_id = required_str(result, "ShipmentId")
    tracking = required_str(result, "TrackingId")
    if len(shipment_id) > _MAX_ID or len(tracking) > _MAX_ID:
        raise CarrierBadResponse("the carrier's shipment or tracking id is longer than the vault keeps")
    return Purchase(
        purchase_id=shipment_id,
        tracking_number=tracking,
        rate=rate,
        label_format=label_format,
        bought_at=timestamp(result.get("CreatedDate")) or datetime.now(UTC),
    )


def _shipment_id(purchase: Purchase) -> str:
    shipment_id = purchase.purchase_id
    if not shipment_id or _SEP in shipment_id or "/" in shipment_id:
        raise CarrierBadResponse("the purchase is not a Merchant Fulfillment shipment")
    return shipment_id


def _unpack(contents: object) -> bytes:
    """A label's ``Contents``: Base64 of the GZip-compressed document."""
    try:
        packed = base64.b64decode(str(contents or ""), validate=True)
        content = gzip.decompress(packed)
    except (binascii.Error, ValueError, OSError, EOFError):
        raise CarrierBadResponse("the carrier's label document is not Base64 GZip") from None
    if not content:
        raise CarrierBadResponse("the carrier's label document is empty")
    return content


def _address_from(origin: ShipFrom) -> dict[str, Any]:
    """The seller's ship-from as Merchant Fulfillment's ``Address``: it requires ``Email`` and ``Phone``, sent
    empty when the account has none (Amazon's own validation decides)."""
    out = {
        "Name": origin.name,
        "AddressLine1": origin.street1,
        "AddressLine2": origin.street2,
        "City": origin.city,
        "StateOrProvinceCode": origin.state,
        "PostalCode": origin.postal_code,
        "CountryCode": origin.country_code,
    }
    return {k: v for k, v in out.items() if v} | {"Email": origin.email or "", "Phone": origin.phone or ""}
