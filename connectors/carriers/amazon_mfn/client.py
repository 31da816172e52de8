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
settles it in Seller Central (``docs/carriers.md``).

Labels: PDF, PNG, ZPL at 203 dpi (``ZPL300`` with ``MerchantFulfillmentPolicy.dpi = 300``), 4 × 6 in, fixed at
purchase; ``getShipment`` serves it again (Base64 of GZip). URLs carry only order and shipment ids; nothing
here logs a body (``getShipment`` answers the buyer's address, which is read past and dropped); error
messages name the operation, the status and Amazon's error code, never Amazon's text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import functools
import gzip
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
from connectors.amazon.fulfillment import order_items
from connectors.carriers.fields import required_str, timestamp
from connectors.carriers.http import CarrierPolicy
from connectors.carriers.interfaces import (
    CarrierAuthRefused,
    CarrierBadResponse,
    CarrierError,
    CarrierUnavailable,
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
from connectors.interfaces import AuthRefused, BadResponse, ConnectorError
from connectors.ratelimit import TokenBucket
from vault.records import LabelRecord

CARRIER = "amazonmfn"
USER_AGENT = "labelvault/0.1 (Language=Python)"
#: SP-API's live hosts: the registry's own hosts for an account (a sandbox host is an operator override).
LIVE_HOSTS: frozenset[str] = frozenset(REGIONS.values())
_AMAZON_HOSTS: frozenset[str] = frozenset({*REGIONS.values(), *SANDBOX_REGIONS.values()})
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
class MerchantFulfillmentCredentials:
    """The selling partner's LWA app credentials and refresh token, and its SP-API region."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    region: str = "na"

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> MerchantFulfillmentCredentials:
        """From the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        missing = [k for k in ("client_id", "client_secret", "refresh_token") if not secrets.get(k)]
        if missing:
            raise CarrierAuthRefused(f"stored credentials lack {', '.join(missing)}")
        region = secrets.get("region") or "na"
        if region not in REGIONS:
            raise CarrierAuthRefused(f"unknown SP-API region {region!r}")
        return cls(secrets["client_id"], secrets["client_secret"], secrets["refresh_token"], region)


@dataclass(frozen=True, slots=True)
class MerchantFulfillmentPolicy(CarrierPolicy):
    """The shared carrier policy, and the ZPL label's resolution (Amazon offers ``ZPL203`` and ``ZPL300``)."""

    dpi: int = 203

    @classmethod
    def of(cls, policy: CarrierPolicy | None) -> MerchantFulfillmentPolicy:
        """``policy`` as Merchant Fulfillment's: a plain :class:`CarrierPolicy` gets 203 dpi."""
        if isinstance(policy, MerchantFulfillmentPolicy):
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


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def region_base(api_base: str, region: str) -> str:
    """The SP-API host of ``region`` for a live or sandbox Amazon host; any other base (an operator-allowed fake
    or proxy) as it is."""
    base = api_base.rstrip("/")
    if base in SANDBOX_REGIONS.values():
        return SANDBOX_REGIONS.get(region, base)
    if base in REGIONS.values():
        return REGIONS.get(region, base)
    return base


def lwa_url_for(api_base: str) -> str:
    """Amazon's LWA token URL for Amazon's hosts; another (operator-allowed) origin's own ``/auth/o2/token``."""
    base = api_base.rstrip("/")
    return LWA_URL if base in _AMAZON_HOSTS else f"{base}/auth/o2/token"


class MerchantFulfillmentCarrier:
    """One selling partner's Merchant Fulfillment (its LWA grant and region) as a
    :class:`~connectors.carriers.interfaces.Carrier`."""

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
        self.policy = MerchantFulfillmentPolicy.of(policy)
        self.credentials = credentials
        self._base = region_base(api_base, credentials.region)
        timeout = httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout)
        self._http = httpx.Client(
            base_url=self._base,
            timeout=timeout,
            verify=_tls(),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )
        self._transport = transport
        rate = self.policy.purchase_rate
        self._purchases = TokenBucket(rate, self.policy.purchase_burst) if rate else None
        self._offers: dict[str, _Offer] = {}
        self._lock = threading.Lock()
        self._tokens = self._new_tokens(lwa_url or lwa_url_for(api_base))

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
                "Length": _cm(parcel.length_mm),
                "Width": _cm(parcel.width_mm),
                "Height": _cm(parcel.height_mm),
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
        attempt = 0
        while True:
            if self._purchases is not None:
                self._purchases.acquire()
            headers = self._auth()
            try:
                response = self._http.post("/mfn/v0/shipments", json=body, headers=headers)
            except httpx.ConnectError:
                raise CarrierUnavailable("the carrier could not be reached to buy the label") from None
            except httpx.HTTPError:  # sent, and the answer lost: the label may be bought
                raise PurchaseUncertain("the carrier's answer to the purchase was lost") from None
            status = response.status_code
            if status != 429:
                break
            attempt += 1  # throttled: Amazon refused it whole (nothing bought), so it is sent again, paced
            if attempt >= self.policy.attempts:
                raise CarrierUnavailable("the carrier kept throttling the purchase (nothing was bought)")
            if self._purchases is not None:
                self._purchases.drain()
            self._backoff(attempt, response)
        if status >= 500:
            raise PurchaseUncertain(f"the carrier answered the purchase with HTTP {status}")
        if status == 400 and _names(response, _OFFER_WORDS):
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
        """``None`` when Amazon shows the rate's order not shipped (its label was not bought);
        :class:`PurchaseUncertain` when it is shipped or Amazon can't say: Merchant Fulfillment has no look-up
        of the shipment a lost answer made, so it is never bought again blindly (see the module docstring)."""
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

    def close(self) -> None:
        self._http.close()
        if self._transport is not None:  # a shared token holder outlives its clients
            self._tokens.close()

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
            return self._json(response, operation)

    def _new_tokens(self, lwa_url: str) -> SpApiClient:
        """The grant's LWA token holder: the process's shared one, or a private one on a test transport."""
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

    @staticmethod
    def _json(response: httpx.Response, operation: str) -> dict[str, Any]:
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
        time.sleep(delay)


_shared: dict[tuple[str, str], SpApiClient] = {}
_shared_lock = threading.Lock()


def _token_client(
    lwa_url: str,
    c: MerchantFulfillmentCredentials,
    policy: MerchantFulfillmentPolicy,
    *,
    transport: httpx.BaseTransport | None = None,
    http: httpx.Client | None = None,
) -> SpApiClient:
    return SpApiClient(
        credentials=LwaCredentials(c.client_id, c.client_secret, c.refresh_token),
        base_url=lwa_url,  # only its token exchange is used: no SP-API call goes through it
        lwa_url=lwa_url,
        limiter=shared_limiter(),
        scope=f"amazonmfn:{_grant_digest(c)[:16]}",
        retry=policy.retry(),
        rng=random.Random(0),  # noqa: S311 - jitter, not cryptography
        transport=transport,
        http=http,
    )


def _grant_digest(c: MerchantFulfillmentCredentials) -> str:
    return hashlib.sha256("\0".join((c.client_id, c.client_secret, c.refresh_token)).encode()).hexdigest()


def _shared_tokens(
    lwa_url: str,
    c: MerchantFulfillmentCredentials,
    policy: MerchantFulfillmentPolicy,
    *,
    stale: SpApiClient | None = None,
) -> SpApiClient:
    """The process's token holder for one LWA grant (keyed by a digest, never the secrets); a ``stale`` holder
    Amazon refused is replaced."""
    key = (lwa_url, _grant_digest(c))
    with _shared_lock:
        held = _shared.get(key)
        if held is None or held is stale:
            held = _shared[key] = _token_client(lwa_url, c, policy, http=shared_http(policy.retry()))
        return held


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


def _names(response: httpx.Response, words: tuple[str, ...]) -> bool:
    """Whether Amazon's error text names one of ``words`` (read here, never kept or logged)."""
    for error in _errors(response):
        text = f"{error.get('message', '')} {error.get('details', '')}".lower()
        if any(word in text for word in words):
            return True
    return False


def _cm(mm: int) -> float:
    return float(Decimal(mm) / 10)


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
