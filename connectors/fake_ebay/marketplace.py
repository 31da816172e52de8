"""The fake eBay: a real HTTP server speaking eBay OAuth (consent, code exchange, refresh) and Sell
Fulfillment v1's ``getOrders`` / ``getOrder``.

One ``FakeEbay`` is a WSGI application served by werkzeug in a background thread. Requests pass the same
steps as at eBay, each able to answer early::

    route -> count -> injected delay -> injected fault -> access token (401/403) -> daily quota (429)
          -> the operation (400 / 404 / 200) -> schema check of the body (500 if it fails) -> answer

Every body it answers with is checked against eBay's document (``models.schema_errors``); a failure is
recorded in ``validation_errors`` (tests keep it empty) and answered as 500. Nothing is logged per request:
the fake serves buyer data and must not leak it into logs.

Paging is eBay's: ``limit``/``offset`` over a result set evaluated afresh on every call, so an order modified
while a client pages leaves a ``lastmodifieddate`` window and the orders behind it move up one offset;
``total`` says how many match now. ``mutate_while_paging`` makes that happen on purpose.
"""

from __future__ import annotations

import base64
import collections
import copy
import dataclasses
import hashlib
import json
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from connectors.fakeserver import ServedFake, client_went_away

from .data import CANCEL_STATES, COUNTRIES, FULFILLMENT_STATUSES, MARKETPLACES, FakeOrder, OrderFactory, iso, utc
from .models import OPERATIONS, TOKEN_OPERATION, request_errors, schema_errors

API_BASE = "/sell/fulfillment/v1"
TOKEN_PATH = "/identity/v1/oauth2/token"  # noqa: S105 - a path, not a secret
AUTHORIZE_PATH = "/oauth2/authorize"
ACCESS_TOKEN_LIFETIME = timedelta(seconds=7200)  # eBay: user access tokens last two hours
REFRESH_TOKEN_LIFETIME = timedelta(seconds=47304000)  # eBay: about 18 months
AUTH_CODE_LIFETIME = timedelta(seconds=299)
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_ORDER_IDS = 50
SCOPE_FULFILLMENT = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
SCOPE_FULFILLMENT_READONLY = "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly"
ORDER_SCOPES = frozenset({SCOPE_FULFILLMENT, SCOPE_FULFILLMENT_READONLY})
#: The application's daily call limit for the Fulfillment API (getOrders and getOrder count together). eBay's
#: default for an app before its Application Growth Check; see docs/marketplaces/ebay.md.
FULFILLMENT_DAILY_CALLS = 100_000
#: eBay's OAuth rate limits per application and day, by grant type (developer.ebay.com, "OAuth rate limits").
TOKEN_DAILY_CALLS = {"authorization_code": 10_000, "refresh_token": 50_000, "client_credentials": 1_000}
DAY = 86400.0
FAULT_STATUSES = frozenset({400, 401, 403, 404, 429, 500, 503})

#: eBay's error ids and messages for the answers the fake gives (``Error`` objects).
_ERRORS: dict[int, tuple[int, str, str]] = {
    400: (30800, "REQUEST", "Invalid filter value"),
    401: (1001, "REQUEST", "Invalid access token"),
    403: (1100, "REQUEST", "Access denied"),
    404: (32100, "REQUEST", "Invalid order ID"),
    429: (2001, "REQUEST", "Too many requests. The request limit has been reached for the resource."),
    500: (30500, "APPLICATION", "System error"),
    503: (30500, "APPLICATION", "System error"),
}
#: The token endpoint's refusals, worded as eBay's OAuth server words them.
_BAD_CODE = "the provided authorization grant code is invalid or was issued to another client"
_BAD_REFRESH = "the provided authorization refresh token is invalid or was issued to another client"
_BAD_SCOPE = "the requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client"
_FILTER = re.compile(r"(creationdate|lastmodifieddate):\[([^\]]*)\]|orderfulfillmentstatus:\{([A-Z_|]+)\}")


class FakeEbayError(Exception):
    """Misuse of the fake's control API (unknown order, seller, status or operation)."""


class _Refusal(Exception):
    """An eBay error answer raised from inside an operation."""

    def __init__(self, status: int, message: str | None = None, *, error_id: int | None = None) -> None:
        default_id, self.category, default_message = _ERRORS[status]
        super().__init__(message or default_message)
        self.status = status
        self.message = message or default_message
        self.error_id = error_id or default_id


@dataclass(frozen=True)
class App:
    """The developer application registered with the fake: its keyset and its RuName's accept URL."""

    client_id: str
    client_secret: str = field(repr=False)
    ru_name: str = "labelvault-labelvau-fake-abcdefgh"
    accept_url: str = "http://127.0.0.1/ebay/accepted"


@dataclass(frozen=True)
class Seller:
    """An eBay seller (a user who grants the app access), with a refresh token issued at setup."""

    username: str
    refresh_token: str = field(repr=False)
    marketplace_ids: tuple[str, ...] = tuple(MARKETPLACES)


@dataclass
class _Token:
    seller: str
    client_id: str
    scopes: frozenset[str]
    expires_at: datetime
    revoked: bool = False


