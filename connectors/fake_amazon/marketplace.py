"""The fake Amazon marketplace: a real HTTP server speaking LWA, the Tokens API and Orders v0 / v2026-01-01, and
Merchant Fulfillment v0 over the same orders (``mfn.py``: a label bought there ships the order here).

One ``FakeAmazon`` is a WSGI application served by werkzeug in a background thread. Requests pass the same
steps as at Amazon, each able to answer early::

    route -> count -> injected delay -> injected fault -> access token (403) -> token bucket (429)
          -> the operation (400 / 404 / 200) -> schema check of the body (500 if it fails) -> answer

Every SP-API body it answers with is checked against the operation's schema in Amazon's models; a failure
is recorded in ``validation_errors`` (which tests keep empty) and answered as 500. Nothing is logged per
request: the fake serves buyer data and must not leak it into logs. ``confirmShipment``'s request body is
checked against the model too (and fields it doesn't define refused): a bad one is answered 400 and kept in
``refused_requests``; a good one ships the order (``confirmations``).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import hashlib
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from connectors.fakeserver import ServedFake, client_went_away

from . import render
from .data import (
    COUNTRIES,
    FROM_V0_STATUS,
    FULFILLMENT_STATUSES,
    MARKETPLACES,
    FakeOrder,
    OrderFactory,
    utc,
)
from .limits import TokenBucket
from .mfn import SERVED as MFN_SERVED
from .mfn import MerchantFulfillment, Refused
from .models import (
    MARKETPLACE_APIS,
    Operation,
    SandboxExample,
    load_models,
    operations,
    operations_of,
    request_errors,
    schema_errors,
)

#: The models the marketplace serves: its own, and Merchant Fulfillment (Amazon's label buying for its orders,
#: on the same SP-API host, over the same orders: ``mfn.py``).
SERVED_APIS: frozenset[str] = MARKETPLACE_APIS | {"mfn"}
ACCESS_TOKEN_LIFETIME = timedelta(seconds=3600)
PAGINATION_TOKEN_LIFETIME = timedelta(hours=24)
SETTLE_TIME = timedelta(minutes=2)  # "a ...Before must be at least two minutes before now"
MAX_PAGE_SIZE = 100
LWA_OPERATION = "lwaToken"
FAULT_STATUSES = frozenset({400, 403, 404, 429, 500, 503})

_ERROR_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("InvalidInput", "Invalid Input"),
    403: ("Unauthorized", "Access to requested resource is denied."),
    404: ("NotFound", "The requested resource was not found."),
    429: ("QuotaExceeded", "You exceeded your quota for the requested resource."),
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
}
EXPIRED_MESSAGE = "The access token you provided has expired."

# Restricted resources the Tokens API grants an RDT for, and the dataElements each accepts (None: none needed).
_RESTRICTED: dict[str, frozenset[str] | None] = {
    "/orders/v0/orders": frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"}),
    "/orders/v0/orders/{orderId}": frozenset({"buyerInfo", "shippingAddress", "buyerTaxInformation"}),
    "/orders/v0/orders/{orderId}/address": None,
    "/orders/v0/orders/{orderId}/buyerInfo": None,
    "/orders/v0/orders/{orderId}/orderItems": frozenset({"buyerInfo"}),
    "/orders/v0/orders/{orderId}/orderItems/buyerInfo": None,
}
_RDT_OPERATIONS = frozenset({"getOrders", "getOrderV0", "getOrderAddress", "getOrderBuyerInfo"})
_PII_KEYS = frozenset(
    {"name", "buyerName", "buyerEmail", "companyName", "addressLine1", "addressLine2", "addressLine3", "phone"}
    | {"Name", "BuyerName", "BuyerEmail", "CompanyName", "AddressLine1", "AddressLine2", "AddressLine3", "Phone"}
)


class FakeAmazonError(Exception):
    """Misuse of the fake's control API (unknown order, seller, status or operation)."""


class _Refusal(Exception):
    """An SP-API error answer raised from inside an operation."""

    def __init__(
        self, status: int, message: str | None = None, *, code: str | None = None, details: str | None = None
    ) -> None:
        default_code, default_message = _ERROR_MESSAGES[status]
        super().__init__(message or default_message)
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.details = details


@dataclass(frozen=True)
class Seller:
    """A selling partner registered with the fake, with its (fake) LWA app credentials."""

    selling_partner_id: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    marketplace_ids: tuple[str, ...] = tuple(MARKETPLACES)


@dataclass(frozen=True)
class _Grant:
    """One restricted resource an RDT covers."""

    pattern: re.Pattern[str]
    data_elements: frozenset[str]


@dataclass
class _AccessToken:
    seller_id: str
    kind: Literal["lwa", "rdt"]
    expires_at: datetime
    revoked: bool = False
    grants: tuple[_Grant, ...] = ()


@dataclass(frozen=True)
class _Query:
    """The filters of one order search, fixed when its first page is served."""

    seller_id: str
    by: Literal["created", "updated"]
    after: datetime | None
    before: datetime
    marketplace_ids: frozenset[str]
    statuses: frozenset[str] | None = None
    fulfilled_by: frozenset[str] | None = None
    order_ids: frozenset[str] | None = None

    def matches(self, order: FakeOrder) -> bool:
        stamp = order.created if self.by == "created" else order.last_updated
        return (
            order.seller_id == self.seller_id
            and order.marketplace_id in self.marketplace_ids
            and (self.after is None or stamp >= self.after)
            and stamp <= self.before
            and (self.statuses is None or order.status in self.statuses)
            and (self.fulfilled_by is None or order.fulfilled_by in self.fulfilled_by)
            and (self.order_ids is None or order.order_id in self.order_ids)
        )


@dataclass
class _Paging:
    """The state behind one ``nextToken``: the query, where the next page starts, what was served before."""

    api: str
    query: _Query
    cursor: tuple[datetime, str]
    page_size: int
    issued_at: datetime
    served: frozenset[str]
    mutated: bool = False


@dataclass
class _Fault:
    count: int
    operation: str | None
    status: int = 0
    seconds: float = 0.0


def _sort_key(order: FakeOrder) -> tuple[datetime, str]:
    return (order.last_updated, order.order_id)


def _derive(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join((str(seed), *parts)).encode()).hexdigest()


