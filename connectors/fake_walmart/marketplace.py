"""The fake Walmart Marketplace: a real HTTP server speaking the Token API and the Orders API (US).

One ``FakeWalmart`` is a WSGI application served by werkzeug in a background thread. Requests pass the same
steps as at Walmart, each able to answer early::

    route -> count -> injected delay -> injected fault -> required headers (400) -> access token (401)
          -> the API's token bucket (429) -> the operation (400 / 404 / 200) -> schema check (500 if it fails)

Every body it answers with is checked against Walmart's schema for it (``models.schema_errors``); a failure
is recorded in ``validation_errors`` (which tests keep empty) and answered as 500. Nothing is logged per
request: the fake serves buyer data and must not leak it into logs.

Paging is Walmart's: ``meta.nextCursor`` is a query string (``?limit=..&hasMoreElements=true&soIndex=..&
poIndex=..&...``) that the client appends to ``/v3/orders``; it carries the window and an offset, and no
state is kept between pages. So an order that changes while a client pages moves within (or out of) the
window and the offsets of the orders after it shift, as they would at Walmart: ``meta.totalCount`` tells.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import dataclasses
import json
import random
import re
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from connectors.fake_amazon.limits import TokenBucket
from connectors.fakeserver import QuietRequestHandler, ServedFake, client_went_away

from .data import NEXT_STATUS, FakeOrder, LineStatus, OrderFactory, millis, utc
from .models import Operation, operations, request_errors, request_validator, schema_errors

ACCESS_TOKEN_LIFETIME = timedelta(seconds=900)
MAX_LIMIT = 200
DEFAULT_LIMIT = 100
TOKEN_OPERATION = "tokenAPI"  # noqa: S105 - an operationId, not a secret
FAULT_STATUSES = frozenset({400, 401, 404, 429, 500, 503})
#: What the fake says is the seller's ship node type; the only one it serves.
SHIP_NODE_TYPE = "SellerFulfilled"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_REQUEST_PARAM.GMP_ORDER_API", "Invalid request parameter"),
    401: ("UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized token or invalid token"),
    404: ("CONTENT_NOT_FOUND.GMP_ORDER_API", "No order found"),
    429: ("REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API", "Too many requests"),
    500: ("SYSTEM_ERROR.GMP_GATEWAY_API", "Internal error"),
    503: ("SERVICE_UNAVAILABLE.GMP_GATEWAY_API", "Service unavailable"),
}


class FakeWalmartError(Exception):
    """Misuse of the fake's control API (unknown order, seller, status or operation)."""


class _Refusal(Exception):
    """A Walmart error answer raised from inside an operation."""

    def __init__(self, status: int, info: str | None = None) -> None:
        super().__init__(info or _ERRORS[status][1])
        self.status = status
        self.info = info or _ERRORS[status][1]


@dataclass(frozen=True)
class Seller:
    """A seller registered with the fake, with its (fake) API key: client id and client secret."""

    seller_id: str
    client_id: str
    client_secret: str = field(repr=False)


@dataclass
class _AccessToken:
    seller_id: str
    expires_at: datetime
    revoked: bool = False


@dataclass
class _Fault:
    count: int
    operation: str | None
    status: int = 0
    seconds: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class _Window:
    """The filters of one ``getAllOrders`` query (the first page's, or the cursor's)."""

    modified_after: datetime | None
    modified_before: datetime | None
    created_after: datetime | None
    created_before: datetime | None
    status: str | None
    purchase_order_id: str | None

    def matches(self, order: FakeOrder) -> bool:
        changed = order.last_modified
        return (
            (self.modified_after is None or changed >= self.modified_after)
            and (self.modified_before is None or changed <= self.modified_before)
            and (self.created_after is None or order.order_date >= self.created_after)
            and (self.created_before is None or order.order_date <= self.created_before)
            and (self.status is None or self.status in order.line_statuses)
            and (self.purchase_order_id is None or order.purchase_order_id == self.purchase_order_id)
        )