@dataclass
class _Fault:
    count: int
    operation: str | None
    status: int = 0
    seconds: float = 0.0


class DailyQuota:
    """eBay's call limit: ``limit`` calls per window of a day (divided by ``speedup``), reset when it ends.

    Windows are fixed, as eBay's are (its day starts at midnight Pacific time); here the first window starts
    when the fake does. Runs on the monotonic wall clock: a limit is about how fast a client really calls.
    """

    def __init__(self, limit: int, *, window: float = DAY, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a quota needs a positive limit and window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._start = clock()
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Count one call if the window has room; False means HTTP 429."""
        with self._lock:
            now = self._clock()
            if now - self._start >= self.window:
                self._start += ((now - self._start) // self.window) * self.window
                self._used = 0
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    @property
    def remaining(self) -> int:
        """Calls left in the current window."""
        with self._lock:
            return self.limit - self._used if self._clock() - self._start < self.window else self.limit


@dataclass(frozen=True)
class _Query:
    seller: str
    field: str  # "created" or "modified"
    after: datetime | None
    before: datetime | None
    statuses: frozenset[str] | None
    order_ids: tuple[str, ...] | None

    def matches(self, order: FakeOrder) -> bool:
        if order.seller_id != self.seller:
            return False
        if self.order_ids is not None:
            return order.order_id in self.order_ids
        stamp = order.created if self.field == "created" else order.last_modified
        return (
            (self.after is None or stamp >= self.after)
            and (self.before is None or stamp <= self.before)
            and (self.statuses is None or order.fulfillment_status in self.statuses)
        )


def _derive(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join((str(seed), *parts)).encode()).hexdigest()


def _result_order(order: FakeOrder) -> tuple[datetime, str]:
    # eBay documents no order for getOrders results; newest created first, so a client can't lean on
    # modified-date order.
    return (order.created, order.order_id)


class FakeEbay(ServedFake):
    """A fake eBay: OAuth consent and token endpoint, Sell Fulfillment getOrders/getOrder over real HTTP.

    ``speedup`` shortens every quota's day (limits stay as documented per window); ``daily_calls`` is the
    app's Fulfillment API limit per window; ``clock`` is the marketplace's "now" (tokens, order dates);
    ``accept_url`` is where the consent page sends the seller back (the RuName's accept URL); ``latency`` is
    how long every API call and token call takes before it is answered, in wall seconds (eBay is some 150 ms
    away: ``bench.fleet`` measures how the worker copes with waiting, not only its CPU).
    """

    DEFAULT_APP: ClassVar[App] = App(
        client_id="labelvau-labelvau-PRD-0f4ce1abe-1va017fa",
        client_secret="PRD-f4ce1abe1va0-17fa-4e00-0000-fake0001",  # noqa: S106 - fake
    )
    DEFAULT_SELLER: ClassVar[str] = "labelvault_fake_seller"

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        daily_calls: int = FULFILLMENT_DAILY_CALLS,
        accept_url: str | None = None,
        latency: float = 0.0,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        if not 0 <= latency <= 60:
            raise ValueError("latency must be between 0 and 60 seconds")
        self.speedup = speedup
        self.latency = latency
        self.seed = seed
        super().__init__(host=host, port=port)
        self.daily_calls = daily_calls
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._factory = OrderFactory(seed)
        self._mutation_rng = random.Random(seed + 1)  # noqa: S311 - test data, not secrets
        # The URL eBay's developer portal holds for the app's RuName: where the consent redirects to.
        self.app = dataclasses.replace(self.DEFAULT_APP, accept_url=accept_url) if accept_url else self.DEFAULT_APP
        self._sellers: dict[str, Seller] = {}
        self._orders: dict[str, FakeOrder] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._codes: dict[str, _Token] = {}
        self._quotas: dict[str, DailyQuota] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._mutate_while_paging = False
        self._mutated_queries: set[str] = set()
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []
        self.mutations: list[tuple[str, str, str]] = []
        self.add_seller(self.DEFAULT_SELLER)

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-ebay"
    already_started = FakeEbayError
    # base_url (ServedFake's) is the API origin (eBay's ``https://api.ebay.com``), e.g. ``http://127.0.0.1:8500``.

    @property
    def token_url(self) -> str:
        """The token endpoint (eBay's ``https://api.ebay.com/identity/v1/oauth2/token``)."""
        return self.base_url + TOKEN_PATH

    @property
    def authorize_url(self) -> str:
        """The consent page (eBay's ``https://auth.ebay.com/oauth2/authorize``)."""
        return self.base_url + AUTHORIZE_PATH

    def now(self) -> datetime:
        """The marketplace's current time (aware, UTC)."""
        return utc(self._clock())

    # --- sellers and orders ---------------------------------------------------------------------------------

    def add_seller(self, username: str, *, marketplace_ids: Sequence[str] | None = None) -> Seller:
        """Register a seller who has already granted the app the fulfillment scope; its refresh token is
        derived from the seed (reproducible) and lasts eBay's 18 months from now."""
        ids = tuple(marketplace_ids) if marketplace_ids else tuple(MARKETPLACES)
        if not ids or any(m not in MARKETPLACES for m in ids):
            raise FakeEbayError(f"marketplace ids must be among {', '.join(MARKETPLACES)}")
        refresh = "v^1.1#i^1#r^1#" + _derive(self.seed, "refresh", username)
        with self._lock:
            if username in self._sellers:
                raise FakeEbayError(f"seller {username} already exists")
            seller = Seller(username=username, refresh_token=refresh, marketplace_ids=ids)
            self._sellers[username] = seller
            self._refresh[refresh] = _Token(
                seller=username,
                client_id=self.app.client_id,
                scopes=frozenset({SCOPE_FULFILLMENT}),
                expires_at=self.now() + REFRESH_TOKEN_LIFETIME,
            )
            return seller

    def seller(self, username: str | None = None) -> Seller:
        """A registered seller (the default one when no name is given)."""
        name = username or self.DEFAULT_SELLER
        try:
            return self._sellers[name]
        except KeyError:
            raise FakeEbayError(f"unknown seller {name}") from None

    def generate_orders(
        self,
        n: int,
        *,
        seller: str | None = None,
        countries: Sequence[str] = COUNTRIES,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
    ) -> list[str]:
        """Create ``n`` orders for ``seller``, created between ``start`` (default: 7 days ago) and now; their ids.

        ``statuses`` take ``NOT_STARTED``, ``IN_PROGRESS``, ``FULFILLED`` and ``CANCELED``.
        """
        owner = self.seller(seller)
        bad = [s for s in statuses or () if s not in (*FULFILLMENT_STATUSES, "CANCELED")]
        if bad:
            raise FakeEbayError(f"unknown status {bad[0]!r}")
        with self._lock:
            now = self.now()
            made = self._factory.generate(
                n,
                seller_id=owner.username,
                marketplace_ids=owner.marketplace_ids,
                countries=countries,
                statuses=statuses,
                start=utc(start) if start else now - timedelta(days=7),
                now=now,
            )
            for order in made:
                self._orders[order.order_id] = order
        return [o.order_id for o in made]

    def _order(self, order_id: str) -> FakeOrder:
        try:
            return self._orders[order_id]
        except KeyError:
            raise FakeEbayError(f"unknown order {order_id}") from None

    def _touch(self, order: FakeOrder) -> None:
        """Bump ``lastModifiedDate`` to now (eBay's timestamps carry milliseconds)."""
        now = self.now()
        order.last_modified = max(order.last_modified, now.replace(microsecond=now.microsecond // 1000 * 1000))

    def update_order(self, order_id: str, *, fulfillment: str | None = None, cancel: str | None = None) -> None:
        """Change an order's ``orderFulfillmentStatus`` and/or ``cancelState`` and bump ``lastModifiedDate``."""
        if fulfillment is not None and fulfillment not in FULFILLMENT_STATUSES:
            raise FakeEbayError(f"unknown fulfillment status {fulfillment!r}")
        if cancel is not None and cancel not in CANCEL_STATES:
            raise FakeEbayError(f"unknown cancel state {cancel!r}")
        with self._lock:
            order = self._order(order_id)
            order.fulfillment_status = fulfillment or order.fulfillment_status
            order.cancel_state = cancel or order.cancel_state
            self._touch(order)

    def edit_ship_to(self, order_id: str, **changes: Any) -> None:
        """Change fields of an order's ship-to (``ShipTo`` names; any text goes, as a buyer types it)."""
        with self._lock:
            order = self._order(order_id)
            order.ship_to = dataclasses.replace(order.ship_to, **changes)
            self._touch(order)

    def orders(self, seller: str | None = None) -> dict[str, FakeOrder]:
        """A snapshot of the seller's orders by id: the truth a connector's result is compared with."""
        name = self.seller(seller).username
        with self._lock:
            return {k: copy.copy(o) for k, o in self._orders.items() if o.seller_id == name}

    def expected_label(self, order_id: str) -> dict[str, str | None]:
        """The ship-to fields a connector should store for this order, in ``LabelRecord`` names (None: absent).

        eBay serves the ship-to of every order, cancelled ones included; the connector keeps none for a
        cancelled order (nothing to ship), so that gives all None.
        """
        with self._lock:
            order = self._order(order_id)
        s = order.ship_to
        fields: dict[str, str | None] = {
            "name": s.full_name,
            "company": s.company,
            "address_line1": s.address_line1,
            "address_line2": s.address_line2,
            "city": s.city,
            "district_or_county": s.county,
            "state_or_region": s.state_or_province,
            "postal_code": s.postal_code,
            "country_code": s.country_code,
            "phone": s.phone,
        }
        if order.cancel_state == "CANCELED":
            return dict.fromkeys(fields)
        return fields

    def buyer_pii_strings(self) -> set[str]:
        """Every recipient and buyer name, company, street line, phone, username and e-mail the fake serves."""
        found: set[str] = set()
        with self._lock:
            orders = list(self._orders.values())
        for o in orders:
            for s in (o.ship_to, o.buyer_address):
                found.update(v for v in (s.full_name, s.company, s.address_line1, s.address_line2, s.phone) if v)
            found.update((o.buyer_username, o.buyer_email))
        found.discard("")
        return found

    # --- tokens ---------------------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on (401 Invalid access token)."""
        with self._lock:
            for token in self._access.values():
                token.revoked = True

    def expire_refresh_tokens(self, seller: str | None = None) -> None:
        """The seller's grant ran out (or was revoked): its refresh tokens answer 400 ``invalid_grant``."""
        name = self.seller(seller).username
        with self._lock:
            for token in self._refresh.values():
                if token.seller == name:
                    token.revoked = True

    def consent_code(self, seller: str | None = None, *, scopes: Iterable[str] = (SCOPE_FULFILLMENT,)) -> str:
        """An authorization code as eBay's consent page would redirect with after ``seller`` agreed."""
        name = self.seller(seller).username
        code = "v^1.1#i^1#p^3#" + secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Token(
                seller=name,
                client_id=self.app.client_id,
                scopes=frozenset(scopes),
                expires_at=self.now() + AUTH_CODE_LIFETIME,
            )
        return code

    # --- fault injection ------------------------------------------------------------------------------------

    def inject(self, *, status: int, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (of ``operation``, or any API call) answer ``status`` with eBay's error
        body. Injected answers come before authentication and the quota, and count against no quota."""
        if status not in FAULT_STATUSES:
            raise FakeEbayError(f"status must be one of {sorted(FAULT_STATUSES)}")
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, status=status))

    def inject_delay(self, seconds: float, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests wait ``seconds`` before being handled (slow answers)."""
        self._check_operation(operation)
        with self._lock:
            self._delays.append(_Fault(count=count, operation=operation, seconds=seconds))

    def mutate_while_paging(self, enabled: bool = True) -> None:
        """When a search is asked for a later page (offset > 0), first modify one order it has served
        (fulfilled, or cancelled) and one it has yet to serve, with ``lastModifiedDate`` bumped to now, once
        per search. Each change is recorded in ``mutations`` as ``(order_id, old, new)``."""
        with self._lock:
            self._mutate_while_paging = enabled

    @staticmethod
    def _check_operation(operation: str | None) -> None:
        if operation is not None and operation not in (*OPERATIONS, TOKEN_OPERATION):
            raise FakeEbayError(f"unknown operation {operation}; known: {', '.join(operation_names())}")

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

    def quota(self, name: str) -> DailyQuota:
        """The app's quota called ``name`` (``fulfillment``, or a token grant type), made on first use."""
        with self._lock:
            quota = self._quotas.get(name)
            if quota is None:
                limit = self.daily_calls if name == "fulfillment" else TOKEN_DAILY_CALLS[name]
                quota = DailyQuota(limit, window=DAY / self.speedup)
                self._quotas[name] = quota
            return quota

    def min_calls_and_seconds(self, orders: int, *, limit: int = MAX_LIMIT) -> tuple[int, float]:
        """The fewest calls a full sync of ``orders`` orders can take (one token refresh, then one getOrders
        per page of ``limit``, at least one) and the least time eBay's limits impose on them: none while
        they fit in the day's quota, else a whole day (over ``speedup``) per further quota's worth."""
        pages = max(1, -(-orders // limit))
        days_waited = (pages - 1) // self.daily_calls
        return 1 + pages, days_waited * DAY / self.speedup

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
            }

    # --- WSGI -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # answer like eBay, never with a traceback; record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _json_response(500, _error_body(_Refusal(500)))
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(request)
        if path == TOKEN_PATH:
            return self._token(request)
        if path == AUTHORIZE_PATH:
            return self._authorize(request)
        if request.method == "GET" and path == f"{API_BASE}/order":
            return self._api("getOrders", request, None)
        found = re.fullmatch(rf"{API_BASE}/order/([^/]+)", path)
        if request.method == "GET" and found:
            return self._api("getOrder", request, found.group(1))
        found = re.fullmatch(rf"{API_BASE}/order/([^/]+)/shipping_fulfillment", path)
        if found and request.method in ("GET", "POST"):
            operation = "getShippingFulfillments" if request.method == "GET" else "createShippingFulfillment"
            return self._api(operation, request, found.group(1))
        return _json_response(
            404, {"errors": [{"errorId": 2002, "domain": "API_FULFILLMENT", "message": "Resource not found"}]}
        )

    def _wait_latency(self) -> None:
        """eBay's distance: every API and token call waits ``latency`` (a stopping fake stops waiting)."""
        if self.latency:
            self._stopping.wait(self.latency)

    def _api(self, operation: str, request: Request, order_id: str | None) -> Response:
        with self._lock:
            self.calls[operation] += 1
        self._wait_latency()
        delay = self._take(self._delays, operation)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, operation)
        try:
            if fault is not None:
                if fault.status == 429:
                    with self._lock:
                        self.throttled[operation] += 1
                raise _Refusal(fault.status)
            token = self._authenticate(request)
            if not self.quota("fulfillment").take():
                with self._lock:
                    self.throttled[operation] += 1
                raise _Refusal(429)
            headers: dict[str, str] | None = None
            if operation == "getOrders":
                status, body = 200, self._get_orders(request, token)
            elif operation == "createShippingFulfillment":
                assert order_id is not None
                location = self._create_fulfillment(order_id, token, request)
                status, body, headers = 201, {}, {"Location": location}
            elif operation == "getShippingFulfillments":
                assert order_id is not None
                status, body = 200, self._get_fulfillments(order_id, token)
            else:
                assert order_id is not None
                status, body = 200, self._get_order(order_id, token)
        except _Refusal as refusal:
            status, body, headers = refusal.status, _error_body(refusal), None
        return self._answer(operation, status, body, headers)

    def _answer(self, operation: str, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        problems = schema_errors(operation, status, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(problems)
            status, headers = 500, None
            body = _error_body(_Refusal(500)) if operation != TOKEN_OPERATION else {"error": "server_error"}
        return _json_response(status, body, headers)

    def _authenticate(self, request: Request) -> _Token:
        header = request.headers.get("Authorization", "")
        presented = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        with self._lock:
            token = self._access.get(presented)
            now = self.now()
        if token is None or token.revoked or now >= token.expires_at:
            raise _Refusal(401)
        if not token.scopes & ORDER_SCOPES:
            raise _Refusal(403, "Insufficient permissions to fulfill the request.")
        return token

    # --- OAuth ----------------------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        """eBay's consent page, agreed to at once by the seller named in ``fake_user`` (default seller):
        a redirect to the RuName's accept URL with ``code`` and ``state``."""
        args = request.args
        if args.get("client_id") != self.app.client_id or args.get("redirect_uri") != self.app.ru_name:
            return Response("unknown client_id or redirect_uri", status=400, content_type="text/plain")
        if args.get("response_type") != "code":
            return Response("response_type must be code", status=400, content_type="text/plain")
        scopes = frozenset((args.get("scope") or "").split())
        if not scopes:
            return Response("scope is required", status=400, content_type="text/plain")
        try:
            code = self.consent_code(args.get("fake_user"), scopes=scopes)
        except FakeEbayError:
            return Response("unknown user", status=400, content_type="text/plain")
        query = {"code": code, **({"state": args["state"]} if "state" in args else {})}
        return Response(status=302, headers={"Location": f"{self.app.accept_url}?{urlencode(query)}"})

    def _token(self, request: Request) -> Response:
        with self._lock:
            self.calls[TOKEN_OPERATION] += 1
        self._wait_latency()
        delay = self._take(self._delays, TOKEN_OPERATION)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, TOKEN_OPERATION)
        if fault is not None:
            error = "server_error" if fault.status >= 500 else "invalid_request"
            return self._answer(TOKEN_OPERATION, fault.status, {"error": error, "error_description": "Injected fault"})
        status, body = self._token_grant(request)
        headers = {"Cache-Control": "no-store"} if status == 200 else None
        problems = schema_errors(TOKEN_OPERATION, status, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(problems)
            status, body = 500, {"error": "server_error"}
        return _json_response(status, body, headers)

    def _token_grant(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            return 400, {"error": "invalid_request", "error_description": "request method must be POST"}
        if self._basic_client(request) != (self.app.client_id, self.app.client_secret):
            return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
        form = request.form
        grant = form.get("grant_type", "")
        if grant not in ("authorization_code", "refresh_token"):
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "grant type in request is not supported by the authorization server",
            }
        if not self.quota(grant).take():
            with self._lock:
                self.throttled[TOKEN_OPERATION] += 1
            return 429, {"error": "rate_limited", "error_description": "the application's daily token limit is reached"}
        now = self.now()
        with self._lock:
            if grant == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)
                if code is None or now >= code.expires_at:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": _BAD_CODE,
                    }
                if form.get("redirect_uri") != self.app.ru_name:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": _BAD_CODE,
                    }
                refresh = "v^1.1#i^1#r^1#" + secrets.token_urlsafe(48)
                self._refresh[refresh] = _Token(code.seller, code.client_id, code.scopes, now + REFRESH_TOKEN_LIFETIME)
                access = self._issue(code.seller, code.scopes, now)
                return 200, {
                    "access_token": access,
                    "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
                    "refresh_token": refresh,
                    "refresh_token_expires_in": int(REFRESH_TOKEN_LIFETIME.total_seconds()),
                    "token_type": "User Access Token",
                }
            grant_token = self._refresh.get(form.get("refresh_token", ""))
            if grant_token is None or grant_token.revoked or now >= grant_token.expires_at:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": _BAD_REFRESH,
                }
            asked = frozenset((form.get("scope") or "").split()) or grant_token.scopes
            if not asked <= grant_token.scopes:
                return 400, {
                    "error": "invalid_scope",
                    "error_description": _BAD_SCOPE,
                }
            access = self._issue(grant_token.seller, asked, now)
        return 200, {
            "access_token": access,
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            "token_type": "User Access Token",
        }

    def _issue(self, seller: str, scopes: frozenset[str], now: datetime) -> str:
        token = "v^1.1#i^1#f^0#I^3#" + secrets.token_urlsafe(64)
        self._access[token] = _Token(seller, self.app.client_id, scopes, now + ACCESS_TOKEN_LIFETIME)
        return token

    @staticmethod
    def _basic_client(request: Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return client_id, secret

    # --- orders ---------------------------------------------------------------------------------------------

    def _get_order(self, order_id: str, token: _Token) -> dict[str, Any]:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None or order.seller_id != token.seller:
                raise _Refusal(404)
            return render_order(order)

    def _seller_order(self, order_id: str, token: _Token) -> FakeOrder:
        """The seller's order; another's or none is 400 ``Invalid order ID`` (the document lists no 404 for
        the shipping-fulfillment calls)."""
        order = self._orders.get(order_id)
        if order is None or order.seller_id != token.seller:
            raise _Refusal(400, "Invalid order ID", error_id=32100)
        return order

    def _get_fulfillments(self, order_id: str, token: _Token) -> dict[str, Any]:
        with self._lock:
            order = self._seller_order(order_id, token)
            return {"fulfillments": copy.deepcopy(order.fulfillments), "total": len(order.fulfillments)}

    def _create_fulfillment(self, order_id: str, token: _Token, request: Request) -> str:
        """createShippingFulfillment: the request checked against eBay's schema (closed) and the document's
        rules (line items of the order not shipped yet, a whole quantity, carrier and tracking number together,
        the tracking number letters and digits only); the order's fulfilment status follows. Needs the
        read-write ``sell.fulfillment`` scope."""
        if SCOPE_FULFILLMENT not in token.scopes:
            raise _Refusal(403, "Insufficient permissions to fulfill the request.")
        try:
            given = json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            raise _Refusal(400, "Invalid request body.", error_id=32000) from None
        if request_errors("createShippingFulfillment", given):
            raise _Refusal(400, "Invalid request body.", error_id=32000)
        carrier, tracking = given.get("shippingCarrierCode"), given.get("trackingNumber")
        if bool(carrier) != bool(tracking) or (tracking and not re.fullmatch(r"[A-Za-z0-9]+", tracking)):
            raise _Refusal(400, "Invalid shipment tracking number or carrier.", error_id=32600)
        with self._lock:
            order = self._seller_order(order_id, token)
            if order.cancel_state == "CANCELED":
                raise _Refusal(400, "The order is cancelled.", error_id=32400)
            shipped = _shipped_items(order)
            quantities = {item.line_item_id: item.quantity for item in order.items}
            wanted = given.get("lineItems") or []
            if not wanted:
                raise _Refusal(400, "At least one line item is required.", error_id=32100)
            for line in wanted:
                line_id, quantity = line.get("lineItemId"), line.get("quantity", 1)
                if line_id not in quantities or line_id in shipped or not 1 <= quantity <= quantities[line_id]:
                    raise _Refusal(400, "Invalid line item or quantity.", error_id=32100)
            fulfillment_id = tracking or "999"
            order.fulfillments.append(
                {
                    "fulfillmentId": fulfillment_id,
                    "lineItems": [{"lineItemId": w["lineItemId"], "quantity": w.get("quantity", 1)} for w in wanted],
                    "shipmentTrackingNumber": tracking,
                    "shippingCarrierCode": carrier,
                    "shippedDate": given.get("shippedDate") or iso(self.now()),
                }
            )
            done = _shipped_items(order) >= set(quantities)
            order.fulfillment_status = "FULFILLED" if done else "IN_PROGRESS"
            self._touch(order)
        return f"{self.base_url}{API_BASE}/order/{order_id}/shipping_fulfillment/{fulfillment_id}"

    def fulfillments(self, order_id: str) -> list[dict[str, Any]]:
        """The shipping fulfillments created on an order (for tests)."""
        with self._lock:
            return copy.deepcopy(self._order(order_id).fulfillments)

    def _get_orders(self, request: Request, token: _Token) -> dict[str, Any]:
        args = request.args
        limit = _int_param(args.get("limit"), DEFAULT_LIMIT, "limit", 31100)
        offset = _int_param(args.get("offset"), 0, "offset", 31000)
        if not 1 <= limit <= MAX_LIMIT:
            raise _Refusal(400, f"Invalid limit: {limit}", error_id=31100)
        if offset < 0:
            raise _Refusal(400, f"Invalid offset: {offset}", error_id=31000)
        now = self.now()
        raw_ids = args.get("orderIds")
        if raw_ids:
            ids = tuple(i for i in raw_ids.split(",") if i)
            if len(ids) > MAX_ORDER_IDS:
                raise _Refusal(400, "Exceeded maximum number of order IDs (the current limit is 50)", error_id=30900)
            query = _Query(token.seller, "created", None, None, None, ids)
        else:
            query = _parse_filter(args.get("filter", ""), token.seller, now)
        with self._lock:
            key = f"{token.seller}|{args.get('filter', '')}|{raw_ids or ''}"
            if offset > 0 and self._mutate_while_paging and key not in self._mutated_queries:
                self._mutated_queries.add(key)
                self._mutate(query, offset)
            matching = sorted((o for o in self._orders.values() if query.matches(o)), key=_result_order, reverse=True)
            page = matching[offset : offset + limit]
            body: dict[str, Any] = {
                "href": self._href(args, limit, offset),
                "limit": limit,
                "offset": offset,
                "orders": [render_order(o) for o in page],
                "total": len(matching),
            }
        if offset + limit < len(matching):
            body["next"] = self._href(args, limit, offset + limit)
        if offset > 0:
            body["prev"] = self._href(args, limit, max(0, offset - limit))
        return body

    def _href(self, args: Any, limit: int, offset: int) -> str:
        query = {k: v for k, v in args.items() if k not in ("limit", "offset")}
        query.update(limit=str(limit), offset=str(offset))
        return f"{self.base_url}{API_BASE}/order?{urlencode(query)}"

    def _mutate(self, query: _Query, offset: int) -> None:
        """Modify one order this search has served and one it hasn't: both leave a window that ends in the past."""
        matching = sorted((o for o in self._orders.values() if query.matches(o)), key=_result_order, reverse=True)
        rng = self._mutation_rng
        for group in (matching[:offset], matching[offset:]):
            if not group:
                continue
            order = rng.choice(group)
            old = f"{order.fulfillment_status}/{order.cancel_state}"
            if (
                order.fulfillment_status == "NOT_STARTED"
                and order.cancel_state == "NONE_REQUESTED"
                and rng.random() < 0.5
            ):
                order.cancel_state = "CANCELED"
            elif order.fulfillment_status != "FULFILLED":
                order.fulfillment_status = "FULFILLED"
            self._touch(order)
            self.mutations.append((order.order_id, old, f"{order.fulfillment_status}/{order.cancel_state}"))

    # --- control endpoints ----------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        """JSON endpoints under ``/_fake/`` so another process (benchmark, demo) can drive the fake."""
        try:
            return self._control_route(request)
        except (FakeEbayError, ValueError, TypeError, KeyError) as exc:
            return _json_response(400, {"error": type(exc).__name__, "message": str(exc)})

    def _control_route(self, request: Request) -> Response:
        path, method = request.path.removeprefix("/_fake"), request.method
        body: dict[str, Any] = (request.get_json(silent=True) or {}) if method == "POST" else {}
        if (method, path) == ("GET", "/stats"):
            return _json_response(200, self.stats())
        if (method, path) == ("GET", "/seller"):
            seller = self.seller(request.args.get("username"))
            return _json_response(200, _seller_json(self.app, seller))
        if (method, path) == ("POST", "/sellers"):
            # A seller who has consented (refresh token good for eBay's 18 months) with ``orders`` orders.
            orders = int(body.get("orders", 0))
            if orders < 0:
                raise FakeEbayError("orders must not be negative")
            seller = self.add_seller(body["username"], marketplace_ids=body.get("marketplace_ids"))
            ids = self.generate_orders(orders, seller=seller.username) if orders else []
            with self._lock:
                expires = self._refresh[seller.refresh_token].expires_at
            answer = _seller_json(self.app, seller) | {
                "refresh_token_expires_at": expires.isoformat(),
                "order_ids": ids,
            }
            return _json_response(201, answer)
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
        if (method, path) == ("GET", "/orders"):
            return _json_response(200, {"order_ids": sorted(self.orders(request.args.get("seller")))})
        found = re.fullmatch(r"/orders/([^/]+)/expected-label", path)
        if found and method == "GET":
            return _json_response(200, self.expected_label(found.group(1)))
        found = re.fullmatch(r"/orders/([^/]+)", path)
        if found and method == "POST":
            self.update_order(found.group(1), fulfillment=body.get("fulfillment"), cancel=body.get("cancel"))
            return _json_response(204, None)
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


def operation_names() -> list[str]:
    """Every name ``calls``, ``throttled`` and ``inject`` know."""
    return [TOKEN_OPERATION, *OPERATIONS]


def _int_param(raw: str | None, default: int, name: str, error_id: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _Refusal(400, f"Invalid {name}: {raw[:20]}", error_id=error_id) from None


def _timestamp(raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _Refusal(400, "Invalid date format", error_id=30810) from None
    if parsed.tzinfo is None:
        raise _Refusal(400, "Invalid date format", error_id=30810)
    return utc(parsed)


def _parse_filter(raw: str, seller: str, now: datetime) -> _Query:
    """eBay's ``filter``: ``creationdate:[a..b]``, ``lastmodifieddate:[a..b]``, ``orderfulfillmentstatus:{A|B}``,
    comma-separated; creationdate wins when both dates are given; no filter means the last 90 days' orders."""
    ranges: dict[str, tuple[datetime | None, datetime | None]] = {}
    statuses: frozenset[str] | None = None
    rest = raw
    for found in _FILTER.finditer(raw):
        rest = rest.replace(found.group(0), "", 1)
        if found.group(3) is not None:
            values = frozenset(found.group(3).split("|"))
            if values - set(FULFILLMENT_STATUSES):
                raise _Refusal(400, "Invalid filter value for filter orderfulfillmentstatus", error_id=30800)
            statuses = values
            continue
        start_raw, sep, end_raw = found.group(2).partition("..")
        if not sep:
            raise _Refusal(400, "Invalid date format", error_id=30810)
        if not start_raw:
            raise _Refusal(400, "Start date is missing", error_id=30820)
        start = _timestamp(start_raw)
        end = _timestamp(end_raw) if end_raw else None
        if end is not None and end < start:
            raise _Refusal(400, "Start date should be before end date", error_id=30840)
        if start > now or (end is not None and end > now):
            raise _Refusal(400, "Start and end dates can't be in the future", error_id=30850)
        ranges[found.group(1)] = (start, end)
    if rest.strip(", "):
        raise _Refusal(400, "Invalid filter name", error_id=30700)
    if "creationdate" in ranges:
        after, before = ranges["creationdate"]
        return _Query(seller, "created", after, before, statuses, None)
    if "lastmodifieddate" in ranges:
        after, before = ranges["lastmodifieddate"]
        return _Query(seller, "modified", after, before, statuses, None)
    return _Query(seller, "created", now - timedelta(days=90), None, statuses, None)


def _amount(value: Any, currency: str) -> dict[str, str]:
    return {"currency": currency, "value": f"{value:.2f}"}


def _contact(ship: Any, *, email: str | None = None) -> dict[str, Any]:
    address: dict[str, Any] = {"addressLine1": ship.address_line1}
    if ship.address_line2:
        address["addressLine2"] = ship.address_line2
    address["city"] = ship.city
    if ship.state_or_province:
        address["stateOrProvince"] = ship.state_or_province
    if ship.postal_code:
        address["postalCode"] = ship.postal_code
    if ship.county:
        address["county"] = ship.county
    address["countryCode"] = ship.country_code
    contact: dict[str, Any] = {"fullName": ship.full_name, "contactAddress": address}
    if ship.company:
        contact["companyName"] = ship.company
    if ship.phone:
        contact["primaryPhone"] = {"phoneNumber": ship.phone}
    if email:
        contact["email"] = email
    return contact


def render_order(order: FakeOrder) -> dict[str, Any]:
    """An ``Order`` as getOrders and getOrder serve it: buyer, ship-to, statuses, line items, totals."""
    currency = order.items[0].currency if order.items else "USD"
    lifecycle = {"NOT_STARTED": "NOT_STARTED", "IN_PROGRESS": "IN_PROGRESS", "FULFILLED": "FULFILLED"}
    rendered: dict[str, Any] = {
        "orderId": order.order_id,
        "creationDate": iso(order.created),
        "lastModifiedDate": iso(order.last_modified),
        "orderFulfillmentStatus": lifecycle[order.fulfillment_status],
        "orderPaymentStatus": "PAID" if order.cancel_state != "CANCELED" else "FULLY_REFUNDED",
        "sellerId": order.seller_id,
        "buyer": {
            "username": order.buyer_username,
            "buyerRegistrationAddress": _contact(order.buyer_address, email=order.buyer_email),
        },
        "pricingSummary": {"total": _amount(order.total, currency)},
        "cancelStatus": {"cancelState": order.cancel_state, "cancelRequests": []},
        "fulfillmentStartInstructions": [
            {
                "fulfillmentInstructionsType": "SHIP_TO",
                "ebaySupportedFulfillment": False,
                "minEstimatedDeliveryDate": iso(order.min_delivery),
                "maxEstimatedDeliveryDate": iso(order.max_delivery),
                "shippingStep": {
                    "shippingCarrierCode": "USPS",
                    "shippingServiceCode": "USPSPriority",
                    "shipTo": _contact(order.ship_to),
                },
            }
        ],
        "fulfillmentHrefs": [],
        "lineItems": [
            {
                "lineItemId": item.line_item_id,
                "legacyItemId": item.legacy_item_id,
                "sku": item.sku,
                "title": item.title,
                "quantity": item.quantity,
                "lineItemCost": _amount(item.unit_price * item.quantity, currency),
                "lineItemFulfillmentStatus": "FULFILLED"
                if order.fulfillment_status == "FULFILLED" or item.line_item_id in _shipped_items(order)
                else "NOT_STARTED",
                "listingMarketplaceId": order.marketplace_id,
                "purchaseMarketplaceId": order.marketplace_id,
                "lineItemFulfillmentInstructions": {
                    "shipByDate": iso(order.ship_by),
                    "minEstimatedDeliveryDate": iso(order.min_delivery),
                    "maxEstimatedDeliveryDate": iso(order.max_delivery),
                    "guaranteedDelivery": False,
                },
            }
            for item in order.items
        ],
    }
    if order.cancel_state == "CANCELED":
        rendered["cancelStatus"]["cancelledDate"] = iso(order.last_modified)
    return rendered


def _shipped_items(order: FakeOrder) -> set[str]:
    """The line items a shipping fulfillment covers."""
    return {line["lineItemId"] for f in order.fulfillments for line in f["lineItems"]}


def _error_body(refusal: _Refusal) -> dict[str, Any]:
    return {
        "errors": [
            {
                "errorId": refusal.error_id,
                "domain": "API_FULFILLMENT",
                "category": refusal.category,
                "message": refusal.message,
            }
        ]
    }


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = "" if body is None else json.dumps(body, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escape it (valid JSON, as eBay would)
        text = json.dumps(body)
    response = Response(text, status=status, headers=headers)
    if body is not None:
        response.content_type = "application/json"
    return response


def _seller_json(app: App, seller: Seller) -> dict[str, Any]:
    return {
        "username": seller.username,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
        "ru_name": app.ru_name,
        "refresh_token": seller.refresh_token,
        "marketplace_ids": list(seller.marketplace_ids),
    }
