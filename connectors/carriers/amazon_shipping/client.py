"""The Amazon Shipping v2 client: ``getRates`` → ``purchaseShipment`` → ``getShipmentDocuments`` →
``cancelShipment``, and ``getTracking``, over the SP-API (the document in ``connectors/platform_specs/amazon/``).

Authentication is the selling partner's Login with Amazon refresh token, as for every SP-API carrier
(:mod:`connectors.carriers.spapi`: the access token in the ``x-amz-access-token`` header, calls retried, a
purchase never); ``x-amzn-shipping-business-id`` names the Amazon Shipping business (``AmazonShipping_US``,
``AmazonShipping_UK``, ...).

The ship-to goes out at most once, in ``getRates``, and only for an order Amazon doesn't have: an Amazon
order is quoted as ``channelDetails.channelType = AMAZON`` with its order id and no ``shipTo`` (Amazon's model
makes it optional there and takes the order's own address), so the quote's ``fields_sent`` is empty; any other
order is ``EXTERNAL`` and carries the ship-to, as Amazon requires. Where Amazon answers that it doesn't know
the order (a business outside the order's marketplace), the client falls back to sending the ship-to in a
second ``getRates`` and ``fields_sent`` says so; ``AmazonShippingPolicy.ship_to_from_order = False`` sends it
from the start (for a seller whose business never has the orders). Amazon answers with a ``requestToken``
(the quote, valid for a limited time) and rates; a purchase names both, so the vault's rate id is
``<rateId>|<requestToken>``.
Amazon keeps no client reference a lost purchase could be looked up by, so :meth:`purchase` sends the
vault's ``reference`` as ``x-amzn-IdempotencyKey``, which Amazon uses "to recognize subsequent retries of the
same request", and :meth:`find_purchase` is that retry: the same key, ``requestToken`` and ``rateId``. If the
first request was bought, Amazon answers with that shipment; if it never reached Amazon, the retry is the
one purchase. Either way one label exists for the reference. A purchase is paced at the policy's
``purchase_rate`` and sent again only after a 429 (Amazon refused it whole: nothing bought). When the retry
can't settle it (the quote expired, Amazon refuses or is down) :meth:`find_purchase` raises
:class:`PurchaseUncertain` and never answers "not bought": the shipment stays pending (never bought again),
and the seller sees it as unsettled (``docs/carriers.md``).

With ``AmazonShippingPolicy.one_click`` an Amazon order quoted without ``shipTo`` is bought with
``oneClickShipment`` instead: the chosen rate's ``serviceId`` with the quote's own channel, packages and
ship-from, in one call no expired ``requestToken`` can refuse (its rate id is ``1click|<requestToken>|
<serviceId>``, and what Amazon charged becomes the purchase's rate). ``getRates`` still quotes it, since the
vault chooses among priced rates and records the price before it buys. The contract's ``purchase`` gets only
the rate, so the body is kept by this client between its quote and its purchase; a client that didn't quote
it answers :class:`RateChanged` (quote again, nothing bought). Amazon's model takes no idempotency key for
``oneClickShipment``, so a lost answer can't be settled by a retry: :meth:`find_purchase` never sends one
(it could buy a second label) and raises :class:`PurchaseUncertain`, and the shipment stays pending for the
seller, as an unsettled ``purchaseShipment`` does. That is why it is off by default.

URLs carry only ids (shipment, tracking, carrier); nothing here logs a body; error messages name the
operation, the status and Amazon's error code, never Amazon's text (it can quote the address).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.carriers.fields import required_str, timestamp
from connectors.carriers.http import CarrierPolicy
from connectors.carriers.interfaces import (
    AddressRejected,
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierError,
    LabelDocument,
    LabelFormat,
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
from connectors.carriers.spapi import API_HOSTS as API_HOSTS
from connectors.carriers.spapi import LIVE_HOSTS as LIVE_HOSTS
from connectors.carriers.spapi import (
    SpApiCarrier,
    SpApiCredentials,
    SpApiPolicy,
    cm,
    error_code,
    lwa_url_for,
    names,
)
from connectors.carriers.spapi import region_base as spapi_region_base
from vault.records import LabelRecord

CARRIER = "amazonshipping"

#: The Amazon Shipping businesses, their SP-API region and the currency their parcels are valued in.
BUSINESSES: dict[str, tuple[str, str]] = {
    "AmazonShipping_US": ("na", "USD"),
    "AmazonShipping_UK": ("eu", "GBP"),
    "AmazonShipping_IT": ("eu", "EUR"),
    "AmazonShipping_ES": ("eu", "EUR"),
    "AmazonShipping_FR": ("eu", "EUR"),
    "AmazonShipping_IN": ("eu", "INR"),
    "AmazonShipping_UAE": ("eu", "AED"),
    "AmazonShipping_SA": ("eu", "SAR"),
    "AmazonShipping_EG": ("eu", "EGP"),
    "AmazonShipping_JP": ("fe", "JPY"),
}
#: Amazon's ``DocumentFormat`` per format the vault offers.
DOCUMENT_FORMATS = {LabelFormat.PDF: "PDF", LabelFormat.ZPL: "ZPL", LabelFormat.PNG: "PNG"}
_FORMATS = {v: k for k, v in DOCUMENT_FORMATS.items()}
_TRACKING = {
    "PreTransit": TrackingStatus.PRE_TRANSIT,
    "InTransit": TrackingStatus.IN_TRANSIT,
    "OutForDelivery": TrackingStatus.IN_TRANSIT,
    "DeliveryAttempted": TrackingStatus.IN_TRANSIT,
    "AwaitingCustomerPickup": TrackingStatus.IN_TRANSIT,
    "Delivered": TrackingStatus.DELIVERED,
    "Lost": TrackingStatus.FAILURE,
    "Rejected": TrackingStatus.RETURNED,
    "Undeliverable": TrackingStatus.RETURNED,
    "PickupCancelled": TrackingStatus.FAILURE,
}
#: The vault's rate id is ``rateId|requestToken``; the shipment row keeps 100 characters of it.
_SEP = "|"
_MAX_ID = 100
#: A rate bought with ``oneClickShipment`` is ``1click|requestToken|serviceId``.
_ONE_CLICK = "1click|"


@dataclass(frozen=True, slots=True)
class AmazonShippingCredentials(SpApiCredentials):
    """The selling partner's LWA app credentials and refresh token, and its Amazon Shipping business."""

    business_id: str = "AmazonShipping_US"

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> AmazonShippingCredentials:
        """From the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        grant = cls.grant(secrets)
        business = secrets.get("business_id") or "AmazonShipping_US"
        if business not in BUSINESSES:
            raise CarrierAuthRefused(f"unknown Amazon Shipping business {business!r}")
        return cls(*grant, business)

    @property
    def currency(self) -> str:
        """The currency the business values parcels in."""
        return BUSINESSES[self.business_id][1]


@dataclass(frozen=True, slots=True)
class AmazonShippingPolicy(SpApiPolicy):
    """The shared carrier policy (timeouts, retries of the calls safe to repeat, purchase pacing; a plain
    :class:`CarrierPolicy` gets the default print options), the label's print options, and how an Amazon order
    is quoted and bought."""

    #: The label's resolution (Amazon offers 203 and 300 dpi for ZPL and PNG) and size (4 × 6 in).
    dpi: int = 203
    label_width_in: float = 4.0
    label_length_in: float = 6.0
    #: An Amazon order is quoted without ``shipTo``: Amazon takes the order's address, so none of the buyer's
    #: goes out. Off sends the ship-to for every order, as for an external one.
    ship_to_from_order: bool = True
    #: An Amazon order quoted without ``shipTo`` is bought with ``oneClickShipment`` (the rate's service, in
    #: one call that no quote's expiry can refuse) instead of ``purchaseShipment``. Off by default: Amazon's
    #: model takes no idempotency key for it, so a lost answer can't be settled by a retry and stays
    #: unsettled for the seller (see :meth:`AmazonShippingCarrier.find_purchase`).
    one_click: bool = False


def region_base(api_base: str, business_id: str) -> str:
    """The SP-API host of the business's region: a live or sandbox Amazon host is moved to the business's
    region (Amazon Shipping US lives in North America, JP in the Far East, the rest in Europe); any other base
    (an operator-allowed fake or proxy) is kept as it is."""
    return spapi_region_base(api_base, BUSINESSES.get(business_id, ("na", ""))[0])


class AmazonShippingCarrier(SpApiCarrier[AmazonShippingCredentials, AmazonShippingPolicy]):
    """One Amazon Shipping account (a selling partner's LWA grant and business) as a
    :class:`~connectors.carriers.interfaces.Carrier`; the SP-API plumbing is :class:`SpApiCarrier`'s, with the
    business header and ``getRates``' own refusals (:meth:`_refusal`)."""

    carrier = CARRIER

    def __init__(
        self,
        credentials: AmazonShippingCredentials,
        *,
        api_base: str,
        lwa_url: str | None = None,
        policy: CarrierPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            credentials,
            AmazonShippingPolicy.of(policy),
            base_url=region_base(api_base, credentials.business_id),
            lwa_url=lwa_url or lwa_url_for(api_base),
            transport=transport,
            headers={"x-amzn-shipping-business-id": credentials.business_id},
        )
        #: The quotes' bodies (no ship-to in them) a one-click rate is bought with, by request token.
        self._one_click: dict[str, dict[str, Any]] = {}

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
        to, fields = _address_to(ship_to)
        currency = self.credentials.currency
        channel = _channel(order)
        from_order = channel["channelType"] == "AMAZON" and self.policy.ship_to_from_order
        body: dict[str, Any] = {
            "shipFrom": _address_from(ship_from),
            "packages": [
                {
                    "dimensions": {
                        "length": cm(parcel.length_mm),
                        "width": cm(parcel.width_mm),
                        "height": cm(parcel.height_mm),
                        "unit": "CENTIMETER",
                    },
                    "weight": {"value": parcel.weight_g, "unit": "GRAM"},
                    # Required by the API; the vault declares no value (no insurance) and one item valued at 1,
                    # as Amazon's FAQ recommends when the seller gives none.
                    "insuredValue": {"value": 0, "unit": currency},
                    "items": [{"quantity": 1, "itemValue": {"value": 1, "unit": currency}}],
                    "packageClientReferenceId": "1",
                }
            ],
            "channelDetails": channel,
        }
        sent: tuple[str, ...] = ()
        result: dict[str, Any] | None = None
        try:
            if from_order:
                with contextlib.suppress(_OrderUnknown):  # Amazon hasn't the order: the ship-to goes, as for others
                    result = self._payload(self._call("getRates", "POST", "/shipping/v2/shipments/rates", json=body))
            if result is None:
                body["shipTo"], sent = to, fields
                result = self._payload(self._call("getRates", "POST", "/shipping/v2/shipments/rates", json=body))
        except CarrierError as exc:
            exc.fields_sent = sent  # what went out, so the failed share is audited as it was
            raise
        token = required_str(result, "requestToken")
        one_click = self.policy.one_click and "shipTo" not in body
        if one_click:
            self._one_click[token] = body
        rates = tuple(_rate(r, token, one_click=one_click) for r in result.get("rates") or [] if isinstance(r, dict))
        return Quote(shipment_id=token[:_MAX_ID], rates=rates, fields_sent=sent)

    def purchase(self, rate: Rate, *, label_format: LabelFormat, reference: str) -> Purchase:
        if rate.rate_id.startswith(_ONE_CLICK):
            return self._purchase_one_click(rate, label_format)
        rate_id, token = _split_rate(rate)
        body = self._purchase_body(rate_id, token, label_format)
        headers = {"x-amzn-IdempotencyKey": reference}
        response = self._send_purchase("/shipping/v2/shipments", body, headers)
        status = response.status_code
        if status >= 500:
            raise PurchaseUncertain(f"the carrier answered the purchase with HTTP {status}")
        if status == 400 and names(response, _QUOTE_WORDS):
            raise RateChanged("the quote expired or its rate is no longer offered")
        return self._bought(rate, label_format, self._payload(self._json(response, "purchaseShipment")))

    def _purchase_one_click(self, rate: Rate, label_format: LabelFormat) -> Purchase:
        """``oneClickShipment`` for the rate's service, with the quote's body (channel, packages, ship-from;
        no ship-to: Amazon has the order's). What Amazon charged is the purchase's rate."""
        token = rate.rate_id[len(_ONE_CLICK) :].partition(_SEP)[0]
        quoted = self._one_click.get(token)
        if quoted is None:  # quoted by another client (a restart): nothing to buy with, quote again
            raise RateChanged("the one-click quote is not this client's; quote again")
        body = {
            "shipFrom": quoted["shipFrom"],
            "packages": quoted["packages"],
            "channelDetails": quoted["channelDetails"],
            "serviceSelection": {"serviceId": [rate.service]},
            "labelSpecifications": self._document_spec(label_format),
        }
        response = self._send_purchase("/shipping/v2/oneClickShipment", body, {})
        status = response.status_code
        if status >= 500:
            raise PurchaseUncertain(f"the carrier answered the purchase with HTTP {status}")
        if status == 400 and names(response, _ADDRESS_WORDS):
            code = error_code(response)
            raise AddressRejected(f"the carrier refused the ship-to ({code})", reasons=(code,))
        if status == 400 and names(response, ("serviceselection", "service")):
            raise RateChanged("the carrier no longer offers the service for the shipment")
        if status >= 400:  # refused (nothing bought): the error as for any other call
            self._json(response, "oneClickShipment")
        try:
            # Amazon bought the label: an answer the client can't read is uncertain, never "nothing bought",
            # since no retry could find it again.
            result = self._payload(self._json(response, "oneClickShipment"))
            charge = result.get("totalCharge") or {}
            try:
                amount = Decimal(str(charge.get("value")))
            except InvalidOperation:
                raise CarrierBadResponse("the carrier's purchase has no price") from None
            service = result.get("service") or {}
            if not amount.is_finite() or service.get("id") != rate.service:
                raise CarrierBadResponse("the carrier's purchase lacks a usable price or service")
            charged = dataclasses.replace(rate, amount=amount, currency=str(charge.get("unit") or rate.currency))
            bought = self._bought(charged, label_format, result)
        except CarrierBadResponse:
            raise PurchaseUncertain("the carrier's answer to the one-click purchase could not be read") from None
        self._one_click.pop(token, None)
        return bought

    def find_purchase(self, *, rate: Rate, reference: str) -> Purchase | None:
        """Amazon's idempotent retry of the purchase (see the module docstring): the label bought under
        ``reference``; :class:`PurchaseUncertain` when Amazon can't say. Never ``None``: Amazon has no lookup
        that could prove a label was not bought. A one-click purchase has no idempotency key to retry under
        (Amazon's model takes none), so a retry could buy a second label: it is never retried, and stays
        uncertain for the seller to settle in Seller Central."""
        if rate.rate_id.startswith(_ONE_CLICK):
            raise PurchaseUncertain("the carrier keeps no key a lost one-click purchase could be settled by")
        try:
            return self.purchase(rate, label_format=LabelFormat.PDF, reference=reference)
        except PurchaseUncertain:
            raise
        except CarrierError as exc:
            raise PurchaseUncertain(f"the carrier could not settle the lost purchase ({exc.code})") from None

    def label(self, purchase: Purchase) -> LabelDocument:
        shipment_id, package = _split_purchase(purchase)
        params: dict[str, str | int] = {
            "packageClientReferenceId": package,
            "format": DOCUMENT_FORMATS[purchase.label_format],
        }
        if purchase.label_format is not LabelFormat.PDF:
            params["dpi"] = self.policy.dpi
        result = self._payload(
            self._call("getShipmentDocuments", "GET", f"/shipping/v2/shipments/{shipment_id}/documents", params=params)
        )
        detail = result.get("packageDocumentDetail") or {}
        for document in detail.get("packageDocuments") or []:
            if isinstance(document, dict) and document.get("type") == "LABEL":
                return LabelDocument(purchase.label_format, _contents(document))
        raise CarrierBadResponse("the carrier gave no label document for the shipment")

    def void(self, purchase: Purchase) -> VoidStatus:
        shipment_id, _ = _split_purchase(purchase)
        try:
            self._call("cancelShipment", "PUT", f"/shipping/v2/shipments/{shipment_id}/cancel")
        except CarrierBadResponse as exc:
            raise VoidRefused("the carrier refused to cancel the shipment") from exc
        return VoidStatus.VOIDED

    def tracking(self, purchase: Purchase) -> Tracking:
        params = {"trackingId": purchase.tracking_number, "carrierId": purchase.rate.provider}
        result = self._payload(self._call("getTracking", "GET", "/shipping/v2/tracking", params=params))
        summary = result.get("summary") or {}
        events = [e for e in result.get("eventHistory") or [] if isinstance(e, dict)]
        times = [t for t in (timestamp(e.get("eventTime")) for e in events) if t is not None]
        status = _TRACKING.get(str(summary.get("status")), TrackingStatus.UNKNOWN)
        return Tracking(purchase.tracking_number, status, max(times) if times else None)

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _refusal(self, operation: str, response: httpx.Response) -> None:
        """``getRates``' 400s that name the order (Amazon hasn't it: :class:`_OrderUnknown`) or the address
        (:class:`AddressRejected`)."""
        if response.status_code != 400 or operation != "getRates":
            return
        if names(response, _ORDER_WORDS):
            raise _OrderUnknown(f"the carrier does not know the Amazon order ({error_code(response)})")
        if names(response, _ADDRESS_WORDS):
            code = error_code(response)
            raise AddressRejected(f"the carrier refused the ship-to ({code})", reasons=(code,))

    def _purchase_body(self, rate_id: str, token: str, label_format: LabelFormat) -> dict[str, Any]:
        spec = self._document_spec(label_format)
        return {"requestToken": token, "rateId": rate_id, "requestedDocumentSpecification": spec}

    def _document_spec(self, label_format: LabelFormat) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "format": DOCUMENT_FORMATS[label_format],
            "size": {"width": self.policy.label_width_in, "length": self.policy.label_length_in, "unit": "INCH"},
            "needFileJoining": False,
            "requestedDocumentTypes": ["LABEL"],
        }
        if label_format is not LabelFormat.PDF:
            spec["dpi"] = self.policy.dpi
        return spec

    def _bought(self, rate: Rate, label_format: LabelFormat, result: dict[str, Any]) -> Purchase:
        shipment_id = required_str(result, "shipmentId")
        details = [d for d in result.get("packageDocumentDetails") or [] if isinstance(d, dict)]
        if not details:
            raise CarrierBadResponse("the carrier's purchase names no package")
        package = required_str(details[0], "packageClientReferenceId")
        tracking = details[0].get("trackingId")
        purchase_id = f"{shipment_id}{_SEP}{package}"
        if len(purchase_id) > _MAX_ID or not isinstance(tracking, str) or not tracking:
            raise CarrierBadResponse("the carrier's purchase lacks a usable shipment id or tracking id")
        return Purchase(
            purchase_id=purchase_id,
            tracking_number=tracking,
            rate=rate,
            label_format=label_format,
            bought_at=datetime.now(UTC),
        )


