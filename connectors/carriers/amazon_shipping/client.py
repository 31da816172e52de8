"""The Amazon Shipping v2 client: ``getRates`` → ``purchaseShipment`` → ``getShipmentDocuments`` →
``cancelShipment``, and ``getTracking``, over the SP-API (the document in ``connectors/platform_specs/amazon/``).

Authentication is the selling partner's Login with Amazon refresh token: the access token comes from the
Amazon connector's public :meth:`connectors.amazon.SpApiClient.access_token` (cached, renewed when stale),
and travels only in the ``x-amz-access-token`` header; ``x-amzn-shipping-business-id`` names the Amazon
Shipping business (``AmazonShipping_US``, ``AmazonShipping_UK``, ...). The SP-API client's own ``call`` is
not used: it retries 5xx, and a purchase is never retried; nor can it send the business header.

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
import functools
import hashlib
import math
import random
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.amazon import LwaCredentials, RetryPolicy, SpApiClient, shared_http, shared_limiter
from connectors.amazon.endpoints import LWA_URL, REGIONS, SANDBOX_REGIONS
from connectors.carriers.fields import required_str, timestamp
from connectors.carriers.http import CarrierPolicy
from connectors.carriers.interfaces import (
    AddressRejected,
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierError,
    CarrierUnavailable,
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
from connectors.interfaces import AuthRefused, BadResponse, ConnectorError
from connectors.ratelimit import TokenBucket
from vault.records import LabelRecord

CARRIER = "amazonshipping"
USER_AGENT = "labelvault/0.1 (Language=Python)"

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
#: SP-API's live hosts: the carrier registry's own hosts for an account (a sandbox host is an operator override).
LIVE_HOSTS: frozenset[str] = frozenset(REGIONS.values())
#: Every SP-API host, live and sandbox: Amazon's, so its LWA URL is Amazon's.
API_HOSTS: frozenset[str] = frozenset({*REGIONS.values(), *SANDBOX_REGIONS.values()})

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
class AmazonShippingCredentials:
    """The selling partner's LWA app credentials and refresh token, and its Amazon Shipping business."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    business_id: str = "AmazonShipping_US"

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> AmazonShippingCredentials:
        """From the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not secrets.get(k)]
        if missing:
            raise CarrierAuthRefused(f"stored credentials lack {', '.join(missing)}")
        business = secrets.get("business_id") or "AmazonShipping_US"
        if business not in BUSINESSES:
            raise CarrierAuthRefused(f"unknown Amazon Shipping business {business!r}")
        return cls(secrets["client_id"], secrets["client_secret"], secrets["refresh_token"], business)

    @property
    def currency(self) -> str:
        """The currency the business values parcels in."""
        return BUSINESSES[self.business_id][1]


@dataclass(frozen=True, slots=True)
class AmazonShippingPolicy(CarrierPolicy):
    """The shared carrier policy (timeouts, retries of the calls safe to repeat, purchase pacing), the
    label's print options, and how an Amazon order is quoted and bought."""

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

    @classmethod
    def of(cls, policy: CarrierPolicy | None) -> AmazonShippingPolicy:
        """``policy`` as Amazon's: a plain :class:`CarrierPolicy` gets the default print options."""
        if isinstance(policy, AmazonShippingPolicy):
            return policy
        if policy is None:
            return cls()
        return cls(**{f.name: getattr(policy, f.name) for f in dataclasses.fields(CarrierPolicy)})

    def retry(self) -> RetryPolicy:
        """The same bounds for the LWA token exchange."""
        return RetryPolicy(
            attempts=self.attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client (loading the CA bundle costs more than a purchase's own work)."""
    return httpx.create_ssl_context()


def region_base(api_base: str, business_id: str) -> str:
    """The SP-API host of the business's region: a live or sandbox Amazon host is moved to the business's
    region (Amazon Shipping US lives in North America, JP in the Far East, the rest in Europe); any other base
    (an operator-allowed fake or proxy) is kept as it is."""
    base = api_base.rstrip("/")
    region = BUSINESSES.get(business_id, ("na", ""))[0]
    if base in SANDBOX_REGIONS.values():
        return SANDBOX_REGIONS[region]
    if base in REGIONS.values():
        return REGIONS[region]
    return base


def lwa_url_for(api_base: str) -> str:
    """Amazon's LWA token URL for Amazon's hosts; for another (operator-allowed) origin, its own
    ``/auth/o2/token`` (the fake serves both, as one origin)."""
    base = api_base.rstrip("/")
    return LWA_URL if base in API_HOSTS else f"{base}/auth/o2/token"


class AmazonShippingCarrier:
    """One Amazon Shipping account (a selling partner's LWA grant and business) as a
    :class:`~connectors.carriers.interfaces.Carrier`."""

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
        self.policy = AmazonShippingPolicy.of(policy)
        self.credentials = credentials
        self._base = region_base(api_base, credentials.business_id)
        timeout = httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout)
        self._http = httpx.Client(
            base_url=self._base,
            timeout=timeout,
            verify=_tls(),
            transport=transport,
            follow_redirects=False,
            headers={
                "User-Agent": USER_AGENT,
                "x-amzn-shipping-business-id": credentials.business_id,
                "Accept": "application/json",
            },
        )
        self._transport = transport
        rate = self.policy.purchase_rate
        self._purchases = TokenBucket(rate, self.policy.purchase_burst) if rate else None
        self._tokens = self._new_tokens(lwa_url or lwa_url_for(api_base))
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
                        "length": _cm(parcel.length_mm),
                        "width": _cm(parcel.width_mm),
                        "height": _cm(parcel.height_mm),
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
        if status == 400 and _names(response, _QUOTE_WORDS):
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
        if status == 400 and _names(response, _ADDRESS_WORDS):
            code = _error_code(response)
            raise AddressRejected(f"the carrier refused the ship-to ({code})", reasons=(code,))
        if status == 400 and _names(response, ("serviceselection", "service")):
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

    def _send_purchase(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        """One purchase request, sent again only after a 429 (Amazon refused it whole: nothing bought)."""
        attempt = 0
        while True:
            if self._purchases is not None:
                self._purchases.acquire()
            try:
                response = self._http.post(path, json=body, headers=self._auth() | headers)
            except httpx.ConnectError:
                raise CarrierUnavailable("the carrier could not be reached to buy the label") from None
            except httpx.HTTPError:  # sent, and the answer lost: the label may be bought
                raise PurchaseUncertain("the carrier's answer to the purchase was lost") from None
            status = response.status_code
            if status != 429:
                break
            # Throttled: Amazon refused the request whole (nothing bought), so it is sent again, paced.
            attempt += 1
            if attempt >= self.policy.attempts:
                raise CarrierUnavailable("the carrier kept throttling the purchase (nothing was bought)")
            if self._purchases is not None:
                self._purchases.drain()  # Amazon's bucket is empty, whatever ours thought
            self._backoff(attempt, response)
        return response

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

    def close(self) -> None:
        self._http.close()
        if self._transport is not None:  # a shared token holder outlives its clients
            self._tokens.close()

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        try:
            return {"x-amz-access-token": self._tokens.access_token()}
        except AuthRefused:
            raise CarrierAuthRefused("Login with Amazon refused the account's refresh token") from None
        except BadResponse:
            raise CarrierBadResponse("Login with Amazon answered without an access token") from None
        except ConnectorError:
            raise CarrierUnavailable("Login with Amazon could not be reached") from None

    def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A call that buys nothing, with bounded retries of 429, 5xx and network errors."""
        renewed = False
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, headers=self._auth(), **kwargs)
            except httpx.HTTPError:
                attempt += 1
                if attempt >= self.policy.attempts:
                    raise CarrierUnavailable(f"the carrier could not be reached ({operation})") from None
                self._backoff(attempt, None)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                attempt += 1
                if attempt >= self.policy.attempts:
                    raise CarrierUnavailable(f"the carrier kept answering HTTP {status} ({operation})")
                self._backoff(attempt, response)
                continue
            if status in (401, 403) and not renewed:
                renewed = True  # the cached access token may have been revoked early: exchange a new one once
                self._renew_tokens()
                continue
            if status == 400 and operation == "getRates" and _names(response, _ORDER_WORDS):
                raise _OrderUnknown(f"the carrier does not know the Amazon order ({_error_code(response)})")
            if status == 400 and operation == "getRates" and _names(response, _ADDRESS_WORDS):
                code = _error_code(response)
                raise AddressRejected(f"the carrier refused the ship-to ({code})", reasons=(code,))
            return self._json(response, operation)

    def _new_tokens(self, lwa_url: str) -> SpApiClient:
        """The account's LWA token holder: the process's shared one (so a wave of purchases exchanges the
        refresh token once, not once per label), or a private one on a test transport."""
        if self._transport is None:
            return _shared_tokens(lwa_url, self.credentials, self.policy)
        return _token_client(lwa_url, self.credentials, self.policy, transport=self._transport)

    def _renew_tokens(self) -> None:
        old = self._tokens
        if self._transport is None:
            self._tokens = _shared_tokens(old.lwa_url, self.credentials, self.policy, stale=old)
        else:
            self._tokens = self._new_tokens(old.lwa_url)
            old.close()

    def _json(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise CarrierAuthRefused(f"the carrier refused the account's access token ({operation}, HTTP {status})")
        if status >= 400:
            raise CarrierBadResponse(f"the carrier refused {operation} (HTTP {status} {_error_code(response)})")
        try:
            body = response.json()
        except ValueError:
            raise CarrierBadResponse(f"the carrier's answer to {operation} is not JSON") from None
        if not isinstance(body, dict):
            raise CarrierBadResponse(f"the carrier's answer to {operation} is not an object")
        return body

    @staticmethod
    def _payload(body: dict[str, Any]) -> dict[str, Any]:
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise CarrierBadResponse("the carrier's answer has no payload")
        return payload

    def _backoff(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
        if response is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(self.policy.max_delay, float(response.headers.get("Retry-After", 0))))
        self._sleep(delay)

    @staticmethod
    def _sleep(seconds: float) -> None:
        time.sleep(seconds)

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


_shared: dict[tuple[str, str], SpApiClient] = {}
_shared_lock = threading.Lock()


def _token_client(
    lwa_url: str,
    c: AmazonShippingCredentials,
    policy: AmazonShippingPolicy,
    *,
    transport: httpx.BaseTransport | None = None,
    http: httpx.Client | None = None,
) -> SpApiClient:
    return SpApiClient(
        credentials=LwaCredentials(c.client_id, c.client_secret, c.refresh_token),
        base_url=lwa_url,  # only its token exchange is used: no SP-API call goes through it
        lwa_url=lwa_url,
        limiter=shared_limiter(),
        scope=f"amazonshipping:{_grant_digest(c)[:16]}",
        retry=policy.retry(),
        rng=random.Random(0),  # noqa: S311 - jitter, not cryptography
        transport=transport,
        http=http,
    )


def _grant_digest(c: AmazonShippingCredentials) -> str:
    return hashlib.sha256("\0".join((c.client_id, c.client_secret, c.refresh_token)).encode()).hexdigest()


def _shared_tokens(
    lwa_url: str, c: AmazonShippingCredentials, policy: AmazonShippingPolicy, *, stale: SpApiClient | None = None
) -> SpApiClient:
    """The process's token holder for one LWA grant (keyed by a digest, never the secrets themselves); a
    ``stale`` holder Amazon refused is replaced, so its cached access token is exchanged anew."""
    key = (lwa_url, _grant_digest(c))
    with _shared_lock:
        held = _shared.get(key)
        if held is None or held is stale:
            held = _shared[key] = _token_client(lwa_url, c, policy, http=shared_http(policy.retry()))
        return held


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


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors or [] if isinstance(e, dict)]


def _error_code(response: httpx.Response) -> str:
    """Amazon's first error code, if it looks like a code (letters, digits, ``._-``, at most 60)."""
    errors = _errors(response)
    code = str(errors[0].get("code", "")) if errors else ""
    if code and len(code) <= 60 and all(c.isalnum() or c in "._-" for c in code):
        return code
    return "unknown"


class _OrderUnknown(CarrierBadResponse):
    """Amazon refused an ``AMAZON`` quote for an order it doesn't have (so it has no address to take)."""


_ORDER_WORDS = ("orderid", "order id")
_QUOTE_WORDS = ("requesttoken", "request token", "rateid", "rate id")
_ADDRESS_WORDS = ("address", "shipto", "ship to", "postalcode", "postal code", "stateorregion")


def _names(response: httpx.Response, words: tuple[str, ...]) -> bool:
    """Whether Amazon's error text names one of ``words``: how a 400 says what it is about, as Amazon's own
    sandbox states it ("RequestToken cannot be null"). The text is read here, never kept or logged."""
    for error in _errors(response):
        text = f"{error.get('message', '')} {error.get('details', '')}".lower()
        if any(word in text for word in words):
            return True
    return False


def _cm(mm: int) -> float:
    return float(Decimal(mm) / 10)


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