class _QuietRequestHandler(QuietRequestHandler):
    """No per-request log lines (the base's), and Walmart's header names kept.

    werkzeug's server drops every header whose name has an underscore (so ``X_Forwarded`` can't pose as
    ``X-Forwarded``), and all of Walmart's have one (``WM_SEC.ACCESS_TOKEN``, ``WM_QOS.CORRELATION_ID``,
    ``WM_SVC.NAME``): they are put back, as a WSGI server that keeps them would.
    """

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        for key, value in self.headers.items():
            if "_" in key:
                environ["HTTP_" + key.upper().replace("-", "_")] = value.replace("\r\n", "")
        return environ


class FakeWalmart(ServedFake):
    """A fake Walmart Marketplace (US): Token API, All orders, An order, over real HTTP.

    ``speedup`` multiplies every API's refill rate (the bucket size stays the documented per-minute
    allotment); ``rate_limits`` overrides the documented requests per minute per operation (a test that
    wants real 429s without 5000 calls); ``clock`` is the marketplace's "now" (default: the system clock).
    """

    DEFAULT_SELLER: ClassVar[Seller] = Seller(
        seller_id="101010",
        client_id="0f4ce1ab-e1va-417f-a4e0-000000000001",
        client_secret="fake-walmart-default-client-secret-0000000000000001",  # noqa: S106 - fake
    )

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Mapping[str, int] | None = None,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self.seed = seed
        super().__init__(host=host, port=port)
        self._per_minute = {name: op.per_minute for name, op in operations().items() if op.per_minute}
        for name, limit in (rate_limits or {}).items():
            self._check_operation(name)
            if limit < 1:
                raise ValueError("a rate limit is at least one request per minute")
            self._per_minute[name] = limit
        self._clock = clock or (lambda: datetime.now().astimezone())
        self._lock = threading.RLock()
        self._factory = OrderFactory(seed)
        self._mutation_rng = random.Random(seed + 1)  # noqa: S311 - test data, not secrets
        self._sellers: dict[str, Seller] = {}
        self._orders: dict[str, FakeOrder] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._mutate_while_paging = False
        self._mutated_windows: set[_Window] = set()
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []
        self.mutations: list[tuple[str, str, str]] = []
        #: Each ``shippingUpdates`` taken: (purchase order id, the lines' ``orderLine`` entries as sent).
        self.shipments: list[tuple[str, list[dict[str, Any]]]] = []
        #: Why request bodies were refused as breaking Walmart's schema (PII-free: paths and rules only).
        self.refused_requests: list[str] = []
        self._sellers[self.DEFAULT_SELLER.seller_id] = self.DEFAULT_SELLER

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-walmart"
    already_started = FakeWalmartError
    request_handler = _QuietRequestHandler
    # base_url (ServedFake's) is the API base URL (Walmart's ``https://marketplace.walmartapis.com``),
    # e.g. ``http://127.0.0.1:8500``.

    @property
    def token_url(self) -> str:
        """The full token URL (Walmart's ``https://marketplace.walmartapis.com/v3/token``)."""
        return f"{self.base_url}/v3/token"

    def now(self) -> datetime:
        """The marketplace's current time (aware, UTC, whole milliseconds: Walmart's resolution)."""
        now = utc(self._clock())
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    # --- sellers and orders ---------------------------------------------------------------------------------

    def add_seller(self, seller_id: str) -> Seller:
        """Register another seller with its own API key (derived from the seed: reproducible)."""
        rng = random.Random(f"{self.seed}:{seller_id}")  # noqa: S311 - test data, not secrets
        seller = Seller(
            seller_id=seller_id,
            client_id=str(uuid.UUID(int=rng.getrandbits(128))),
            client_secret=f"fake-walmart-{rng.getrandbits(192):048x}",
        )
        with self._lock:
            if seller_id in self._sellers:
                raise FakeWalmartError(f"seller {seller_id} already exists")
            self._sellers[seller_id] = seller
        return seller

    def seller(self, seller_id: str | None = None) -> Seller:
        """A registered seller (the default one when no id is given)."""
        sid = seller_id or self.DEFAULT_SELLER.seller_id
        try:
            return self._sellers[sid]
        except KeyError:
            raise FakeWalmartError(f"unknown seller {sid}") from None

    def generate_orders(
        self,
        n: int,
        *,
        seller: str | None = None,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
    ) -> list[str]:
        """Create ``n`` purchase orders placed between ``start`` (default: 7 days ago) and now; their ids."""
        owner = self.seller(seller)
        unknown = [s for s in statuses or () if s not in NEXT_STATUS and s != "Cancelled" and s != "Delivered"]
        if unknown:
            raise FakeWalmartError(f"unknown line status {unknown[0]!r}")
        with self._lock:
            now = self.now()
            created = self._factory.generate(
                n,
                seller_id=owner.seller_id,
                start=utc(start) if start else now - timedelta(days=7),
                now=now,
                statuses=statuses,
            )
            for order in created:
                while order.purchase_order_id in self._orders:  # 13 random digits: a clash is rare, not impossible
                    order.purchase_order_id = str(int(order.purchase_order_id) + 1).zfill(13)
                self._orders[order.purchase_order_id] = order
        return [o.purchase_order_id for o in created]

    def update_order(self, order_id: str, *, status: str, lines: Sequence[str] | None = None) -> None:
        """Move the order's lines (all, or those numbered in ``lines``) to ``status``, dated now.

        Shipping a line gives it a tracking number; ``status="Cancelled"`` cancels the lines named. The
        order's last-modified time becomes now.
        """
        if status not in ("Created", "Acknowledged", "Shipped", "Delivered", "Cancelled"):
            raise FakeWalmartError(f"unknown line status {status!r}")
        with self._lock:
            order = self._order(order_id)
            now = self.now()
            chosen = [line for line in order.lines if lines is None or line.line_number in lines]
            if not chosen:
                raise FakeWalmartError(f"order {order_id} has no such lines")
            for line in chosen:
                tracking = next((s.tracking_number for s in line.statuses if s.tracking_number), None)
                if status in ("Shipped", "Delivered") and tracking is None:
                    tracking = f"{self._mutation_rng.getrandbits(64):020d}"[:20]
                line.statuses = [LineStatus(status, line.quantity, tracking if status != "Cancelled" else None)]
                line.status_date = max(line.status_date, now)

    def edit_ship_to(self, order_id: str, **changes: Any) -> None:
        """Change fields of an order's ``ShipTo`` (any text goes, as at Walmart) and date the change now."""
        with self._lock:
            order = self._order(order_id)
            order.ship_to = dataclasses.replace(order.ship_to, **changes)
            for line in order.lines:
                line.status_date = max(line.status_date, self.now())

    def _order(self, order_id: str) -> FakeOrder:
        try:
            return self._orders[order_id]
        except KeyError:
            raise FakeWalmartError(f"unknown order {order_id}") from None

    def orders(self, seller: str | None = None) -> dict[str, FakeOrder]:
        """A snapshot of the seller's orders by purchase order id: the truth a connector's result is compared with."""
        sid = self.seller(seller).seller_id
        with self._lock:
            return {k: copy.deepcopy(o) for k, o in self._orders.items() if o.seller_id == sid}

    def expected_label(self, order_id: str) -> dict[str, str | None]:
        """The ship-to fields a connector should store for this order now (None where absent).

        Raw, as Walmart serves them (a connector repairs text); the country as ISO 3166 alpha-2. An order
        whose every line is cancelled gives all None: there is nothing left to ship.
        """
        with self._lock:
            order = self._order(order_id)
            ship = copy.copy(order.ship_to)
            cancelled = order.line_statuses <= {"Cancelled"}
        fields: dict[str, str | None] = {
            "name": ship.name,
            "company": None,
            "address_line1": ship.address1,
            "address_line2": ship.address2,
            "address_line3": None,
            "city": ship.city,
            "district_or_county": None,
            "state_or_region": ship.state,
            "municipality": None,
            "postal_code": ship.postal_code,
            "country_code": "US" if ship.country == "USA" else ship.country,
            "phone": ship.phone,
            "address_type": ship.address_type,
        }
        if cancelled:
            return dict.fromkeys(fields)
        return {k: v or None for k, v in fields.items()}

    def buyer_pii_strings(self) -> set[str]:
        """Every recipient name, street line, phone and customer e-mail the fake serves or can serve."""
        with self._lock:
            orders = list(self._orders.values())
        found: set[str] = set()
        for o in orders:
            s = o.ship_to
            found.update((s.name, s.address1, s.phone, o.customer_email))
            if s.address2:
                found.add(s.address2)
        found.discard("")
        return found

    # --- fault injection ------------------------------------------------------------------------------------

    def inject(self, *, status: int, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (of ``operation``, or any orders call) answer ``status`` with Walmart's body.

        Injected answers come before authentication and rate limiting and spend no bucket token. The token
        API is hit only when named (``"tokenAPI"``).
        """
        if status not in FAULT_STATUSES:
            raise FakeWalmartError(f"status must be one of {sorted(FAULT_STATUSES)}")
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, status=status))

    def inject_drop(self, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests get no answer at all: the connection is closed."""
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, drop=True))

    def inject_delay(self, seconds: float, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests wait ``seconds`` before being handled (slow answers)."""
        self._check_operation(operation)
        with self._lock:
            self._delays.append(_Fault(count=count, operation=operation, seconds=seconds))

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on (401)."""
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def mutate_while_paging(self, enabled: bool = True) -> None:
        """When a search asks for its second page, change one order it has served and cancel one it hasn't.

        Once per window. Each change is recorded in ``mutations`` as ``(order_id, old_status, new_status)``.
        """
        with self._lock:
            self._mutate_while_paging = enabled

    @staticmethod
    def _check_operation(operation: str | None) -> None:
        if operation is not None and operation not in operations():
            raise FakeWalmartError(f"unknown operation {operation}; known: {', '.join(operations())}")

    def _take(self, queue: list[_Fault], operation: str) -> _Fault | None:
        wildcard = operation != TOKEN_OPERATION
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
        """The enforced (refill per second, bucket size) of an API: its per-minute limit, refill times ``speedup``."""
        per_minute = self._per_minute[operation]
        return per_minute / 60 * self.speedup, per_minute

    def min_calls_and_seconds(self, operation: str, calls: int) -> float:
        """The least wall time ``calls`` calls of ``operation`` can take: the bucket at once, then one per refill."""
        if operation not in self._per_minute:
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
            }

    # --- WSGI -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except _Dropped:  # close the connection under the client: no status line, no body
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                connection.shutdown(socket.SHUT_RDWR)
            raise ConnectionResetError("dropped by the fake") from None  # werkzeug ends such a request quietly
        except Exception as exc:  # answer like Walmart, never with a traceback; record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _json_response(500, _error_body(500))
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(request)
        ops = operations()
        # /v3/orders/released would match getAnOrder's pattern; the fake does not serve it.
        for op in (ops["tokenAPI"], ops["getAllOrders"], ops["getAnOrder"], ops["shippingUpdates"]):
            params = op.match(request.method, path)
            if params is not None and params.get("purchaseOrderId") != "released":
                return self._serve(op, request, params)
        return _json_response(404, _error_body(404, "No such resource"))

    def _serve(self, op: Operation, request: Request, path_params: dict[str, str]) -> Response:
        with self._lock:
            self.calls[op.name] += 1
        delay = self._take(self._delays, op.name)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, op.name)
        if fault is not None:
            if fault.drop:
                raise _Dropped
            if fault.status == 429:
                with self._lock:
                    self.throttled[op.name] += 1
            return self._answer(op, fault.status, _error_body(fault.status))
        headers: dict[str, str] = {}
        try:
            _require_headers(request)
            if op.name == TOKEN_OPERATION:
                status, body = self._token(request)
            else:
                token = self._authenticate(request)
                bucket = self._bucket(token.seller_id, op.name)
                allowed = bucket.take()
                headers["x-current-token-count"] = str(int(bucket.tokens))
                headers["x-next-replenishment-time"] = str(millis(self.now()) + int(1000 / bucket.rate))
                if not allowed:
                    with self._lock:
                        self.throttled[op.name] += 1
                    raise _Refusal(429)
                if op.name == "getAllOrders":
                    status, body = self._all_orders(request, token)
                elif op.name == "shippingUpdates":
                    status, body = self._ship_lines(request, path_params["purchaseOrderId"], token)
                else:
                    status, body = self._an_order(path_params["purchaseOrderId"], token)
        except _Refusal as refusal:
            status, body = refusal.status, _error_body(refusal.status, refusal.info)
        return self._answer(op, status, body, headers)

    def _answer(self, op: Operation, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        problems = schema_errors(op.name, status, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(problems)
            status, body = 500, _error_body(500)
        return _json_response(status, body, {"WM_QOS.CORRELATION_ID": str(uuid.uuid4()), **(headers or {})})

    def _bucket(self, seller_id: str, operation: str) -> TokenBucket:
        with self._lock:
            key = (seller_id, operation)
            if key not in self._buckets:
                rate, burst = self.rate_limit(operation)
                self._buckets[key] = TokenBucket(rate, burst)
            return self._buckets[key]

    # --- authentication -------------------------------------------------------------------------------------

    def _token(self, request: Request) -> tuple[int, Any]:
        """``POST /v3/token``: client credentials in a Basic header, ``grant_type=client_credentials``."""
        if request.form.get("grant_type") != "client_credentials":
            raise _Refusal(400, "grant_type must be client_credentials")
        auth = request.headers.get("Authorization", "")
        scheme, _, encoded = auth.partition(" ")
        try:
            client_id, _, client_secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _Refusal(401) from None
        with self._lock:
            owner = next(
                (s for s in self._sellers.values() if (s.client_id, s.client_secret) == (client_id, client_secret)),
                None,
            )
        if scheme.lower() != "basic" or owner is None:
            raise _Refusal(401)
        access_token = "eyJraWQiOi" + secrets.token_urlsafe(96)
        with self._lock:
            self._tokens[access_token] = _AccessToken(owner.seller_id, self.now() + ACCESS_TOKEN_LIFETIME)
        seconds = int(ACCESS_TOKEN_LIFETIME.total_seconds())
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": seconds}

    def _authenticate(self, request: Request) -> _AccessToken:
        presented = request.headers.get("WM_SEC.ACCESS_TOKEN", "")
        with self._lock:
            token = self._tokens.get(presented)
            now = self.now()
        if token is None or token.revoked or now >= token.expires_at:
            raise _Refusal(401)
        return token

    # --- operations -----------------------------------------------------------------------------------------

    def _an_order(self, order_id: str, token: _AccessToken) -> tuple[int, Any]:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.seller_id != token.seller_id:
                raise _Refusal(404)
            # getAnOrder's schema is the bare order with an ISO orderDate (its examples differ; see models.py).
            return 200, render_order(order, iso_order_date=True)

    def _ship_lines(self, request: Request, order_id: str, token: _AccessToken) -> tuple[int, Any]:
        """``POST /v3/orders/{purchaseOrderId}/shipping``: the lines named become Shipped with their tracking.

        The body must be what Walmart's schema allows (no field it doesn't define either); each line must be
        one of the order's, not shipped, delivered or cancelled already, for at most its quantity; the seller
        order id must be the order's; a carrier named as ``otherCarrier`` needs a ``trackingURL`` (the
        document's description says so, its schema can't). Answers the order with the lines shipped
        (``{"order": ...}``).
        """
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _Refusal(400, "The request body is not JSON") from None
        problems = request_errors("shippingUpdates", body) + _undefined_fields(
            request_validator("shippingUpdates").schema, body, "shippingUpdates request: "
        )
        if problems:  # the client's fault, answered 400 and kept apart from the fake's own validation_errors
            with self._lock:
                self.refused_requests.extend(problems)
            raise _Refusal(400, "The request does not match the schema")
        lines = body["orderShipment"]["orderLines"]["orderLine"]
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.seller_id != token.seller_id:
                raise _Refusal(404)
            by_number = {line.line_number: line for line in order.lines}
            for entry in lines:
                line = by_number.get(entry["lineNumber"])
                if line is None or entry["sellerOrderId"] != order.customer_order_id:
                    raise _Refusal(400, "No such order line")
                if {s.status for s in line.statuses} & {"Shipped", "Delivered", "Cancelled", "Refund"}:
                    raise _Refusal(400, "The order line is not in a shippable status")
                for status in entry["orderLineStatuses"]["orderLineStatus"]:
                    amount = status["statusQuantity"]["amount"]
                    if status["status"] != "Shipped" or not amount.isdigit() or not 0 < int(amount) <= line.quantity:
                        raise _Refusal(400, "Invalid status or quantity")
                    info = status["trackingInfo"]
                    if "otherCarrier" in (info.get("carrierName") or {}) and not info.get("trackingURL"):
                        raise _Refusal(400, "trackingURL is mandatory with otherCarrier")
            now = self.now()
            for entry in lines:
                line = by_number[entry["lineNumber"]]
                status = entry["orderLineStatuses"]["orderLineStatus"][0]
                info = status["trackingInfo"]
                line.statuses = [LineStatus("Shipped", line.quantity, info["trackingNumber"], dict(info))]
                line.status_date = max(line.status_date, now)
            self.shipments.append((order_id, copy.deepcopy(lines)))
            return 200, {"order": render_order(order)}

    def _all_orders(self, request: Request, token: _AccessToken) -> tuple[int, Any]:
        args = request.args
        limit = _limit(args)
        if args.get("shipNodeType", SHIP_NODE_TYPE) != SHIP_NODE_TYPE:
            return 200, {"list": {"meta": {"totalCount": 0, "limit": limit}, "elements": {"order": []}}}
        with self._lock:
            now = self.now()
            window = _window(args, now)
            offset = _offset(args)
            if offset and self._mutate_while_paging and window not in self._mutated_windows:
                self._mutated_windows.add(window)
                self._mutate(token.seller_id, window, offset, now)
            matching = sorted(
                (o for o in self._orders.values() if o.seller_id == token.seller_id and window.matches(o)),
                key=lambda o: (o.last_modified, o.purchase_order_id),
            )
            page = matching[offset : offset + limit]
            elements = [render_order(o) for o in page]
        meta: dict[str, Any] = {"totalCount": len(matching), "limit": limit}
        following = offset + len(page)
        if following < len(matching):
            meta["nextCursor"] = _cursor(window, limit, len(matching), following, token.seller_id)
        return 200, {"list": {"meta": meta, "elements": {"order": elements}}}

    def _mutate(self, seller_id: str, window: _Window, offset: int, now: datetime) -> None:
        """Move one served order's lines on, and cancel one not yet served (``mutate_while_paging``)."""
        matching = sorted(
            (o for o in self._orders.values() if o.seller_id == seller_id and window.matches(o)),
            key=lambda o: (o.last_modified, o.purchase_order_id),
        )
        served, upcoming = matching[:offset], matching[offset:]
        rng = self._mutation_rng
        movable = [o for o in served if o.line_statuses & set(NEXT_STATUS)]
        if movable:
            order = rng.choice(movable)
            old = sorted(order.line_statuses)[0]
            new = NEXT_STATUS.get(old, old)
            self.update_order(order.purchase_order_id, status=new)
            self.mutations.append((order.purchase_order_id, old, new))
        cancellable = [o for o in upcoming if o.line_statuses <= {"Created", "Acknowledged"}]
        if cancellable:
            order = rng.choice(cancellable)
            old = sorted(order.line_statuses)[0]
            self.update_order(order.purchase_order_id, status="Cancelled")
            self.mutations.append((order.purchase_order_id, old, "Cancelled"))

    # --- control endpoints ----------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        """JSON endpoints under ``/_fake/`` so another process (benchmark, demo) can drive the fake."""
        try:
            return self._control_route(request)
        except (FakeWalmartError, ValueError, TypeError, KeyError) as exc:
            return _json_response(400, {"error": type(exc).__name__, "message": str(exc)})

    def _control_route(self, request: Request) -> Response:
        path, method = request.path.removeprefix("/_fake"), request.method
        body: dict[str, Any] = (request.get_json(silent=True) or {}) if method == "POST" else {}
        if (method, path) == ("GET", "/stats"):
            return _json_response(200, self.stats())
        if (method, path) == ("GET", "/seller"):
            return _json_response(200, _seller_json(self.seller(request.args.get("id"))))
        if (method, path) == ("POST", "/sellers"):
            return _json_response(201, _seller_json(self.add_seller(str(body["seller_id"]))))
        if (method, path) == ("POST", "/orders"):
            start = body.get("start")
            ids = self.generate_orders(
                int(body.get("n", 1)),
                seller=body.get("seller"),
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
            self.update_order(found.group(1), status=str(body["status"]), lines=body.get("lines"))
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


class _Dropped(Exception):
    """An injected dropped connection (``inject_drop``): the WSGI callable closes the socket instead of answering."""


def render_order(order: FakeOrder, *, iso_order_date: bool = False) -> dict[str, Any]:
    """A purchase order as ``getAllOrders`` (or, ``iso_order_date``, ``getAnOrder``) serves it, as JSON.

    Both schemas require ``customerEmailId``; Walmart fills it with a relay address. ``shippingInfo.phone``
    is required too: a recipient without a phone has an empty one. ``getAnOrder``'s schema declares
    ``orderDate`` a date-time string where ``getAllOrders`` has epoch milliseconds.
    """
    ship = order.ship_to
    postal: dict[str, Any] = {
        "name": ship.name,
        "address1": ship.address1,
        "city": ship.city,
        "state": ship.state,
        "postalCode": ship.postal_code,
        "country": ship.country,
    }
    if ship.address2:
        postal["address2"] = ship.address2
    if ship.address_type:
        postal["addressType"] = ship.address_type
    return {
        "purchaseOrderId": order.purchase_order_id,
        "customerOrderId": order.customer_order_id,
        "customerEmailId": order.customer_email,
        "orderDate": format_date(order.order_date) if iso_order_date else millis(order.order_date),
        "shippingInfo": {
            "phone": ship.phone,
            "estimatedDeliveryDate": millis(order.estimated_delivery),
            "estimatedShipDate": millis(order.estimated_ship),
            "methodCode": order.method_code,
            "postalAddress": postal,
        },
        "orderLines": {"orderLine": [_render_line(line, order) for line in order.lines]},
        "shipNode": {"type": SHIP_NODE_TYPE},
    }


def _render_line(line: Any, order: FakeOrder) -> dict[str, Any]:
    statuses = []
    for s in line.statuses:
        entry: dict[str, Any] = {
            "status": s.status,
            "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(s.quantity)},
        }
        if s.tracking_info:
            entry["trackingInfo"] = copy.deepcopy(s.tracking_info)
        elif s.tracking_number:
            entry["trackingInfo"] = {
                "shipDateTime": millis(line.status_date),
                "carrierName": {"carrier": "USPS"},
                "methodCode": order.method_code,
                "trackingNumber": s.tracking_number,
            }
        statuses.append(entry)
    return {
        "lineNumber": line.line_number,
        "item": {"productName": line.product_name, "sku": line.sku},
        "charges": {
            "charge": [
                {
                    "chargeType": "PRODUCT",
                    "chargeName": "ItemPrice",
                    "chargeAmount": {"currency": "USD", "amount": line.price},
                }
            ]
        },
        "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": str(line.quantity)},
        "statusDate": millis(line.status_date),
        "orderLineStatuses": {"orderLineStatus": statuses},
    }


def _undefined_fields(schema: Mapping[str, Any], body: Any, where: str) -> list[str]:
    """Fields of ``body`` that ``schema`` doesn't define (Walmart's schemas don't say no to them; the fake does,
    so a misspelt field fails a test instead of being dropped silently at Walmart)."""
    found: list[str] = []
    properties = schema.get("properties")
    if isinstance(body, dict) and isinstance(properties, dict):
        for key, value in body.items():
            if key not in properties:
                found.append(f"{where}{key} is not defined")
            else:
                found.extend(_undefined_fields(properties[key], value, f"{where}{key}/"))
    items = schema.get("items")
    if isinstance(body, list) and isinstance(items, dict):
        for value in body:
            found.extend(_undefined_fields(items, value, where))
    return found


def _require_headers(request: Request) -> None:
    for name in ("WM_QOS.CORRELATION_ID", "WM_SVC.NAME"):
        if not request.headers.get(name):
            raise _Refusal(400, f"Missing required header {name}")


def parse_date(raw: str, name: str) -> datetime:
    """Walmart's date parameters: ``2020-03-16`` or ``2020-03-16T10:30:15Z`` (fractions allowed), as UTC."""
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _Refusal(400, f"{name} must be yyyy-MM-dd or yyyy-MM-ddTHH:mm:ssZ") from None
    return utc(parsed)


def format_date(t: datetime) -> str:
    """A date parameter as Walmart writes one in a cursor: ``2019-09-17T18:47:03.703Z``."""
    return utc(t).strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc(t).microsecond // 1000:03d}Z"


def _window(args: MultiDict[str, str], now: datetime) -> _Window:
    def date(name: str) -> datetime | None:
        raw = args.get(name)
        return parse_date(raw, name) if raw else None

    modified_after, modified_before = date("lastModifiedStartDate"), date("lastModifiedEndDate")
    created_after, created_before = date("createdStartDate"), date("createdEndDate")
    if modified_after is None and created_after is None:
        created_after = now - timedelta(days=7)  # Walmart's default: created in the last 7 days
    if modified_after is not None and modified_before is None:
        modified_before = now  # fixed now, so the window stays the same on every page (it is in the cursor)
    if created_after is not None and created_before is None:
        created_before = now
    for after, before in ((modified_after, modified_before), (created_after, created_before)):
        if after is not None and before is not None and before < after:
            raise _Refusal(400, "The end date must not be before the start date")
    if modified_after is not None and modified_after > now:
        raise _Refusal(400, "lastModifiedStartDate must not be in the future")
    return _Window(
        modified_after=modified_after,
        modified_before=modified_before,
        created_after=created_after,
        created_before=created_before,
        status=args.get("status") or None,
        purchase_order_id=args.get("purchaseOrderId") or None,
    )


def _limit(args: MultiDict[str, str]) -> int:
    raw = args.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise _Refusal(400, "limit must be a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _Refusal(400, f"limit cannot be larger than {MAX_LIMIT}")
    return limit


def _offset(args: MultiDict[str, str]) -> int:
    raw = args.get("poIndex")
    if raw is None:
        return 0
    if args.get("hasMoreElements") != "true" or not raw.isdigit():
        raise _Refusal(400, "Invalid nextCursor")
    return int(raw)


def _cursor(window: _Window, limit: int, total: int, following: int, seller_id: str) -> str:
    """Walmart's ``nextCursor``: a query string for the next page, carrying the window and the offset."""
    params: list[tuple[str, str]] = [
        ("limit", str(limit)),
        ("hasMoreElements", "true"),
        ("soIndex", str(total)),
        ("poIndex", str(following)),
        ("sellerId", seller_id),
    ]
    for name, value in (
        ("lastModifiedStartDate", window.modified_after),
        ("lastModifiedEndDate", window.modified_before),
        ("createdStartDate", window.created_after),
        ("createdEndDate", window.created_before),
    ):
        if value is not None:
            params.append((name, format_date(value)))
    if window.status:
        params.append(("status", window.status))
    if window.purchase_order_id:
        params.append(("purchaseOrderId", window.purchase_order_id))
    return "?" + urlencode(params)


def _error_body(status: int, info: str | None = None) -> dict[str, Any]:
    code, default = _ERRORS.get(status, _ERRORS[500])
    return {
        "errors": [
            {
                "code": code,
                "field": code.split(".", 1)[0],
                "description": default,
                "info": info or default,
                "severity": "ERROR",
                "category": "DATA" if status < 500 else "SYSTEM",
                "causes": [],
                "errorIdentifiers": {},
            }
        ]
    }


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = "" if body is None else json.dumps(body, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escape it (valid JSON, as Java writes it)
        text = json.dumps(body)
    response = Response(text, status=status, headers=headers)
    if body is not None:
        response.content_type = "application/json"
    return response


def _seller_json(seller: Seller) -> dict[str, Any]:
    return {"seller_id": seller.seller_id, "client_id": seller.client_id, "client_secret": seller.client_secret}


def _order_json(order: FakeOrder) -> dict[str, Any]:
    """An order's non-PII metadata, for the control API."""
    return {
        "order_id": order.purchase_order_id,
        "seller_id": order.seller_id,
        "line_statuses": sorted(order.line_statuses),
        "order_date": format_date(order.order_date),
        "last_modified": format_date(order.last_modified),
    }