def _channel(order: OrderContext | None) -> dict[str, Any]:
    """``AMAZON`` with the order id for an Amazon order (Amazon requires it), ``EXTERNAL`` otherwise."""
    if order is not None and order.marketplace == "amazon":
        return {"channelType": "AMAZON", "amazonOrderDetails": {"orderId": order.order_id}}
    return {"channelType": "EXTERNAL"}


#: What each field Amazon takes is filled from, in the label record's words (for the audit's ``fields_sent``).
_TO_FIELDS = (
    ("name", "name"),
    ("companyName", "company"),
    ("addressLine1", "address_line1"),
    ("addressLine2", "address_line2"),
    ("addressLine3", "address_line3"),
    ("city", "city"),
    ("stateOrRegion", "state_or_region"),
    ("postalCode", "postal_code"),
    ("countryCode", "country_code"),
    ("phoneNumber", "phone"),
)


def _address_to(record: LabelRecord) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Amazon's ``shipTo`` and the label record's fields it was made of. Amazon requires ``stateOrRegion``
    and ``postalCode``; where the record has none (a country without states or postcodes) an empty string
    goes, so Amazon's own validation decides."""
    out: dict[str, Any] = {}
    sent: list[str] = []
    for theirs, ours in _TO_FIELDS:
        value = getattr(record, ours)
        if value:
            out[theirs] = value
            sent.append(ours)
    for required in ("stateOrRegion", "postalCode"):
        out.setdefault(required, "")
    return out, tuple(sent)


