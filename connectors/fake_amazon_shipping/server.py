"""A fake Amazon Shipping v2 over real HTTP (with its own Login with Amazon token endpoint), every body it
answers checked against Amazon's model (``connectors/fake_amazon/models.py``), and the faults that cost money.

What it models beyond the schemas, from the document's descriptions: ``getRates`` answers a ``requestToken``
and rates; ``purchaseShipment`` buys one rate of a live token (it expires after ``request_token_ttl``) and
keeps the ``x-amzn-IdempotencyKey``: a retry with the same key, token and rate answers the first purchase
again and buys nothing (the same key with another quote is refused); ``getShipmentDocuments`` renders the
label again in any format and dpi the rate supports; ``cancelShipment`` cancels once; ``getTracking`` knows
the shipments bought here. Requests are checked against the model too (a bad body is Amazon's 400
``InvalidRequest``, naming the path, never the value). Amazon's error *text* for a stale quote or a refused
address is not documented; the fake follows its sandbox's wording ("RequestToken cannot be null"): the
error names ``RequestToken``, ``RateId`` or the ``shipTo`` address.

The seller's Amazon orders are what a test tells it (:meth:`FakeAmazonShipping.know_orders`: order id → the
order's ``Address``). As the model says, an ``AMAZON`` shipment ignores ``shipTo``: a known order's label goes to
the order's address; one of an order it doesn't know and without ``shipTo`` is refused (400, naming the
``orderId``); with ``shipTo`` it goes there (Amazon's behaviour for that case is not documented; the fake takes
the client's fallback). ``oneClickShipment`` quotes and buys the first asked ``serviceId`` in one call, with no
idempotency key (the model takes none). Every request is kept in :attr:`~FakeAmazonShipping.requests`
(operation, query and body as sent) so a test can assert no buyer data went in any.

``sandbox=True`` is Amazon's static sandbox instead (``x-amzn-api-sandbox``): every operation of both models
(Shipping v2 and Merchant Fulfillment v0) answers the most specific static example whose parameters match
the request, and 400 when none does.

Faults a test injects (each for the next ``count`` calls): :meth:`FakeAmazonShipping.fail` (an outage, 503
by default, nothing done), :meth:`~FakeAmazonShipping.lose_purchase` (the label is bought, the answer held
longer than the client waits; ``operation="oneClickShipment"`` for a one-click purchase),
:meth:`~FakeAmazonShipping.expire_quotes` (every request token issued so
far expires: the rate is gone between quote and purchase; :meth:`~FakeAmazonShipping.expire_at_purchase`
does it as the next purchase arrives; :meth:`~FakeAmazonShipping.reprice` does that and quotes dearer from
then on: the rate was withdrawn), :meth:`~FakeAmazonShipping.reject_address`
(``getRates``, or ``oneClickShipment``, refuses the ship-to) and :meth:`~FakeAmazonShipping.refuse_cancel`.

The fake logs nothing per request (it holds buyers' addresses, as a carrier does).
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from connectors.fake_amazon import FakeAmazon, FakeOrder
from connectors.fake_amazon.limits import TokenBucket
from connectors.fake_amazon.marketplace import match_example, sandbox_parameters
from connectors.fake_amazon.models import SHIPPING_APIS, Operation, operations_of, request_errors, schema_errors
from connectors.fake_shippo import labels
from connectors.fakeserver import FaultQueue, ServedFake, client_went_away

#: The operations the fake serves outside the sandbox (the rest answer 400 there).
SERVED = ("getRates", "purchaseShipment", "oneClickShipment", "getShipmentDocuments", "cancelShipment", "getTracking")
#: The operations that buy a label.
BUYING = ("purchaseShipment", "oneClickShipment")
#: (carrierId, carrierName, serviceId, serviceName, days, base price, price per 100 g).
SERVICES: tuple[tuple[str, str, str, str, int, Decimal, Decimal], ...] = (
    ("AMZN_US", "Amazon Shipping", "SWA-US-GROUND", "Amazon Shipping Ground", 5, Decimal("4.10"), Decimal("0.25")),
    ("AMZN_US", "Amazon Shipping", "SWA-US-2DAY", "Amazon Shipping Two-Day", 2, Decimal("7.60"), Decimal("0.40")),
    ("UPS", "UPS", "UPS_NEXT_DAY_AIR", "UPS Next Day Air", 1, Decimal("24.90"), Decimal("0.75")),
)
_DPIS = {"PDF": [], "ZPL": [203, 300], "PNG": [203, 300]}
_RENDER = {"PDF": labels.pdf_label, "ZPL": labels.zpl_label, "PNG": labels.png_label}
_ERRORS = {
    400: ("InvalidRequest", "Request is missing or has invalid parameters"),
    401: (
        "Unauthorized",
        "The request's Authorization header is not formatted correctly or does not contain a valid token.",
    ),
    403: ("Unauthorized", "Access to requested resource is denied."),
    404: ("NotFound", "The resource specified does not exist."),
    429: ("QuotaExceeded", "You exceeded your quota for the requested resource."),
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Temporary overloading or maintenance of the server."),
}


@dataclass(frozen=True, slots=True)
class Seller:
    """The selling partner whose LWA grant the fake accepts, and its Amazon Shipping business."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    business_id: str = "AmazonShipping_US"

    def secrets(self) -> dict[str, str]:
        """The credentials a carrier account stores for this seller."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "business_id": self.business_id,
        }


@dataclass
class _Quote:
    token: str
    issued: float
    request: dict[str, Any] = field(repr=False)
    rates: dict[str, dict[str, Any]]
    #: The address the label goes to: the Amazon order's own for an ``AMAZON`` shipment Amazon knows, else
    #: the request's ``shipTo``.
    ship_to: dict[str, Any] = field(repr=False, default_factory=dict)
    expired: bool = False


@dataclass
class _Shipment:
    shipment_id: str
    quote: _Quote = field(repr=False)
    rate_id: str
    key: str | None
    tracking_id: str
    packages: list[str]
    answer: dict[str, Any] = field(repr=False)
    cancelled: bool = False


class _Refusal(Exception):
    def __init__(self, status: int, details: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.details = details


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeAmazonShipping(ServedFake):
    """Amazon Shipping v2 for one selling partner (:attr:`DEFAULT_SELLER`), on ``base_url``.

    ``latency`` is added to every API answer; ``request_token_ttl`` is how long a quote can be bought;
    ``speedup`` multiplies every operation's documented rate (its token bucket; bursts stay as documented);
    ``purchase_rate`` and ``purchase_burst`` replace ``purchaseShipment``'s bucket (a tighter usage plan, so a
    test sees Amazon's 429; :attr:`throttled` counts the calls refused so). ``marketplace`` is the fake
    Amazon marketplace whose (default seller's) orders Amazon Shipping knows, read at each request: one source
    of truth for the orders a test syncs and ships; :meth:`know_orders` adds orders the marketplace doesn't
    serve (the vault's sample orders).
    """

    DEFAULT_SELLER: ClassVar[Seller] = Seller(
        client_id="amzn1.application-oa2-client.0f4ce1abe1va017fa4e00000000ship1",
        client_secret="amzn1.oa2-cs.v1.fake-amazon-shipping-client-secret-000000000001",  # noqa: S106 - fake
        refresh_token="Atzr|IwEBIFakeRefreshTokenForTheLabelvaultAmazonShippingSeller01",  # noqa: S106 - fake
    )

    def __init__(
        self,
        *,
        sandbox: bool = False,
        latency: float = 0.0,
        request_token_ttl: float = 600.0,
        speedup: float = 1.0,
        purchase_rate: float | None = None,
        purchase_burst: int | None = None,
        seller: Seller | None = None,
        marketplace: FakeAmazon | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.sandbox = sandbox
        self.latency = latency
        self.request_token_ttl = request_token_ttl
        self.seller = seller or self.DEFAULT_SELLER
        self.marketplace = marketplace
        super().__init__(host=host, port=port)
        self._lock = threading.RLock()
        self._tokens: set[str] = set()
        self._quotes: dict[str, _Quote] = {}
        self._shipments: dict[str, _Shipment] = {}
        self._by_key: dict[str, str] = {}
        self.faults = FaultQueue()
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self._buckets = {
            name: TokenBucket(op.rate * speedup, op.burst) for name, op in operations_of(SHIPPING_APIS).items()
        }
        if purchase_rate is not None or purchase_burst is not None:
            documented = self._buckets["purchaseShipment"]
            self._buckets["purchaseShipment"] = TokenBucket(
                purchase_rate or documented.rate, purchase_burst or documented.burst
            )
        self._price_factor = Decimal(1)
        self.throttled = 0
        self.calls: collections.Counter[str] = collections.Counter()
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []
        self.last_requests: dict[str, dict[str, Any]] = {}
        #: Every API request served, as (operation, its query string and body as sent): what a test searches
        #: for the buyer's data.
        self.requests: list[tuple[str, str]] = []
        self._orders: dict[str, dict[str, Any]] = {}

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-amazon-shipping"
    wildcard_as_loopback = False
    # base_url (ServedFake's) is the SP-API base URL (and, at ``/auth/o2/token``, Login with Amazon).

    # --- faults and inspection ------------------------------------------------------------------------------

    def fail(self, *, status: int = 503, count: int = 1, operation: str | None = None) -> None:
        """Answer the next ``count`` calls (of ``operation``, e.g. ``"purchaseShipment"``) with ``status``."""
        if status not in _ERRORS:
            raise ValueError(f"status must be one of {sorted(_ERRORS)}")
        self.faults.add("fail", count, operation, status=status)

    def know_orders(self, orders: Mapping[str, Mapping[str, Any]]) -> None:
        """Amazon's own orders of the seller: order id → the order's ship-to as Amazon's ``Address``. An
        ``AMAZON`` shipment of a known order goes to that address (Amazon ignores ``shipTo`` then); one of an
        order Amazon doesn't know and without ``shipTo`` is refused (400 naming the ``orderId``)."""
        with self._lock:
            self._orders.update({k: dict(v) for k, v in orders.items()})

    def lose_purchase(self, *, seconds: float, count: int = 1, operation: str = "purchaseShipment") -> None:
        """Buy the next ``count`` labels (by ``operation``: ``purchaseShipment`` or ``oneClickShipment``), then
        hold each answer ``seconds`` before sending it."""
        if operation not in BUYING:
            raise ValueError(f"operation must be one of {BUYING}")
        self.faults.add("lose", count, operation, seconds=seconds)

    def expire_quotes(self) -> None:
        """Every request token issued so far expires now (its rates can no longer be bought)."""
        with self._lock:
            for quote in self._quotes.values():
                quote.expired = True

    def expire_at_purchase(self, *, count: int = 1) -> None:
        """The next ``count`` purchases find every quote issued so far expired (it lapsed on the way)."""
        self.faults.add("expire", count, "purchaseShipment")

    def reprice(self, *, count: int = 1) -> None:
        """At the next ``count`` purchases every quote issued so far expires and later quotes cost 10% more:
        Amazon's rate is gone between quote and purchase, and a new ``getRates`` has the new price."""
        self.faults.add("reprice", count, "purchaseShipment")

    def reject_address(self, *, count: int = 1, operation: str = "getRates") -> None:
        """The next ``count`` ``getRates`` (or ``oneClickShipment``) refuse the ship-to address."""
        self.faults.add("address", count, operation)

    def refuse_cancel(self, *, count: int = 1) -> None:
        """The next ``count`` ``cancelShipment`` are refused (the carrier has the parcel already)."""
        self.faults.add("cancel", count, "cancelShipment")

    def purchases_by_key(self) -> collections.Counter[str]:
        """Labels bought per idempotency key: a double purchase is 2."""
        with self._lock:
            return collections.Counter(s.key or "" for s in self._shipments.values())

    def shipments(self) -> list[dict[str, Any]]:
        """Every bought shipment's ids and state (no address)."""
        with self._lock:
            return [
                {
                    "shipment_id": s.shipment_id,
                    "tracking_id": s.tracking_id,
                    "rate_id": s.rate_id,
                    "key": s.key,
                    "cancelled": s.cancelled,
                }
                for s in self._shipments.values()
            ]

    # --- WSGI -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # a fake bug: answer like Amazon, record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _json(500, _error(500))
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.path == "/auth/o2/token":
            return self._lwa(request)
        for op in operations_of(SHIPPING_APIS).values():
            path = op.match(request.method, request.path)
            if path is not None:
                return self._api(op, request, path)
        return _json(404, _error(404))

    def _lwa(self, request: Request) -> Response:
        with self._lock:
            self.calls["lwaToken"] += 1
        form = request.form
        s = self.seller
        if request.method != "POST" or form.get("grant_type") != "refresh_token":
            return _json(400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"})
        if (form.get("client_id"), form.get("client_secret")) != (s.client_id, s.client_secret):
            return _json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if form.get("refresh_token") != s.refresh_token:
            return _json(400, {"error": "invalid_grant", "error_description": "The refresh token is invalid"})
        token = "Atza|" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return _json(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def _api(self, op: Operation, request: Request, path: dict[str, str]) -> Response:
        with self._lock:
            self.calls[op.name] += 1
        if self.latency:
            self._stopping.wait(self.latency)
        fault = self.faults.take(op.name, "fail")
        if fault is not None:
            return self._answer(op, fault.status, _error(fault.status))
        try:
            with self._lock:
                known = request.headers.get("x-amz-access-token", "") in self._tokens
            if not known:
                raise _Refusal(403)
            if not self._buckets[op.name].take():
                with self._lock:
                    self.throttled += 1
                raise _Refusal(429)
            business = request.headers.get("x-amzn-shipping-business-id")
            spec = op.parameter("x-amzn-shipping-business-id")
            if business is not None and spec is not None and spec.enum and business not in spec.enum:
                raise _Refusal(400, "x-amzn-shipping-business-id is not a valid Amazon Shipping business")
            if self.sandbox:
                status, body = self._replay(op, request, path)
            elif op.name in SERVED:
                status, body = self._operate(op, request, path)
            else:
                raise _Refusal(400, f"{op.name} is not served by the fake outside the sandbox")
        except _Refusal as refusal:
            status, body = refusal.status, _error(refusal.status, refusal.details)
        response = self._answer(op, status, body)
        if op.name in BUYING and status == 200:
            lost = self.faults.take(op.name, "lose")
            if lost is not None:
                self._stopping.wait(lost.seconds)
        return response

    def _answer(self, op: Operation, status: int, body: Any) -> Response:
        problems = schema_errors(op.name, status, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(problems)
            status, body = 500, _error(500)
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if status in op.rate_limit_header_codes:
            headers["x-amzn-RateLimit-Limit"] = f"{op.rate * self.speedup:g}"
        return _json(status, body, headers)

    def _replay(self, op: Operation, request: Request, path: dict[str, str]) -> tuple[int, Any]:
        example = match_example(op, sandbox_parameters(op, request, path))
        if example is None:
            raise _Refusal(400, "No sandbox example matches the request parameters.")
        return example.status, copy.deepcopy(example.response)

    def _operate(self, op: Operation, request: Request, path: dict[str, str]) -> tuple[int, Any]:
        body: Any = None
        if request.get_data():
            body = request.get_json(silent=True)
            if body is None:
                raise _Refusal(400, "The request body is not JSON")
        with self._lock:
            self.requests.append((op.name, f"{request.query_string.decode()} {request.get_data(as_text=True)}"))
        problems = request_errors(op.name, body)
        if problems:
            raise _Refusal(400, "; ".join(problems)[:500])
        with self._lock:
            self.last_requests[op.name] = {"body": body, "args": dict(request.args), "headers": dict(request.headers)}
        handler = {
            "getRates": self._get_rates,
            "purchaseShipment": self._purchase,
            "oneClickShipment": self._one_click,
            "getShipmentDocuments": self._documents,
            "cancelShipment": self._cancel,
            "getTracking": self._tracking,
        }[op.name]
        return handler(request, path, body)

    # --- operations -----------------------------------------------------------------------------------------

    def _ship_to(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Where the shipment goes: an ``AMAZON`` shipment of an order Amazon knows goes to the order's address
        (``shipTo`` is ignored, as the model says); otherwise the request's ``shipTo``, which must be whole.
        An injected address refusal is for that address, once it is known."""
        channel = body["channelDetails"]
        known: dict[str, Any] | None = None
        if channel["channelType"] == "AMAZON":
            order_id = (channel.get("amazonOrderDetails") or {}).get("orderId")
            if not order_id:
                raise _Refusal(400, "ChannelDetails of an AMAZON shipment need amazonOrderDetails.orderId")
            with self._lock:
                known = self._orders.get(order_id)
            if known is None and self.marketplace is not None:
                order = self.marketplace.orders().get(order_id)
                known = _address(order) if order is not None and order.has_address else None
            if known is None and not body.get("shipTo"):
                raise _Refusal(400, "No Amazon order of the seller has this amazonOrderDetails.orderId")
        to = dict(known) if known is not None else dict(body.get("shipTo") or {})
        if self.faults.take(operation, "address") is not None:
            raise _Refusal(400, "The shipTo address is invalid: the postal code does not match the city")
        if not all(str(to.get(k) or "").strip() for k in ("name", "addressLine1", "city", "countryCode")):
            raise _Refusal(400, "The shipTo address is missing a name, addressLine1, city or countryCode")
        return to

    def _get_rates(self, request: Request, path: dict[str, str], body: Any) -> tuple[int, Any]:
        ship_to = self._ship_to("getRates", body)
        token, rates = self._rates(body)
        with self._lock:
            self._quotes[token] = _Quote(token, time.monotonic(), body, rates, ship_to)
        return 200, {"payload": {"requestToken": token, "rates": list(rates.values()), "ineligibleRates": []}}

    def _rates(self, body: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
        grams = sum(_grams(p.get("weight") or {}) for p in body["packages"])
        token = uuid.uuid4().hex[:29].upper()
        now = datetime.now(UTC)
        rates: dict[str, dict[str, Any]] = {}
        for carrier_id, carrier_name, service_id, service_name, days, base, per_100g in SERVICES:
            amount = ((base + per_100g * (Decimal(grams) / 100)) * self._price_factor).quantize(Decimal("0.01"))
            rate_id = uuid.uuid4().hex[:29].upper()
            rates[rate_id] = {
                "rateId": rate_id,
                "carrierId": carrier_id,
                "carrierName": carrier_name,
                "serviceId": service_id,
                "serviceName": service_name,
                "billedWeight": {"value": grams, "unit": "GRAM"},
                "totalCharge": {"value": float(amount), "unit": "USD"},
                "promise": {
                    "deliveryWindow": {
                        "start": _iso(now + timedelta(days=days - 1)),
                        "end": _iso(now + timedelta(days=days)),
                    },
                    "pickupWindow": {"start": _iso(now), "end": _iso(now + timedelta(hours=8))},
                },
                "supportedDocumentSpecifications": [
                    {
                        "format": fmt,
                        "size": {"width": 4, "length": 6, "unit": "INCH"},
                        "printOptions": [
                            {
                                "supportedDPIs": dpis,
                                "supportedPageLayouts": ["DEFAULT"],
                                "supportedFileJoiningOptions": [False],
                                "supportedDocumentDetails": [{"name": "LABEL", "isMandatory": True}],
                            }
                        ],
                    }
                    for fmt, dpis in _DPIS.items()
                ],
                "requiresAdditionalInputs": False,
                "paymentType": "PAY_THROUGH_AMAZON",
            }
        return token, rates

    def _purchase(self, request: Request, path: dict[str, str], body: Any) -> tuple[int, Any]:
        key = request.headers.get("x-amzn-IdempotencyKey")
        token, rate_id = body["requestToken"], body["rateId"]
        if self.faults.take("purchaseShipment", "expire") is not None:
            self.expire_quotes()
        if self.faults.take("purchaseShipment", "reprice") is not None:
            self.expire_quotes()
            with self._lock:
                self._price_factor *= Decimal("1.10")
        with self._lock:
            if key and key in self._by_key:
                first = self._shipments[self._by_key[key]]
                if (first.quote.token, first.rate_id) != (token, rate_id):
                    raise _Refusal(400, "The x-amzn-IdempotencyKey was used with another request")
                return 200, copy.deepcopy(first.answer)  # Amazon recognises the retry: nothing is bought
            quote = self._quotes.get(token)
            if quote is None:
                raise _Refusal(400, "The RequestToken is not valid")
            if quote.expired or time.monotonic() - quote.issued > self.request_token_ttl:
                raise _Refusal(400, "The RequestToken has expired; get rates again")
            rate = quote.rates.get(rate_id)
            if rate is None:
                raise _Refusal(400, "The RateId is not valid for the RequestToken")
            return 200, self._buy(quote, rate_id, key, body["requestedDocumentSpecification"])

    def _one_click(self, request: Request, path: dict[str, str], body: Any) -> tuple[int, Any]:
        """Rates and purchase in one: the cheapest rate of the first asked ``serviceId`` the fake offers.
        The model takes no idempotency key here, so every call that reaches the fake buys."""
        ship_to = self._ship_to("oneClickShipment", body)
        token, rates = self._rates(body)
        asked = body["serviceSelection"]["serviceId"]
        offered = {r["serviceId"]: r["rateId"] for r in rates.values()}
        rate_id = next((offered[s] for s in asked if s in offered), None)
        if rate_id is None:
            raise _Refusal(400, "No service of the serviceSelection is offered for the shipment")
        with self._lock:
            quote = self._quotes[token] = _Quote(token, time.monotonic(), body, rates, ship_to)
            answer = self._buy(quote, rate_id, None, body["labelSpecifications"])
        rate = rates[rate_id]
        result = answer["payload"]
        result["carrier"] = {"id": rate["carrierId"], "name": rate["carrierName"]}
        result["service"] = {"id": rate["serviceId"], "name": rate["serviceName"]}
        result["totalCharge"] = rate["totalCharge"]
        return 200, answer

    def _buy(self, quote: _Quote, rate_id: str, key: str | None, spec: dict[str, Any]) -> dict[str, Any]:
        """Buy ``rate_id`` of ``quote`` (under the lock): the shipment, kept, and its answer."""
        with self._lock:
            rate = quote.rates[rate_id]
            fmt, dpi = spec["format"], spec.get("dpi")
            if _DPIS[fmt] and dpi not in _DPIS[fmt]:
                raise _Refusal(400, f"The dpi is not supported for {fmt}")
            shipment = _Shipment(
                shipment_id=str(uuid.uuid4().int)[:14],
                quote=quote,
                rate_id=rate_id,
                key=key,
                tracking_id="TBA" + str(uuid.uuid4().int)[:12],
                packages=[str(p["packageClientReferenceId"]) for p in quote.request["packages"]],
                answer={},
            )
            shipment.answer = {
                "payload": {
                    "shipmentId": shipment.shipment_id,
                    "packageDocumentDetails": [
                        {
                            "packageClientReferenceId": package,
                            "packageDocuments": [
                                {"type": "LABEL", "format": fmt, "contents": self._label(shipment, fmt, dpi)}
                            ],
                            "trackingId": shipment.tracking_id,
                        }
                        for package in shipment.packages
                    ],
                    "promise": rate["promise"],
                }
            }
            self._shipments[shipment.shipment_id] = shipment
            if key:
                self._by_key[key] = shipment.shipment_id
            return copy.deepcopy(shipment.answer)

    def _label(self, shipment: _Shipment, fmt: str, dpi: int | None = None) -> str:
        to = shipment.quote.ship_to
        rate = shipment.quote.rates[shipment.rate_id]
        lines = [
            str(to[k]) for k in ("name", "companyName", "addressLine1", "addressLine2", "addressLine3") if to.get(k)
        ]
        lines += [
            " ".join(str(to[k]) for k in ("city", "stateOrRegion", "postalCode") if to.get(k)),
            str(to.get("countryCode", "")),
        ]
        drawn = {"dpi": dpi or 203} if _DPIS[fmt] else {}  # ZPL and PNG at the resolution asked for
        content = _RENDER[fmt](service=rate["serviceName"].upper(), tracking=shipment.tracking_id, lines=lines, **drawn)
        return base64.b64encode(content).decode()

    def _shipment(self, shipment_id: str) -> _Shipment:
        shipment = self._shipments.get(shipment_id)
        if shipment is None:
            raise _Refusal(404, "No shipment has this shipmentId")
        return shipment

    def _documents(self, request: Request, path: dict[str, str], body: Any) -> tuple[int, Any]:
        package = request.args.get("packageClientReferenceId")
        fmt = request.args.get("format", "PDF")
        with self._lock:
            shipment = self._shipment(path["shipmentId"])
            if package not in shipment.packages:
                raise _Refusal(400, "The packageClientReferenceId is not in the shipment")
            if shipment.cancelled:
                raise _Refusal(400, "The shipment is cancelled")
            if fmt not in _DPIS:
                raise _Refusal(400, "The format is not supported")
            dpi = request.args.get("dpi")
            if _DPIS[fmt] and dpi is not None and (not dpi.isdigit() or int(dpi) not in _DPIS[fmt]):
                raise _Refusal(400, f"The dpi is not supported for {fmt}")
            contents = self._label(shipment, fmt, int(dpi) if dpi is not None else None)
            return 200, {
                "payload": {
                    "shipmentId": shipment.shipment_id,
                    "packageDocumentDetail": {
                        "packageClientReferenceId": package,
                        "packageDocuments": [{"type": "LABEL", "format": fmt, "contents": contents}],
                        "trackingId": shipment.tracking_id,
                    },
                }
            }

    def _cancel(self, request: Request, path: dict[str, str], body: Any) -> tuple[int, Any]:
        with self._lock:
            shipment = self._shipment(path["shipmentId"])
            if self.faults.take("cancelShipment", "cancel") is not None:
                raise _Refusal(400, "The shipment cannot be cancelled: the carrier has received it")
            if shipment.cancelled:
                raise _Refusal(400, "The shipment is already cancelled")
            shipment.cancelled = True
        return 200, {"payload": {}}

    def _tracking(self, request: Request, path: dict[str, str], body: Any) -> tuple[int, Any]:
        tracking_id = request.args.get("trackingId", "")
        with self._lock:
            shipment = next((s for s in self._shipments.values() if s.tracking_id == tracking_id), None)
            if shipment is None or shipment.quote.rates[shipment.rate_id]["carrierId"] != request.args.get("carrierId"):
                raise _Refusal(404, "No shipment has this trackingId and carrierId")
            rate = shipment.quote.rates[shipment.rate_id]
            cancelled = shipment.cancelled
        event = "PickupCancelled" if cancelled else "ReadyForReceive"
        return 200, {
            "payload": {
                "trackingId": tracking_id,
                "alternateLegTrackingId": "",
                "eventHistory": [{"eventCode": event, "eventTime": _now(), "shipmentType": "FORWARD"}],
                "promisedDeliveryDate": rate["promise"]["deliveryWindow"]["end"],
                "summary": {"status": "PickupCancelled" if cancelled else "PreTransit"},
            }
        }


def _address(order: FakeOrder) -> dict[str, Any]:
    """A fake marketplace order's ship-to as Amazon's ``Address`` (the model's required fields always there)."""
    to = order.ship_to
    values = {
        "name": to.name,
        "companyName": to.company,
        "addressLine1": to.address_line1,
        "addressLine2": to.address_line2,
        "addressLine3": to.address_line3,
        "city": to.city,
        "stateOrRegion": to.state_or_region or "",
        "postalCode": to.postal_code or "",
        "countryCode": to.country_code,
        "phoneNumber": to.phone,
    }
    required = ("name", "addressLine1", "city", "stateOrRegion", "postalCode", "countryCode")
    return {k: v for k, v in values.items() if v or k in required}


def _grams(weight: dict[str, Any]) -> int:
    factor = {"GRAM": 1.0, "KILOGRAM": 1000.0, "OUNCE": 28.349523125, "POUND": 453.59237}
    return int(float(weight.get("value") or 0) * factor.get(str(weight.get("unit")), 1.0))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, details: str | None = None) -> dict[str, Any]:
    code, message = _ERRORS.get(status, _ERRORS[500])
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"errors": [error]}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")