class FakeAmazon(ServedFake):
    """A fake Amazon marketplace: LWA, Tokens API, Orders v0 and v2026-01-01 over real HTTP.

    ``speedup`` multiplies every token bucket's refill rate (bursts stay as documented); ``sandbox=True``
    answers only with Amazon's static ``x-amzn-api-sandbox`` examples, matched on request parameters, like
    Amazon's sandbox hosts; ``clock`` is the marketplace's "now" (default: the system clock, UTC).
    ``pagination_token_lifetime`` is how long a ``nextToken`` stays good on that clock (Amazon: 24 h);
    ``expiry_in_details=True`` answers an expired token with "Access to requested resource is denied." and
    the expiry in the error's ``details``, as SP-API does too, instead of saying it in the ``message``.
    ``latency`` is how long every call (SP-API and LWA) takes before it is answered, in wall seconds: a real
    marketplace is some 150 ms away, and a fleet of accounts synced against a fake that answers at once
    would measure CPU, not how the worker copes with waiting (``bench.fleet``).
    """

    DEFAULT_SELLER: ClassVar[Seller] = Seller(
        selling_partner_id="A1LVFAKESELLER",
        client_id="amzn1.application-oa2-client.0f4ce1abe1va017fa4e0000000000001",
        client_secret="amzn1.oa2-cs.v1.fake-default-seller-client-secret-0000000000000001",  # noqa: S106 - fake
        refresh_token="Atzr|IwEBIFakeRefreshTokenForTheDefaultLabelvaultSeller0001",  # noqa: S106 - fake
    )

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        seed: int = 0,
        sandbox: bool = False,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        pagination_token_lifetime: timedelta = PAGINATION_TOKEN_LIFETIME,
        expiry_in_details: bool = False,
        latency: float = 0.0,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        if not 0 <= latency <= 60:
            raise ValueError("latency must be between 0 and 60 seconds")
        self.latency = latency
        if pagination_token_lifetime <= timedelta(0):
            raise ValueError("pagination tokens must live a while")
        self.pagination_token_lifetime = pagination_token_lifetime
        self.expiry_in_details = expiry_in_details
        self.speedup = speedup
        self.seed = seed
        self.sandbox = sandbox
        super().__init__(host=host, port=port)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._factory = OrderFactory(seed)
        self._mutation_rng = random.Random(seed + 1)  # noqa: S311 - test data, not secrets
        self._sellers: dict[str, Seller] = {}
        self._orders: dict[str, FakeOrder] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._paging: dict[str, _Paging] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._mutate_while_paging = False
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.validation_errors: list[str] = []
        #: Why request bodies were refused as breaking the model (PII-free: paths and rules only).
        self.refused_requests: list[str] = []
        #: Each ``confirmShipment`` taken: (order id, its ``packageDetail`` as sent).
        self.confirmations: list[tuple[str, dict[str, Any]]] = []
        self.server_errors: list[str] = []
        self.mutations: list[tuple[str, str, str]] = []
        #: ``getOrderItems`` answers this many items a page, the rest behind ``NextToken`` (``None``: all at once).
        self.items_per_page: int | None = None
        self._item_pages: dict[str, tuple[str, int]] = {}
        #: Merchant Fulfillment v0 on this marketplace's orders (its faults, shipments and requests).
        self.mfn = MerchantFulfillment(lock=self._lock)
        self._register(self.DEFAULT_SELLER)

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-amazon"
    already_started = FakeAmazonError
    # base_url (ServedFake's) is the SP-API base URL, e.g. ``http://127.0.0.1:8400``.

    @property
    def lwa_url(self) -> str:
        """The full LWA token URL (Amazon's ``https://api.amazon.com/auth/o2/token``)."""
        return f"{self.base_url}/auth/o2/token"

    def now(self) -> datetime:
        """The marketplace's current time (aware, UTC)."""
        return utc(self._clock())

    # --- sellers and orders ---------------------------------------------------------------------------------

    def _register(self, seller: Seller) -> Seller:
        if seller.selling_partner_id in self._sellers:
            raise FakeAmazonError(f"seller {seller.selling_partner_id} already exists")
        unknown = [m for m in seller.marketplace_ids if m not in MARKETPLACES]
        if unknown or not seller.marketplace_ids:
            raise FakeAmazonError(f"marketplace ids must be among {', '.join(MARKETPLACES)}")
        self._sellers[seller.selling_partner_id] = seller
        return seller

    def add_seller(self, selling_partner_id: str, *, marketplace_ids: list[str] | None = None) -> Seller:
        """Register another selling partner with its own credentials (derived from the seed: reproducible)."""
        digest = _derive(self.seed, "seller", selling_partner_id)
        seller = Seller(
            selling_partner_id=selling_partner_id,
            client_id=f"amzn1.application-oa2-client.{digest[:32]}",
            client_secret=f"amzn1.oa2-cs.v1.{digest[32:]}",
            refresh_token=f"Atzr|IwEB{_derive(self.seed, 'refresh', selling_partner_id)}",
            marketplace_ids=tuple(marketplace_ids) if marketplace_ids else tuple(MARKETPLACES),
        )
        with self._lock:
            return self._register(seller)

    def seller(self, selling_partner_id: str | None = None) -> Seller:
        """A registered seller (the default one when no id is given)."""
        spid = selling_partner_id or self.DEFAULT_SELLER.selling_partner_id
        try:
            return self._sellers[spid]
        except KeyError:
            raise FakeAmazonError(f"unknown seller {spid}") from None

    def generate_orders(
        self,
        n: int,
        *,
        seller: str | None = None,
        countries: Sequence[str] = COUNTRIES,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
    ) -> list[str]:
        """Create ``n`` orders for ``seller``, placed between ``start`` (default: 7 days ago) and now; their ids.

        Deterministic from the seed: the same seed and the same sequence of calls give the same orders
        (dates are relative to the clock). Countries are assigned round-robin; each status in ``statuses``
        (default: all seven) occurs at least once when ``n`` allows.
        """
        owner = self.seller(seller)
        wanted = [_normalise_status(s) for s in statuses] if statuses else None
        with self._lock:
            now = self.now()
            created = self._factory.generate(
                n,
                seller_id=owner.selling_partner_id,
                marketplace_ids=owner.marketplace_ids,
                countries=countries,
                statuses=wanted,
                start=utc(start) if start else now - timedelta(days=7),
                now=now,
            )
            for order in created:
                self._orders[order.order_id] = order
        return [o.order_id for o in created]

    def update_order(self, order_id: str, *, status: str | None = None, delivered: bool = False) -> None:
        """Change an order as Amazon would (status, delivery) and bump its ``lastUpdated`` to now.

        ``delivered=True`` marks it shipped and delivered: its package reads DELIVERED and its phone is
        suppressed from then on. ``status`` takes a v2026 value (``UNSHIPPED``) or a v0 one (``Unshipped``).
        """
        with self._lock:
            order = self._order(order_id)
            now = self.now()
            if status is not None:
                order.status = _normalise_status(status)
            if delivered:
                order.status = "SHIPPED"
                order.delivered_at = now
            order.last_updated = max(order.last_updated, now.replace(microsecond=0))

    def edit_ship_to(self, order_id: str, **changes: Any) -> None:
        """Change fields of an order's delivery address (``ShipTo`` names) and bump its ``lastUpdated``.

        Amazon passes on whatever the buyer typed, so any text goes, a lone surrogate or a control character
        included (served as a JSON ``\\u`` escape, as Amazon's serialiser writes one).
        """
        with self._lock:
            order = self._order(order_id)
            order.ship_to = dataclasses.replace(order.ship_to, **changes)
            order.last_updated = max(order.last_updated, self.now().replace(microsecond=0))

    def _order(self, order_id: str) -> FakeOrder:
        try:
            return self._orders[order_id]
        except KeyError:
            raise FakeAmazonError(f"unknown order {order_id}") from None

    def orders(self, seller: str | None = None) -> dict[str, FakeOrder]:
        """A snapshot of the seller's orders by id: the truth a connector's result is compared with."""
        spid = self.seller(seller).selling_partner_id
        with self._lock:
            return {k: copy.copy(o) for k, o in self._orders.items() if o.seller_id == spid}

    def expected_label(self, order_id: str) -> dict[str, str | None]:
        """The ship-to fields a connector should store for this order now (None where absent or suppressed).

        Values are as v2026 serves them (``address_type`` RESIDENTIAL / COMMERCIAL); empty strings count as
        absent. An order without a shipping address (pending, cancelled, unfulfillable) gives all None.
        """
        with self._lock:
            order = self._order(order_id)
            now = self.now()
        ship = order.ship_to
        fields: dict[str, str | None] = {
            "name": ship.name,
            "company": ship.company,
            "address_line1": ship.address_line1,
            "address_line2": ship.address_line2,
            "address_line3": ship.address_line3,
            "city": ship.city,
            "district_or_county": ship.district_or_county,
            "state_or_region": ship.state_or_region,
            "municipality": ship.municipality,
            "postal_code": ship.postal_code,
            "country_code": ship.country_code,
            "phone": None if order.phone_suppressed(now) else ship.phone,
            "address_type": ship.address_type,
        }
        if not order.has_address:
            return dict.fromkeys(fields)
        return {k: v or None for k, v in fields.items()}

    def buyer_pii_strings(self) -> set[str]:
        """Every buyer name, company, street line, phone, e-mail and tax number the fake serves or can serve."""
        found: set[str] = set()
        with self._lock:
            orders = list(self._orders.values())
        for o in orders:
            s = o.ship_to
            found.update((s.name, s.address_line1, s.phone, o.buyer_name, o.buyer_email))
            found.update(v for v in (s.company, s.address_line2, s.address_line3) if v)
            if o.tax is not None:
                found.update((o.tax.legal_name, o.tax.registration_number))
        if self.sandbox:
            for op in operations_of(MARKETPLACE_APIS).values():
                for ex in op.examples:
                    found.update(_pii_values(ex.response))
        found.discard("")
        return found

    # --- fault injection ------------------------------------------------------------------------------------

    def inject(self, *, status: int, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (of ``operation``, or any) answer ``status`` with Amazon's error body.

        429 QuotaExceeded, 500 InternalFailure, 503 ServiceUnavailable, 400, 403, 404. Injected answers come
        before authentication and rate limiting, and spend no bucket token. ``operation=None`` matches any
        SP-API operation; the LWA token endpoint is hit only when named (``"lwaToken"``, OAuth error body).
        """
        if status not in FAULT_STATUSES:
            raise FakeAmazonError(f"status must be one of {sorted(FAULT_STATUSES)}")
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, status=status))

    def inject_delay(self, seconds: float, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests wait ``seconds`` before being handled (slow responses)."""
        self._check_operation(operation)
        with self._lock:
            self._delays.append(_Fault(count=count, operation=operation, seconds=seconds))

    def expire_tokens(self) -> None:
        """Every access token and RDT issued so far is expired from now on (403 Unauthorized)."""
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def mutate_while_paging(self, enabled: bool = True) -> None:
        """Between pages of a search, change one already-served and one not-yet-served order.

        Changes are status moves along the order's life (or a cancellation) with ``lastUpdated`` bumped to
        now; each is recorded in ``mutations`` as ``(order_id, old_status, new_status)``.
        """
        with self._lock:
            self._mutate_while_paging = enabled

    @staticmethod
    def _check_operation(operation: str | None) -> None:
        if operation is not None and operation != LWA_OPERATION and operation not in operations_of(SERVED_APIS):
            raise FakeAmazonError(f"unknown operation {operation}; known: {', '.join(operation_names())}")

    def _wait_latency(self) -> None:
        """The marketplace's distance: every call waits ``latency`` (a stopping fake stops waiting)."""
        if self.latency:
            self._stopping.wait(self.latency)

    def _take(self, queue: list[_Fault], operation: str) -> _Fault | None:
        """Spend one use of the first fault for ``operation`` (a fault without one matches any SP-API call)."""
        wildcard = operation != LWA_OPERATION
        with self._lock:
            for fault in queue:
                if fault.count > 0 and (fault.operation == operation or (wildcard and fault.operation is None)):
                    fault.count -= 1
                    if fault.count == 0:
                        queue.remove(fault)
                    return fault
        return None

    # --- observation ----------------------------------------------------------------------------------------

    def rate_limit(self, operation: str) -> tuple[float, int]:
        """The enforced (rate per second, burst) of an operation: the documented rate times ``speedup``."""
        op = operations()[operation]
        return op.rate * self.speedup, op.burst

    def min_calls_and_seconds(self, operation: str, calls: int) -> float:
        """The least wall time ``calls`` calls of ``operation`` can take: the burst at once, then one per refill."""
        if operation == LWA_OPERATION:
            return 0.0
        rate, burst = self.rate_limit(operation)
        return max(0, calls - burst) / rate

    def stats(self) -> dict[str, Any]:
        """Counters for a separate process (``GET /_fake/stats``)."""
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttled": dict(self.throttled),
                "validation_errors": list(self.validation_errors),
                "server_errors": list(self.server_errors),
                "orders": len(self._orders),
                "mutations": len(self.mutations),
                "speedup": self.speedup,
                "latency": self.latency,
                "sandbox": self.sandbox,
            }

    # --- WSGI -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # answer like Amazon, never with a traceback; record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _json_response(500, _error_body(500))
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(request)
        if path == "/auth/o2/token":
            return self._lwa(request)
        for op in operations_of(SERVED_APIS).values():
            params = op.match(request.method, path)
            if params is not None:
                return self._sp_api(op, request, params)
        return _json_response(404, _error_body(404))

    def _sp_api(self, op: Operation, request: Request, path_params: dict[str, str]) -> Response:
        with self._lock:
            self.calls[op.name] += 1
        self._wait_latency()
        delay = self._take(self._delays, op.name)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, op.name)
        if fault is not None:
            if fault.status == 429:
                with self._lock:
                    self.throttled[op.name] += 1
            return self._answer(op, fault.status, _error_body(fault.status))
        try:
            token = self._authenticate(request, op, path_params)
            bucket = self._bucket(token.seller_id, op)
            if not bucket.take():
                with self._lock:
                    self.throttled[op.name] += 1
                raise _Refusal(429)
            if self.sandbox:
                status, body = self._replay(op, request, path_params, token)
            else:
                status, body = self._operate(op, request, path_params, token)
        except _Refusal as refusal:
            status = refusal.status
            body = _error_body(refusal.status, refusal.message, code=refusal.code, details=refusal.details)
        response = self._answer(op, status, body)
        if op.name == "createShipment" and response.status_code == 200:
            held = self.mfn.held_answer()  # bought; the answer comes after the client stopped waiting
            if held:
                self._stopping.wait(held)
        return response

    def _answer(self, op: Operation, status: int, body: Any) -> Response:
        problems = schema_errors(op.name, status, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(problems)
            status, body = 500, _error_body(500)
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if status in op.rate_limit_header_codes:
            headers["x-amzn-RateLimit-Limit"] = f"{op.rate * self.speedup:g}"
        return _json_response(status, body, headers)

    def _bucket(self, seller_id: str, op: Operation) -> TokenBucket:
        with self._lock:
            key = (seller_id, op.name)
            if key not in self._buckets:
                self._buckets[key] = TokenBucket(op.rate * self.speedup, op.burst)
            return self._buckets[key]

    # --- authentication -------------------------------------------------------------------------------------

    def _lwa(self, request: Request) -> Response:
        with self._lock:
            self.calls[LWA_OPERATION] += 1
        self._wait_latency()
        delay = self._take(self._delays, LWA_OPERATION)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, LWA_OPERATION)
        if fault is not None:
            error = "server_error" if fault.status >= 500 else "invalid_request"
            return _json_response(fault.status, {"error": error, "error_description": "Injected fault"})
        if request.method != "POST":
            return _json_response(405, {"error": "invalid_request", "error_description": "POST required"})
        form = request.form
        if form.get("grant_type") != "refresh_token":
            return _json_response(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported",
                },
            )
        with self._lock:
            clients = {(s.client_id, s.client_secret) for s in self._sellers.values()}
            owner = next((s for s in self._sellers.values() if s.refresh_token == form.get("refresh_token")), None)
        if (form.get("client_id"), form.get("client_secret")) not in clients:
            return _json_response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if owner is None:
            return _json_response(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The request has an invalid grant parameter : refresh_token",
                },
            )
        access_token = "Atza|" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[access_token] = _AccessToken(
                seller_id=owner.selling_partner_id, kind="lwa", expires_at=self.now() + ACCESS_TOKEN_LIFETIME
            )
        body = {
            "access_token": access_token,
            "refresh_token": owner.refresh_token,
            "token_type": "bearer",
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
        return _json_response(200, body, {"Cache-Control": "no-store"})

    def _authenticate(self, request: Request, op: Operation, path_params: dict[str, str]) -> _AccessToken:
        presented = request.headers.get("x-amz-access-token", "")
        with self._lock:
            token = self._tokens.get(presented)
            now = self.now()
        if token is None:
            raise _Refusal(403)
        if token.revoked or now >= token.expires_at:
            if self.expiry_in_details:
                raise _Refusal(403, details=EXPIRED_MESSAGE)
            raise _Refusal(403, EXPIRED_MESSAGE)
        # An RDT opens only the restricted resources it was issued for.
        if token.kind == "rdt" and (
            op.name not in _RDT_OPERATIONS or not any(g.pattern.fullmatch(request.path) for g in token.grants)
        ):
            raise _Refusal(403)
        return token

    @staticmethod
    def _granted(token: _AccessToken, path: str) -> tuple[bool, frozenset[str]]:
        """Whether the token is an RDT covering ``path``, and the data elements it grants there."""
        if token.kind != "rdt":
            return False, frozenset()
        grants = [g for g in token.grants if g.pattern.fullmatch(path)]
        elements = frozenset().union(*(g.data_elements for g in grants)) if grants else frozenset()
        return bool(grants), elements

    # --- operations -----------------------------------------------------------------------------------------

    def _operate(
        self, op: Operation, request: Request, path_params: dict[str, str], token: _AccessToken
    ) -> tuple[int, Any]:
        handlers: dict[str, Callable[[Request, dict[str, str], _AccessToken], tuple[int, Any]]] = {
            "searchOrders": self._search_orders,
            "getOrder": self._get_order,
            "getOrders": self._get_orders_v0,
            "getOrderV0": self._get_order_v0,
            "getOrderAddress": self._get_order_address,
            "getOrderBuyerInfo": self._get_order_buyer_info,
            "createRestrictedDataToken": self._create_rdt,
            "getOrderItems": self._get_order_items,
            "confirmShipment": self._confirm_shipment,
        }
        if op.api == "mfn":
            return self._merchant_fulfillment(op, request, path_params, token)
        handler = handlers.get(op.name)
        if handler is None:
            raise _Refusal(404, f"The fake marketplace does not implement {op.name} outside sandbox mode.")
        return handler(request, path_params, token)

    def _merchant_fulfillment(
        self, op: Operation, request: Request, path: dict[str, str], token: _AccessToken
    ) -> tuple[int, Any]:
        """A Merchant Fulfillment operation (``mfn.py``), its request body checked against the model first."""
        if op.name not in MFN_SERVED:
            raise _Refusal(404, f"The fake marketplace does not implement {op.name} outside sandbox mode.")
        raw = request.get_data(as_text=True)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise _Refusal(400, "The request body is not valid JSON.") from None
        problems = request_errors(op.name, body)
        if problems:
            with self._lock:
                self.refused_requests.extend(problems)
            raise _Refusal(400, "Request is missing or has invalid parameters", code="InvalidInput")
        full_path = request.full_path.rstrip("?")
        with self._lock:
            try:
                return self.mfn.operate(
                    op.name, seller_id=token.seller_id, orders=self._orders, path=path, full_path=full_path,
                    body=body, raw=raw, now=self.now(),
                )  # fmt: skip
            except Refused as refused:
                raise _Refusal(refused.status, refused.message, code=refused.code) from None

    def _seller_order(self, token: _AccessToken, order_id: str) -> FakeOrder:
        order = self._orders.get(order_id)
        if order is None or order.seller_id != token.seller_id:
            raise _Refusal(404, f"Order {order_id} was not found.")  # order ids are not PII
        return order

    def _get_order(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        included = _list_param(request.args, "includedData", operations()["getOrder"])
        with self._lock:
            order = self._seller_order(token, path["orderId"])
            return 200, {"order": render.order_v2026(order, included, now=self.now())}

    def _get_order_v0(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        _, elements = self._granted(token, request.path)
        with self._lock:
            order = self._seller_order(token, path["orderId"])
            return 200, {"payload": render.order_v0(order, data_elements=elements, now=self.now())}

    def _get_order_address(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        covered, _ = self._granted(token, request.path)
        with self._lock:
            order = self._seller_order(token, path["orderId"])
            return 200, {"payload": render.order_address_v0(order, pii=covered, now=self.now())}

    def _get_order_buyer_info(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        covered, _ = self._granted(token, request.path)
        with self._lock:
            order = self._seller_order(token, path["orderId"])
            return 200, {"payload": render.order_buyer_info_v0(order, pii=covered)}

    def _get_order_items(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        """``getOrderItems`` (v0): the order's items, their quantities ordered and shipped (no buyer data),
        :attr:`items_per_page` at a time; a ``NextToken`` is good for the order it was given for only."""
        with self._lock:
            order = self._seller_order(token, path["orderId"])
            start = 0
            if "NextToken" in request.args:
                page = self._item_pages.get(request.args["NextToken"])
                if page is None or page[0] != order.order_id:
                    raise _Refusal(400, "Invalid NextToken.", code="InvalidInput")
                start = page[1]
            shipped = order.status == "SHIPPED"
            items = [
                {
                    "ASIN": item.asin,
                    "OrderItemId": item.order_item_id,
                    "SellerSKU": item.seller_sku,
                    "Title": item.title,
                    "QuantityOrdered": item.quantity,
                    "QuantityShipped": item.quantity if shipped else 0,
                }
                for item in order.items
            ]
            end = len(items) if self.items_per_page is None else start + self.items_per_page
            payload: dict[str, Any] = {"AmazonOrderId": order.order_id, "OrderItems": items[start:end]}
            if end < len(items):
                next_token = secrets.token_urlsafe(16)
                self._item_pages[next_token] = (order.order_id, end)
                payload["NextToken"] = next_token
            return 200, {"payload": payload}

    def _confirm_shipment(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        """``confirmShipment`` (v0): the package with its carrier and tracking; the order becomes Shipped.

        The body must be what the model allows (no field it doesn't define either); the marketplace must be
        the order's, the order unshipped or partly shipped, each item one of the order's for at most its
        quantity, and a ``carrierCode`` of ``Other`` needs a ``carrierName`` (as the model says). 204, no body.
        """
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _Refusal(400, "The request body is not valid JSON.") from None
        problems = request_errors("confirmShipment", body) + _undefined_confirmation_fields(body)
        if problems:
            with self._lock:
                self.refused_requests.extend(problems)
            raise _Refusal(400, "Request is missing or has invalid parameters", code="InvalidInput")
        package = body["packageDetail"]
        with self._lock:
            order = self._seller_order(token, path["orderId"])
            if body["marketplaceId"] != order.marketplace_id:
                raise _Refusal(400, "The marketplace is not the order's.", code="InvalidInput")
            if order.status not in ("UNSHIPPED", "PARTIALLY_SHIPPED"):
                raise _Refusal(400, "The order cannot be confirmed in its status.", code="InvalidInput")
            if package["carrierCode"] == "Other" and not package.get("carrierName"):
                raise _Refusal(400, "carrierName is required when carrierCode is Other.", code="InvalidInput")
            quantities = {item.order_item_id: item.quantity for item in order.items}
            for entry in package["orderItems"]:
                if not 0 < entry["quantity"] <= quantities.get(entry["orderItemId"], 0):
                    raise _Refusal(400, "An order item or its quantity is invalid.", code="InvalidInput")
            order.status = "SHIPPED"
            order.last_updated = max(order.last_updated, self.now().replace(microsecond=0))
            self.confirmations.append((order.order_id, copy.deepcopy(package)))
        return 204, None

    def _create_rdt(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _Refusal(400, "The request body is not valid JSON.") from None
        resources = body.get("restrictedResources") if isinstance(body, dict) else None
        if not isinstance(resources, list) or not resources:
            raise _Refusal(400, "Request is missing or has invalid parameters", code="InvalidRequest")
        grants = []
        for resource in resources:
            grants.append(_grant(resource))
        rdt = "Atz.sprdt|" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[rdt] = _AccessToken(
                seller_id=token.seller_id,
                kind="rdt",
                expires_at=self.now() + ACCESS_TOKEN_LIFETIME,
                grants=tuple(grants),
            )
        return 200, {"restrictedDataToken": rdt, "expiresIn": int(ACCESS_TOKEN_LIFETIME.total_seconds())}

    # --- searching ------------------------------------------------------------------------------------------

    def _search_orders(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        op = operations()["searchOrders"]
        args = request.args
        included = _list_param(args, "includedData", op)
        page_size = _page_size(args, "maxResultsPerPage")
        paging_token = args.get("paginationToken")
        with self._lock:
            seller = self._sellers[token.seller_id]
            now = self.now()
            if paging_token:
                paging = self._resume("orders2026", paging_token, token.seller_id, now)
                query, cursor, served = paging.query, paging.cursor, paging.served
                page_size = page_size or paging.page_size
            else:
                marketplaces = _list_param(args, "marketplaceIds", op) or list(seller.marketplace_ids)
                statuses = _list_param(args, "fulfillmentStatuses", op)
                fulfilled_by = _list_param(args, "fulfilledBy", op)
                query = _date_query(
                    args,
                    names=("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore"),
                    seller_id=token.seller_id,
                    now=now,
                    marketplace_ids=frozenset(marketplaces),
                    statuses=frozenset(statuses) if statuses else None,
                    fulfilled_by=frozenset(fulfilled_by) if fulfilled_by else None,
                )
                cursor, served = (datetime.min.replace(tzinfo=UTC), ""), frozenset()
            page, next_token = self._page("orders2026", query, cursor, served, page_size or MAX_PAGE_SIZE, now)
            body: dict[str, Any] = {"orders": [render.order_v2026(o, included, now=now) for o in page]}
        if next_token:
            body["pagination"] = {"nextToken": next_token}
        body["createdBefore" if query.by == "created" else "lastUpdatedBefore"] = render.iso(query.before)
        return 200, body

    def _get_orders_v0(self, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        op = operations()["getOrders"]
        args = request.args
        marketplaces = _list_param(args, "MarketplaceIds", op)
        if not marketplaces:
            raise _Refusal(400, "MarketplaceIds is required.")
        page_size = _page_size(args, "MaxResultsPerPage")
        _, elements = self._granted(token, request.path)
        paging_token = args.get("NextToken")
        with self._lock:
            now = self.now()
            if paging_token:
                paging = self._resume("ordersV0", paging_token, token.seller_id, now)
                query, cursor, served = paging.query, paging.cursor, paging.served
                page_size = page_size or paging.page_size
            else:
                v0_statuses = _list_param(args, "OrderStatuses", op)
                unknown = [s for s in v0_statuses if s not in FROM_V0_STATUS]
                if unknown:
                    raise _Refusal(400, f"Invalid OrderStatuses value: {unknown[0]}")
                channels = _list_param(args, "FulfillmentChannels", op)
                if any(c not in ("AFN", "MFN") for c in channels):
                    raise _Refusal(400, "FulfillmentChannels must be AFN or MFN.")
                order_ids = _list_param(args, "AmazonOrderIds", op)
                query = _date_query(
                    args,
                    names=("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore"),
                    seller_id=token.seller_id,
                    now=now,
                    marketplace_ids=frozenset(marketplaces),
                    statuses=frozenset(FROM_V0_STATUS[s] for s in v0_statuses) if v0_statuses else None,
                    fulfilled_by=frozenset("AMAZON" if c == "AFN" else "MERCHANT" for c in channels)
                    if channels
                    else None,
                    order_ids=frozenset(order_ids) if order_ids else None,
                )
                cursor, served = (datetime.min.replace(tzinfo=UTC), ""), frozenset()
            page, next_token = self._page("ordersV0", query, cursor, served, page_size or MAX_PAGE_SIZE, now)
            payload: dict[str, Any] = {"Orders": [render.order_v0(o, data_elements=elements, now=now) for o in page]}
        if next_token:
            payload["NextToken"] = next_token
        payload["CreatedBefore" if query.by == "created" else "LastUpdatedBefore"] = render.iso(query.before)
        return 200, {"payload": payload}

    def _resume(self, api: str, paging_token: str, seller_id: str, now: datetime) -> _Paging:
        paging = self._paging.get(paging_token)
        if paging is None or paging.api != api or paging.query.seller_id != seller_id:
            raise _Refusal(400, "Invalid pagination token.")
        if now - paging.issued_at > self.pagination_token_lifetime:
            raise _Refusal(400, "The pagination token has expired.")
        if self._mutate_while_paging and not paging.mutated:
            paging.mutated = True
            self._mutate(paging, now)
        return paging

    def _page(
        self,
        api: str,
        query: _Query,
        cursor: tuple[datetime, str],
        served: frozenset[str],
        size: int,
        now: datetime,
    ) -> tuple[list[FakeOrder], str | None]:
        """One page after ``cursor`` in (lastUpdated, orderId) order, and the token for the next (None: last)."""
        rest = sorted((o for o in self._orders.values() if query.matches(o) and _sort_key(o) > cursor), key=_sort_key)
        page = rest[:size]
        if len(rest) <= size:
            return page, None
        next_token = secrets.token_urlsafe(24)
        lifetime = self.pagination_token_lifetime
        self._paging = {k: p for k, p in self._paging.items() if now - p.issued_at <= lifetime}
        self._paging[next_token] = _Paging(
            api=api,
            query=query,
            cursor=_sort_key(page[-1]),
            page_size=size,
            issued_at=now,
            served=served | {o.order_id for o in page},
        )
        return page, next_token

    def _mutate(self, paging: _Paging, now: datetime) -> None:
        """Change one order already served by this search and one it has yet to serve."""
        matching = sorted((o for o in self._orders.values() if paging.query.matches(o)), key=_sort_key)
        served = [o for o in matching if o.order_id in paging.served]
        upcoming = [o for o in matching if o.order_id not in paging.served and _sort_key(o) > paging.cursor]
        rng = self._mutation_rng
        for group, cancel in ((served, False), (upcoming, True)):
            if not group:
                continue
            order = rng.choice(group)
            old = order.status
            if cancel and old in ("PENDING_AVAILABILITY", "PENDING", "UNSHIPPED"):
                order.status = "CANCELLED"
            else:
                order.status = _NEXT_STATUS.get(old, old)
            order.last_updated = max(order.last_updated, now.replace(microsecond=0))
            self.mutations.append((order.order_id, old, order.status))

    # --- sandbox --------------------------------------------------------------------------------------------

    def _replay(self, op: Operation, request: Request, path: dict[str, str], token: _AccessToken) -> tuple[int, Any]:
        """Amazon's sandbox: the most specific static example whose parameters all match the request."""
        example = match_example(op, sandbox_parameters(op, request, path))
        if example is None:
            raise _Refusal(400, "No sandbox example matches the request parameters.")
        if op.name == "createRestrictedDataToken" and example.status == 200:
            grants = tuple(
                _grant({"method": "GET", "path": p, "dataElements": sorted(e or ())}) for p, e in _RESTRICTED.items()
            )
            with self._lock:
                self._tokens[example.response["restrictedDataToken"]] = _AccessToken(
                    seller_id=token.seller_id, kind="rdt", expires_at=self.now() + ACCESS_TOKEN_LIFETIME, grants=grants
                )
        return example.status, copy.deepcopy(example.response) if example.status != 204 else None

    # --- control endpoints ----------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        """JSON endpoints under ``/_fake/`` so another process (benchmark, demo) can drive the fake."""
        try:
            return self._control_route(request)
        except (FakeAmazonError, ValueError, TypeError, KeyError) as exc:
            return _json_response(400, {"error": type(exc).__name__, "message": str(exc)})

    def _control_route(self, request: Request) -> Response:
        path, method = request.path.removeprefix("/_fake"), request.method
        body: dict[str, Any] = (request.get_json(silent=True) or {}) if method == "POST" else {}
        if (method, path) == ("GET", "/stats"):
            return _json_response(200, self.stats())
        if (method, path) == ("GET", "/seller"):
            return _json_response(200, _seller_json(self.seller(request.args.get("id"))))
        if (method, path) == ("POST", "/sellers"):
            seller = self.add_seller(body["selling_partner_id"], marketplace_ids=body.get("marketplace_ids"))
            return _json_response(201, _seller_json(seller))
        if (method, path) == ("POST", "/orders"):
            start = body.get("start")
            ids = self.generate_orders(
                int(body.get("n", 1)),
                seller=body.get("seller"),
                countries=body.get("countries") or COUNTRIES,
                statuses=body.get("statuses"),
                start=datetime.fromisoformat(start) if start else None,
            )
            return _json_response(201, {"order_ids": ids})
        found = re.fullmatch(r"/orders/([^/]+)(/expected-label)?", path)
        if found and method == "GET":
            if found.group(2):
                return _json_response(200, self.expected_label(found.group(1)))
            return _json_response(200, _order_json(self._order(found.group(1))))
        if found and method == "POST" and not found.group(2):
            self.update_order(found.group(1), status=body.get("status"), delivered=bool(body.get("delivered")))
            return _json_response(200, _order_json(self._order(found.group(1))))
        if (method, path) == ("POST", "/inject"):
            self.inject(status=int(body["status"]), count=int(body.get("count", 1)), operation=body.get("operation"))
            return _json_response(204, None)
        if (method, path) == ("POST", "/delay"):
            self.inject_delay(float(body["seconds"]), count=int(body.get("count", 1)), operation=body.get("operation"))
            return _json_response(204, None)
        if (method, path) == ("POST", "/expire-tokens"):
            self.expire_tokens()
            return _json_response(204, None)
        if (method, path) == ("POST", "/mutate-while-paging"):
            self.mutate_while_paging(bool(body.get("enabled", True)))
            return _json_response(204, None)
        if (method, path) == ("POST", "/reset-stats"):
            with self._lock:
                self.calls.clear()
                self.throttled.clear()
            return _json_response(204, None)
        return _json_response(404, {"error": "NotFound", "message": f"no control endpoint {method} {path}"})


_FULFILLED_BY = {"AFN": "AMAZON", "MFN": "MERCHANT"}
_NEXT_STATUS = {
    "PENDING_AVAILABILITY": "PENDING",
    "PENDING": "UNSHIPPED",
    "UNSHIPPED": "SHIPPED",
    "PARTIALLY_SHIPPED": "SHIPPED",
}


def _undefined_confirmation_fields(body: Any) -> list[str]:
    """Fields of a ``confirmShipment`` body the model doesn't define (the model doesn't say no to them; the
    fake does, so a misspelt field fails a test instead of being dropped silently at Amazon)."""
    if not isinstance(body, dict):
        return []
    definitions = load_models()["ordersV0"]["definitions"]
    levels: list[tuple[str, Any, str]] = [("", body, "ConfirmShipmentRequest")]
    package = body.get("packageDetail")
    levels.append(("packageDetail/", package, "PackageDetail"))
    if isinstance(package, dict) and isinstance(package.get("orderItems"), list):
        levels.extend(("packageDetail/orderItems/", item, "ConfirmShipmentOrderItem") for item in package["orderItems"])
    found: list[str] = []
    for where, value, name in levels:
        if isinstance(value, dict):
            defined = definitions[name].get("properties", {})
            found.extend(f"confirmShipment request: {where}{key} is not defined" for key in value if key not in defined)
    return found


def operation_names() -> list[str]:
    """Every name ``calls``, ``throttled``, ``inject`` and ``min_calls_and_seconds`` know."""
    return [LWA_OPERATION, *operations_of(SERVED_APIS)]


def _normalise_status(status: str) -> str:
    if status in FULFILLMENT_STATUSES:
        return status
    if status in FROM_V0_STATUS:
        return FROM_V0_STATUS[status]
    raise FakeAmazonError(f"unknown status {status!r}; use one of {', '.join(FULFILLMENT_STATUSES)}")


def _error_body(
    status: int, message: str | None = None, *, code: str | None = None, details: str | None = None
) -> dict[str, Any]:
    default_code, default_message = _ERROR_MESSAGES.get(status, ("InternalFailure", "Unexpected error."))
    error = {"code": code or default_code, "message": message or default_message}
    if details:
        error["details"] = details
    return {"errors": [error]}


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = "" if body is None else json.dumps(body, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escape it (valid JSON, as Amazon sends it)
        text = json.dumps(body)
    response = Response(text, status=status, headers=headers)
    if body is not None:
        response.content_type = "application/json"
    return response


def _list_param(args: MultiDict[str, str], name: str, op: Operation) -> list[str]:
    """An array query parameter: comma-separated (Swagger's csv) and/or repeated, checked against its enum."""
    values = [v for raw in args.getlist(name) for v in raw.split(",") if v]
    spec = op.parameter(name)
    if spec is not None:
        if spec.enum is not None:
            bad = [v for v in values if v not in spec.enum]
            if bad:
                raise _Refusal(400, f"Invalid {name} value: {bad[0]}")
        if spec.max_items is not None and len(values) > spec.max_items:
            raise _Refusal(400, f"{name} accepts at most {spec.max_items} values.")
    return values


def _page_size(args: MultiDict[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        size = int(raw)
    except ValueError:
        raise _Refusal(400, f"{name} must be an integer.") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _Refusal(400, f"{name} must be between 1 and {MAX_PAGE_SIZE}.")
    return size


def _time_param(args: MultiDict[str, str], name: str) -> datetime | None:
    raw = args.get(name)
    if raw is None:
        return None
    try:
        return utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise _Refusal(400, f"{name} must be an ISO 8601 date-time.") from None


def _date_query(
    args: MultiDict[str, str],
    *,
    names: tuple[str, str, str, str],
    seller_id: str,
    now: datetime,
    marketplace_ids: frozenset[str],
    statuses: frozenset[str] | None = None,
    fulfilled_by: frozenset[str] | None = None,
    order_ids: frozenset[str] | None = None,
) -> _Query:
    """The date window of a search, enforcing Amazon's rules.

    Exactly one of created-after / last-updated-after (v0 may use AmazonOrderIds instead); a before only
    with its own after; the before at least two minutes before now (it defaults to exactly that).
    """
    created_after_name, created_before_name, updated_after_name, updated_before_name = names
    created_after, created_before = _time_param(args, created_after_name), _time_param(args, created_before_name)
    updated_after, updated_before = _time_param(args, updated_after_name), _time_param(args, updated_before_name)
    latest = now - SETTLE_TIME
    if created_after is not None and updated_after is not None:
        raise _Refusal(400, f"Provide exactly one of {created_after_name} and {updated_after_name}.")
    if created_after is None and updated_after is None and order_ids is None:
        raise _Refusal(400, f"Provide exactly one of {created_after_name} and {updated_after_name}.")
    if (created_before is not None and created_after is None) or (updated_before is not None and updated_after is None):
        raise _Refusal(400, f"A ...Before parameter needs its ...After: {created_after_name} or {updated_after_name}.")
    by: Literal["created", "updated"] = "created" if updated_after is None else "updated"
    after = created_after if by == "created" else updated_after
    before = created_before if by == "created" else updated_before
    if before is not None and before > latest:
        name = created_before_name if by == "created" else updated_before_name
        raise _Refusal(400, f"{name} must be at least two minutes before the time of the request.")
    if after is not None and after > now:
        raise _Refusal(400, "The ...After date must not be in the future.")
    if after is not None and before is not None and before < after:
        raise _Refusal(400, "The ...Before date must be equal to or after the ...After date.")
    return _Query(
        seller_id=seller_id,
        by=by,
        after=after,
        before=before or latest,
        marketplace_ids=marketplace_ids,
        statuses=statuses,
        fulfilled_by=fulfilled_by,
        order_ids=order_ids,
    )


def _grant(resource: Any) -> _Grant:
    """The grant for one ``restrictedResources`` entry, or a 400 if the Tokens API would refuse it."""
    if not isinstance(resource, dict) or resource.get("method") != "GET" or not isinstance(resource.get("path"), str):
        raise _Refusal(400, "Request is missing or has invalid parameters", code="InvalidRequest")
    path: str = resource["path"]
    elements = resource.get("dataElements") or []
    for generic, allowed in _RESTRICTED.items():
        generic_re = re.escape(generic).replace(re.escape("{orderId}"), r"(\{orderId\}|[0-9A-Za-z-]+)")
        if not re.fullmatch(generic_re, path):
            continue
        if allowed is not None and not elements:
            raise _Refusal(400, f"dataElements is required for {generic}.")
        if allowed is not None and any(e not in allowed for e in elements):
            raise _Refusal(400, "Application does not have access to one or more requested data elements.")
        if allowed is None and elements:
            raise _Refusal(400, f"dataElements is not supported for {generic}.")
        pattern = re.escape(path).replace(re.escape("{orderId}"), "[^/]+")
        return _Grant(pattern=re.compile(pattern), data_elements=frozenset(elements))
    raise _Refusal(400, "Request is missing or has invalid parameters", code="InvalidRequest")


def sandbox_parameters(op: Operation, request: Request, path: dict[str, str]) -> dict[str, Any]:
    """A request's parameters as a sandbox example states them (arrays as lists, the JSON body as ``body``)."""
    params: dict[str, Any] = dict(path)
    for spec in op.parameters:
        if spec.location != "query" or spec.name not in request.args:
            continue
        if spec.type == "array":
            params[spec.name] = [v for raw in request.args.getlist(spec.name) for v in raw.split(",") if v]
        elif spec.type == "integer":
            try:
                params[spec.name] = int(request.args[spec.name])
            except ValueError:
                params[spec.name] = request.args[spec.name]
        elif spec.type == "boolean":
            params[spec.name] = request.args[spec.name].lower() == "true"
        else:
            params[spec.name] = request.args[spec.name]
    data = request.get_data(as_text=True)
    if data:
        try:
            params["body"] = json.loads(data)
        except ValueError:
            params["body"] = data
    return params


def match_example(op: Operation, params: dict[str, Any]) -> SandboxExample | None:
    """The example with the most parameters, all equal to the request's (model order breaks ties)."""
    candidates = [ex for ex in op.examples if all(params.get(k) == v for k, v in ex.parameters.items())]
    if not candidates:
        return None
    return max(candidates, key=lambda ex: (len(ex.parameters), -op.examples.index(ex)))


def _pii_values(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _PII_KEYS and isinstance(item, str):
                yield item
            else:
                yield from _pii_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pii_values(item)


def _seller_json(seller: Seller) -> dict[str, Any]:
    return {
        "selling_partner_id": seller.selling_partner_id,
        "client_id": seller.client_id,
        "client_secret": seller.client_secret,
        "refresh_token": seller.refresh_token,
        "marketplace_ids": list(seller.marketplace_ids),
    }


def _order_json(order: FakeOrder) -> dict[str, Any]:
    """An order's non-PII metadata, for the control API."""
    return {
        "order_id": order.order_id,
        "seller_id": order.seller_id,
        "marketplace_id": order.marketplace_id,
        "status": order.status,
        "fulfilled_by": order.fulfilled_by,
        "created": render.iso(order.created),
        "last_updated": render.iso(order.last_updated),
        "latest_delivery": render.iso(order.latest_delivery),
        "delivered": order.delivered_at is not None,
        "country_code": order.country_code,
    }