def _rate(raw: dict[str, Any], token: str, *, one_click: bool = False) -> Rate:
    charge = raw.get("totalCharge") or {}
    try:
        amount = Decimal(str(charge.get("value")))
    except InvalidOperation:
        raise CarrierBadResponse("the carrier quoted a rate without a price") from None
    service = required_str(raw, "serviceId")
    rate_id = f"{_ONE_CLICK}{token}{_SEP}{service}" if one_click else f"{required_str(raw, 'rateId')}{_SEP}{token}"
    if len(rate_id) > _MAX_ID:
        raise CarrierBadResponse("the carrier's rate and quote ids are longer than the vault keeps")
    return Rate(
        rate_id=rate_id,
        provider=required_str(raw, "carrierId"),
        service=service,
        amount=amount,
        currency=str(charge.get("unit") or ""),
        estimated_days=_days(raw.get("promise")),
    )


def _days(promise: object) -> int | None:
    """Whole days from now to the end of the promised delivery window."""
    if not isinstance(promise, dict):
        return None
    end = timestamp((promise.get("deliveryWindow") or {}).get("end"))
    if end is None:
        return None
    return max(0, math.ceil((end - datetime.now(UTC)).total_seconds() / 86400))


def _split_rate(rate: Rate) -> tuple[str, str]:
    rate_id, sep, token = rate.rate_id.partition(_SEP)
    if not sep or not rate_id or not token:
        raise RateChanged("the rate is not an Amazon Shipping quote; quote again")
    return rate_id, token


def _split_purchase(purchase: Purchase) -> tuple[str, str]:
    shipment_id, sep, package = purchase.purchase_id.partition(_SEP)
    if not sep or not shipment_id or not package:
        raise CarrierBadResponse("the purchase is not an Amazon Shipping shipment")
    return shipment_id, package


def _contents(document: dict[str, Any]) -> bytes:
    try:
        content = base64.b64decode(str(document.get("contents") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise CarrierBadResponse("the carrier's label document is not Base64") from None
    if not content:
        raise CarrierBadResponse("the carrier's label document is empty")
    return content


class _OrderUnknown(CarrierBadResponse):
    """Amazon refused an ``AMAZON`` quote for an order it doesn't have (so it has no address to take)."""


_ORDER_WORDS = ("orderid", "order id")
_QUOTE_WORDS = ("requesttoken", "request token", "rateid", "rate id")
_ADDRESS_WORDS = ("address", "shipto", "ship to", "postalcode", "postal code", "stateorregion")


def _address_from(origin: ShipFrom) -> dict[str, Any]:
    out = {
        "name": origin.name,
        "companyName": origin.company,
        "addressLine1": origin.street1,
        "addressLine2": origin.street2,
        "city": origin.city,
        "stateOrRegion": origin.state or origin.city,
        "postalCode": origin.postal_code,
        "countryCode": origin.country_code,
        "phoneNumber": origin.phone,
        "email": origin.email,
    }
    return {k: v for k, v in out.items() if v}
