"""The fake TikTok Shop: a real HTTP server speaking the token service, Authorization, Order and Fulfillment.

One ``FakeTikTok`` is a WSGI application served by werkzeug in a background thread. Requests pass the same
steps as at TikTok, each able to answer early::

    route -> count -> injected delay -> injected fault -> app_key, timestamp, sign (401 106001)
          -> access token (401) -> shop_cipher -> rate limit (429) -> the operation
          -> schema check of the body (500 if it fails) -> answer

Every body it answers with is checked against TikTok's schemas (``connectors/platform_specs/tiktok/``,
which forbid unknown fields); a failure is recorded in ``validation_errors`` (which tests keep empty) and
answered as 500. The token service lives on its own host at TikTok (auth.tiktok-shops.com); here it is a
path of the same server. Nothing is logged per request: the fake serves buyer data and must not leak it.

Error codes: 106001 (a wrong ``sign``, HTTP 401, "Invalid credentials. The 'sign' query parameter is
invalid.") is what TikTok answers; the other codes in :data:`ERRORS` are the fake's choice, with TikTok's
HTTP statuses, since the staged material doesn't list them. A connector must tell them apart by HTTP
status and by these names, never by message text.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from connectors.fake_amazon.limits import TokenBucket
from connectors.fakeserver import ServedFake, client_went_away

from . import schemas
from .data import NEXT_STATUS, STATUSES, FakeOrder, OrderFactory, Recipient, Shop, place, places
from .pdf import shipping_label_pdf

ACCESS_TOKEN_LIFETIME = timedelta(days=7)  # TikTok: "default expiration time set to seven days"
REFRESH_TOKEN_LIFETIME = timedelta(days=365)
AUTH_CODE_LIFETIME = timedelta(minutes=10)
DOC_URL_LIFETIME = timedelta(hours=24)  # "The URL is valid for 24 hours."
PAGE_TOKEN_LIFETIME = timedelta(hours=2)
#: How far a request's ``timestamp`` may be from the server's wall clock.
TIMESTAMP_TOLERANCE = 300
MAX_PAGE_SIZE = 100
MAX_DETAIL_IDS = 50

#: The fake's rate limits: requests per second per (shop, endpoint), and the burst. TikTok publishes no
#: per-endpoint figures in the staged material; these are the fake's, and the connector's pacing mirrors
#: them (connectors/tiktok/platform.py).
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "token.get": (5.0, 5),
    "token.refresh": (5.0, 5),
    "shops": (5.0, 5),
    "orders.search": (10.0, 10),
    "orders.detail": (10.0, 10),
    "orders.detail.202507": (10.0, 10),
    "shipping_document": (10.0, 10),
}
OPERATIONS = tuple(RATE_LIMITS)
FAULT_STATUSES = frozenset({400, 401, 429, 500, 503})


@dataclass(frozen=True)
class ApiError:
    """One kind of TikTok error answer: its HTTP status, ``code`` and ``message``."""

    status: int
    code: int
    message: str


ERRORS: dict[str, ApiError] = {
    "sign": ApiError(401, 106001, "Invalid credentials. The 'sign' query parameter is invalid."),
    "app_key": ApiError(401, 106000, "Invalid credentials. The 'app_key' query parameter is invalid."),
    "timestamp": ApiError(401, 106002, "Invalid timestamp. The 'timestamp' query parameter has expired."),
    "token_invalid": ApiError(401, 105001, "Invalid credentials. The access token is invalid."),
    "token_expired": ApiError(401, 105002, "Expired credentials. The access token has expired."),
    "shop_cipher": ApiError(400, 106011, "Invalid shop_cipher. The shop is not authorised for this app."),
    "param": ApiError(400, 36009003, "Invalid parameters."),
    "page_token": ApiError(400, 36009003, "Invalid page_token. It is unknown or has expired."),
    "not_found": ApiError(404, 36009404, "The requested resource was not found."),
    "no_document": ApiError(400, 21011001, "Shipping documents are only available for TikTok-shipped packages."),
    "throttled": ApiError(429, 36009004, "Too many requests. Please retry later."),
    "internal": ApiError(500, 36009005, "Internal error. Please retry later."),
    "unavailable": ApiError(503, 36009006, "Service unavailable. Please retry later."),
    "auth_code": ApiError(400, 36004004, "Invalid auth_code. It is unknown, used or expired."),
    "refresh_token": ApiError(400, 36004005, "Invalid refresh_token. It is unknown or has expired."),
    "app_secret": ApiError(401, 36004003, "Invalid app_key or app_secret."),
    "grant_type": ApiError(400, 36004002, "Invalid grant_type."),
}
_FAULT_ERRORS = {400: "param", 401: "token_invalid", 429: "throttled", 500: "internal", 503: "unavailable"}


class FakeTikTokError(Exception):
    """Misuse of the fake's control API (unknown order, shop, status or operation)."""


class _Refusal(Exception):
    def __init__(self, kind: str, message: str | None = None) -> None:
        error = ERRORS[kind]
        super().__init__(message or error.message)
        self.error = dataclasses.replace(error, message=message or error.message)


@dataclass(frozen=True)
class App:
    """The partner app labelvault is (its key and secret), registered with the fake."""

    app_key: str
    app_secret: str = field(repr=False)


@dataclass
class _Grant:
    """One seller's authorisation of the app: the shops it covers and the tokens issued for it."""

    open_id: str
    seller_name: str
    region: str
    shops: tuple[str, ...]


@dataclass
class _Token:
    grant: _Grant
    expires_at: datetime
    kind: str  # access, refresh, code
    used: bool = False


@dataclass(frozen=True)
class _Query:
    shop_id: str
    field: str  # update_time, create_time
    ge: int | None
    lt: int
    status: str | None
    shipping_type: str | None

    def key(self, order: FakeOrder) -> tuple[int, str]:
        """Where an order sorts: its timestamp of the searched field, then its id (TikTok pages stably)."""
        return _ts(order.update_time if self.field == "update_time" else order.create_time), order.id

    def matches(self, order: FakeOrder) -> bool:
        stamp = self.key(order)[0]
        return (
            order.shop_id == self.shop_id
            and (self.ge is None or stamp >= self.ge)
            and stamp < self.lt
            and (self.status is None or order.status == self.status)
            and (self.shipping_type is None or order.shipping_type == self.shipping_type)
        )


@dataclass
class _Paging:
    query: _Query
    descending: bool
    after: tuple[int, str] | None  # the sort key of the last order served
    page_size: int
    issued_at: datetime
    served: set[str]


@dataclass
class _Fault:
    count: int
    operation: str | None
    status: int = 0
    seconds: float = 0.0
    drop: bool = False


def _ts(t: datetime) -> int:
    return int(t.timestamp())


def _derive(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join((str(seed), *parts)).encode()).hexdigest()


def expected_sign(app_secret: str, path: str, params: dict[str, str], body: bytes, content_type: str) -> str:
    """TikTok's request signature, computed the way TikTok's server checks it.

    The query parameters but ``sign`` and ``access_token``, sorted by name, each as name then value; the
    path before them; the body after them (unless the request is multipart); the whole wrapped in the app
    secret; HMAC-SHA256 keyed with the app secret, in lowercase hex.
    """
    text = path + "".join(f"{k}{params[k]}" for k in sorted(params) if k not in ("sign", "access_token"))
    if body and not content_type.startswith("multipart/form-data"):
        text += body.decode("utf-8", "surrogateescape")
    wrapped = f"{app_secret}{text}{app_secret}".encode("utf-8", "surrogateescape")
    return hmac.new(app_secret.encode(), wrapped, hashlib.sha256).hexdigest()


class FakeTikTok(ServedFake):
    """A fake TikTok Shop over real HTTP (see the module docstring for what a request passes through).

    ``speedup`` multiplies every rate limit; ``clock`` is the platform's "now" (order dates, token, code
    and page-token lifetimes); request timestamps and rate limits run on the wall clock, as at TikTok.
    """

    DEFAULT_APP: ClassVar[App] = App(
        app_key="6lvfake0tiktok",
        app_secret="f4ke5ecret0f7he1abe1vau1tapp0000000001",  # noqa: S106 - a fake's
    )

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        shops: int = 1,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        if shops < 1:
            raise ValueError("a seller has at least one shop")
        self.speedup = speedup
        self.seed = seed
        super().__init__(host=host, port=port)
        self.app = self.DEFAULT_APP
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._factory = OrderFactory(seed)
        self._mutation_rng = random.Random(seed + 1)  # noqa: S311 - test data
        regions = ("US", "GB", "JP", "TH", "MY")
        self.shops: list[Shop] = []
        for i in range(shops):
            digest = _derive(seed, "shop", str(i))
            self.shops.append(
                Shop(
                    id=str(7_490_000_000_000_000_000 + int(digest[:12], 16) % 10**15),
                    name=f"Labelvault Test Shop {i + 1}",
                    region=regions[i % len(regions)],
                    cipher=f"ROW_{digest[12:40]}",
                    code=f"{regions[i % len(regions)]}LCLV{digest[40:44].upper()}",
                )
            )
        self.grant = _Grant(
            open_id=f"lv{_derive(seed, 'open')[:24]}",
            seller_name="Labelvault Test Seller",
            region=self.shops[0].region,
            shops=tuple(s.id for s in self.shops),
        )
        self._orders: dict[str, FakeOrder] = {}
        self._tokens: dict[str, _Token] = {}
        self._paging: dict[str, _Paging] = {}
        self._docs: dict[str, tuple[str, datetime]] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._mutate_while_paging = False
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.refused_signatures = 0
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []
        self.mutations: list[tuple[str, str, str]] = []

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-tiktok"
    already_started = FakeTikTokError
    # base_url (ServedFake's) is the Open API base URL (TikTok's ``https://open-api.tiktokglobalshop.com``).

    @property
    def auth_url(self) -> str:
        """The token service's base URL (TikTok's ``https://auth.tiktok-shops.com``): the same server here."""
        return self.base_url

    def now(self) -> datetime:
        """The platform's current time (aware, UTC, whole seconds)."""
        now = self._clock()
        return (now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)).replace(microsecond=0)

    # --- authorisation --------------------------------------------------------------------------------------

    def authorize(self) -> str:
        """The seller grants the app: a one-time ``auth_code`` (what TikTok's redirect carries), 10 minutes."""
        code = "ROW_" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[code] = _Token(self.grant, self.now() + AUTH_CODE_LIFETIME, "code")
        return code

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired from now on (401, code 105002)."""
        with self._lock:
            past = self.now() - timedelta(seconds=1)
            for token in self._tokens.values():
                if token.kind == "access":
                    token.expires_at = past

    def expire_grant(self) -> None:
        """The seller's grant runs out: every refresh token (and access token) is expired from now on."""
        with self._lock:
            past = self.now() - timedelta(seconds=1)
            for token in self._tokens.values():
                token.expires_at = past

    # --- orders ---------------------------------------------------------------------------------------------

    def shop(self, index: int = 0) -> Shop:
        """One of the seller's shops."""
        return self.shops[index]

    def generate_orders(
        self,
        n: int,
        *,
        shop: int = 0,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
        platform_shipped_every: int = 0,
    ) -> list[str]:
        """Create ``n`` orders in a shop, placed between ``start`` (default: 7 days ago) and now; their ids."""
        for status in statuses or ():
            if status not in STATUSES:
                raise FakeTikTokError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        with self._lock:
            now = self.now()
            created = self._factory.generate(
                n,
                shop=self.shops[shop],
                start=start or now - timedelta(days=7),
                now=now,
                statuses=statuses,
                platform_shipped_every=platform_shipped_every,
            )
            for order in created:
                self._orders[order.id] = order
        return [o.id for o in created]

    def add_order(self, *, recipient: Recipient | None = None, shop: int = 0, **fields: Any) -> str:
        """One order with the given recipient and fields (``status``, ``shipping_type``...), updated now."""
        (order_id,) = self.generate_orders(1, shop=shop, statuses=[fields.pop("status", "AWAITING_SHIPMENT")])
        with self._lock:
            order = self._orders[order_id]
            if recipient is not None:
                order.recipient = recipient
            for name, value in fields.items():
                if not hasattr(order, name):
                    raise FakeTikTokError(f"orders have no field {name}")
                setattr(order, name, value)
            order.update_time = self.now()
        return order_id

    def edit_recipient(self, order_id: str, **changes: Any) -> None:
        """Change fields of an order's recipient (any text goes, lone surrogates included); bumps update_time."""
        with self._lock:
            order = self._order(order_id)
            order.recipient = dataclasses.replace(order.recipient, **changes)
            order.update_time = max(order.update_time, self.now())

    def update_order(self, order_id: str, *, status: str) -> None:
        """Move an order to ``status`` (delivery stamps its delivery time) and bump its update_time to now."""
        if status not in STATUSES:
            raise FakeTikTokError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        with self._lock:
            order = self._order(order_id)
            now = self.now()
            order.status = status
            if status in ("DELIVERED", "COMPLETED") and order.delivery_time is None:
                order.delivery_time = now
            order.update_time = max(order.update_time, now)

    def _order(self, order_id: str) -> FakeOrder:
        try:
            return self._orders[order_id]
        except KeyError:
            raise FakeTikTokError(f"unknown order {order_id}") from None

    def orders(self) -> dict[str, FakeOrder]:
        """A snapshot of every order by id: the truth a connector's result is compared with."""
        with self._lock:
            return {k: dataclasses.replace(o) for k, o in self._orders.items()}

    def expected_label(self, order_id: str) -> dict[str, str | None]:
        """The label fields a connector should store for this order now (all None: no label to keep).

        TikTok-shipped orders carry a desensitised recipient and ship on TikTok's label: nothing to keep;
        nor is there a label before the order awaits shipment or after it was cancelled.
        Otherwise: the districts by level (L1 the state or region, L2 the county, or the city where no L3
        follows, L3 the city; a UK post town is the city), the third and fourth lines (Brazil) as one.
        """
        with self._lock:
            order = self._order(order_id)
        fields = dict.fromkeys(
            (
                "name",
                "company",
                "address_line1",
                "address_line2",
                "address_line3",
                "city",
                "district_or_county",
                "state_or_region",
                "municipality",
                "postal_code",
                "country_code",
                "phone",
                "address_type",
            )
        )
        if order.platform_shipped or order.status in ("UNPAID", "ON_HOLD", "CANCELLED"):
            return fields  # TikTok's label, or no label allowed yet (the buyer may still cancel) or any more
        r = order.recipient
        levels = {d.level: d.name for d in r.districts}
        city = r.post_town or levels.get("L3") or levels.get("L2")
        fields.update(
            name=r.name,
            address_line1=r.address_line1,
            address_line2=r.address_line2,
            address_line3=" ".join(x for x in (r.address_line3, r.address_line4) if x) or None,
            city=city,
            district_or_county=levels.get("L2") if (r.post_town or "L3" in levels) else None,
            state_or_region=levels.get("L1"),
            postal_code=r.postal_code,
            country_code=r.region_code,
            phone=r.phone_number,
        )
        return {k: (v or None) for k, v in fields.items()}

    def shipping_document(self, order_id: str) -> bytes:
        """The PDF label TikTok issues for a TikTok-shipped order (what its doc URL serves)."""
        with self._lock:
            order = self._order(order_id)
        r = order.recipient
        levels = [d.name for d in r.districts if d.level != "L0"]
        lines = [
            "TikTok Shop - Shipping Label",
            f"Tracking {order.tracking_number}",
            f"Order {order.id}",
            r.name,
            r.address_line1,
            *(x for x in (r.address_line2, r.address_line3, r.address_line4) if x),
            " ".join((*reversed(levels), r.postal_code or "")).strip(),
            r.region_code,
            r.phone_number or "",
        ]
        return shipping_label_pdf(lines)

    def buyer_pii_strings(self) -> set[str]:
        """Every recipient and buyer string the fake serves or prints (names, streets, phones, e-mails, notes)."""
        found: set[str] = set()
        with self._lock:
            orders = list(self._orders.values())
        for o in orders:
            r = o.recipient
            found.update((r.name, r.address_line1, o.buyer_email, o.buyer_message))
            found.update(
                v
                for v in (r.first_name, r.last_name, r.address_line2, r.address_line3, r.address_line4, r.phone_number)
                if v
            )
        found.discard("")
        return found

    # --- fault injection ------------------------------------------------------------------------------------

    def inject(self, *, status: int, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (of ``operation``, or any but the token service) answer ``status``."""
        if status not in FAULT_STATUSES:
            raise FakeTikTokError(f"status must be one of {sorted(FAULT_STATUSES)}")
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, status=status))

    def inject_delay(self, seconds: float, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests wait ``seconds`` before being handled (slow responses)."""
        self._check_operation(operation)
        with self._lock:
            self._delays.append(_Fault(count=count, operation=operation, seconds=seconds))

    def drop_connections(self, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests get no answer: the connection is closed unanswered."""
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, drop=True))

    def mutate_while_paging(self, enabled: bool = True) -> None:
        """Between pages of a search, move one already-served and one not-yet-served order along its life."""
        with self._lock:
            self._mutate_while_paging = enabled

    def forget_page_tokens(self) -> None:
        """Every page token issued so far is unknown from now on (400, as when one has expired)."""
        with self._lock:
            self._paging.clear()

    @staticmethod
    def _check_operation(operation: str | None) -> None:
        if operation is not None and operation not in OPERATIONS:
            raise FakeTikTokError(f"unknown operation {operation}; known: {', '.join(OPERATIONS)}")

    def _take(self, queue: list[_Fault], operation: str) -> _Fault | None:
        wildcard = not operation.startswith("token.")
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
        """The enforced (requests per second, burst) of an operation, ``speedup`` applied."""
        rate, burst = RATE_LIMITS[operation]
        return rate * self.speedup, burst

    def min_calls_and_seconds(self, orders: int, *, page_size: int = MAX_PAGE_SIZE) -> tuple[int, float]:
        """The fewest calls, and least wall time, a full sync of ``orders`` orders of one shop can take.

        One token exchange (a refresh: the stored account holds a refresh token) and ``ceil(orders /
        page_size)`` searches (at least one); the searches' burst goes at once, the rest one per refill.
        """
        searches = max(1, -(-orders // page_size))
        rate, burst = self.rate_limit("orders.search")
        return 1 + searches, max(0, searches - burst) / rate

    def stats(self) -> dict[str, Any]:
        """Counters for a separate process (``GET /_fake/stats``)."""
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttled": dict(self.throttled),
                "refused_signatures": self.refused_signatures,
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
        except _Dropped:
            # Close the connection unanswered; werkzeug takes the failed write as a dropped connection.
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            response = Response(b"", status=500)
        except Exception as exc:  # answer like TikTok, never with a traceback; record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _error_response(ERRORS["internal"])
        return response(environ, start_response)

    _ROUTES: ClassVar[tuple[tuple[str, re.Pattern[str], str], ...]] = (
        ("GET", re.compile(r"/api/v2/token/get"), "token.get"),
        ("GET", re.compile(r"/api/v2/token/refresh"), "token.refresh"),
        ("GET", re.compile(r"/authorization/202309/shops"), "shops"),
        ("POST", re.compile(r"/order/202309/orders/search"), "orders.search"),
        ("GET", re.compile(r"/order/202309/orders"), "orders.detail"),
        ("GET", re.compile(r"/order/202507/orders"), "orders.detail.202507"),
        (
            "GET",
            re.compile(r"/fulfillment/202309/packages/(?P<package_id>[0-9]+)/shipping_documents"),
            "shipping_document",
        ),
    )

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(request)
        found = re.fullmatch(r"/_docs/([A-Za-z0-9_-]+)\.pdf", path)
        if found and request.method == "GET":
            return self._document(found.group(1))
        for method, pattern, operation in self._ROUTES:
            match = pattern.fullmatch(path)
            if match is not None:
                if request.method != method:
                    return _error_response(ApiError(405, 36009003, f"Use {method} for this endpoint."))
                return self._api(operation, request, match.groupdict())
        return _error_response(ERRORS["not_found"])

    def _api(self, operation: str, request: Request, path_params: dict[str, str]) -> Response:
        with self._lock:
            self.calls[operation] += 1
        delay = self._take(self._delays, operation)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        try:
            fault = self._take(self._faults, operation)
            if fault is not None:
                if fault.drop:
                    raise _Dropped
                if fault.status == 429:
                    with self._lock:
                        self.throttled[operation] += 1
                raise _Refusal(_FAULT_ERRORS[fault.status])
            if operation.startswith("token."):
                body = self._token(operation, request)
            else:
                grant, shop = self._authenticate(operation, request)
                bucket = self._bucket(shop.id if shop else grant.open_id, operation)
                if not bucket.take():
                    with self._lock:
                        self.throttled[operation] += 1
                    raise _Refusal("throttled")
                body = self._operate(operation, request, path_params, grant, shop)
            status = 200
        except _Refusal as refusal:
            status, body = refusal.error.status, _envelope(refusal.error.code, refusal.error.message)
        problems = schemas.response_errors(operation, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(problems)
            status, body = 500, _envelope(ERRORS["internal"].code, ERRORS["internal"].message)
        return _json_response(status, body)

    def _bucket(self, scope: str, operation: str) -> TokenBucket:
        with self._lock:
            key = (scope, operation)
            if key not in self._buckets:
                rate, burst = self.rate_limit(operation)
                self._buckets[key] = TokenBucket(rate, burst)
            return self._buckets[key]

    # --- the token service ----------------------------------------------------------------------------------

    def _token(self, operation: str, request: Request) -> dict[str, Any]:
        args = request.args
        if (args.get("app_key"), args.get("app_secret")) != (self.app.app_key, self.app.app_secret):
            raise _Refusal("app_secret")
        now = self.now()
        with self._lock:
            if operation == "token.get":
                if args.get("grant_type") != "authorized_code":
                    raise _Refusal("grant_type")
                token = self._tokens.get(args.get("auth_code", ""))
                if token is None or token.kind != "code" or token.used or now >= token.expires_at:
                    raise _Refusal("auth_code")
                token.used = True
            else:
                # TikTok documents grant_type=refresh_token; its own SDK sends authorized_code here too.
                if args.get("grant_type") not in ("refresh_token", "authorized_code"):
                    raise _Refusal("grant_type")
                token = self._tokens.get(args.get("refresh_token", ""))
                if token is None or token.kind != "refresh" or now >= token.expires_at:
                    raise _Refusal("refresh_token")
            # A refresh hands out a new refresh token; the old one stays good until its own expiry.
            access, refresh = "ROW_" + secrets.token_urlsafe(32), "ROW_" + secrets.token_urlsafe(32)
            access_until, refresh_until = now + ACCESS_TOKEN_LIFETIME, now + REFRESH_TOKEN_LIFETIME
            self._tokens[access] = _Token(token.grant, access_until, "access")
            self._tokens[refresh] = _Token(token.grant, refresh_until, "refresh")
        return _envelope(
            0,
            "success",
            {
                "access_token": access,
                "access_token_expire_in": _ts(access_until),
                "refresh_token": refresh,
                "refresh_token_expire_in": _ts(refresh_until),
                "open_id": token.grant.open_id,
                "seller_name": token.grant.seller_name,
                "seller_base_region": token.grant.region,
                "user_type": 0,
            },
        )

    # --- signed Open API calls ------------------------------------------------------------------------------

    def _authenticate(self, operation: str, request: Request) -> tuple[_Grant, Shop | None]:
        args = request.args.to_dict()
        if args.get("app_key") != self.app.app_key:
            raise _Refusal("app_key")
        try:
            stamp = int(args.get("timestamp", ""))
        except ValueError:
            raise _Refusal("timestamp") from None
        if abs(time.time() - stamp) > TIMESTAMP_TOLERANCE:
            raise _Refusal("timestamp")
        sign = expected_sign(self.app.app_secret, request.path, args, request.get_data(), request.content_type or "")
        if not hmac.compare_digest(sign, args.get("sign", "")):
            with self._lock:
                self.refused_signatures += 1
            raise _Refusal("sign")
        with self._lock:
            token = self._tokens.get(request.headers.get("x-tts-access-token", ""))
            now = self.now()
        if token is None or token.kind != "access":
            raise _Refusal("token_invalid")
        if now >= token.expires_at:
            raise _Refusal("token_expired")
        if operation == "shops":
            return token.grant, None
        cipher = args.get("shop_cipher")
        shop = next((s for s in self.shops if s.cipher == cipher and s.id in token.grant.shops), None)
        if shop is None:
            raise _Refusal("shop_cipher")
        return token.grant, shop

    def _operate(
        self, operation: str, request: Request, path_params: dict[str, str], grant: _Grant, shop: Shop | None
    ) -> dict[str, Any]:
        if operation == "shops":
            shops = [s for s in self.shops if s.id in grant.shops]
            return _envelope(0, "success", {"shops": [_shop_json(s) for s in shops]})
        assert shop is not None
        if operation == "orders.search":
            return self._search(request, shop)
        if operation in ("orders.detail", "orders.detail.202507"):
            return self._detail(request, shop)
        return self._shipping_document(request, shop, path_params["package_id"])

    def _search(self, request: Request, shop: Shop) -> dict[str, Any]:
        args = request.args
        try:
            page_size = int(args.get("page_size", ""))
        except ValueError:
            raise _Refusal("param", "page_size is required: an integer from 1 to 100.") from None
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise _Refusal("param", "page_size is required: an integer from 1 to 100.")
        sort_field = args.get("sort_field", "create_time")
        sort_order = args.get("sort_order", "DESC")
        if sort_field not in ("create_time", "update_time") or sort_order not in ("ASC", "DESC"):
            raise _Refusal("param", "sort_field is create_time or update_time; sort_order ASC or DESC.")
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise _Refusal("param", "The request body is not JSON.") from None
        if schemas.errors(*schemas.SEARCH_BODY, body):
            raise _Refusal("param", "The request body has unknown or mistyped fields.")
        now = self.now()
        token = args.get("page_token")
        with self._lock:
            if token:
                paging = self._paging.get(token)
                if paging is None or now - paging.issued_at > PAGE_TOKEN_LIFETIME or paging.query.shop_id != shop.id:
                    raise _Refusal("page_token")
                if self._mutate_while_paging:
                    self._mutate(paging, now)
            else:
                if any(k.startswith("create_time") for k in body) and any(k.startswith("update_time") for k in body):
                    raise _Refusal("param", "Filter by create_time or by update_time, not both.")
                field = "create_time" if "create_time_ge" in body or "create_time_lt" in body else "update_time"
                query = _Query(
                    shop_id=shop.id,
                    field=field,
                    ge=_int(body.get(f"{field}_ge")),
                    lt=_int(body.get(f"{field}_lt")) or _ts(now) + 1,
                    status=body.get("order_status"),
                    shipping_type=body.get("shipping_type"),
                )
                paging = _Paging(query, sort_order == "DESC", None, page_size, now, set())
            matching = [o for o in self._orders.values() if paging.query.matches(o)]
            key = paging.query.key
            matching.sort(key=key, reverse=paging.descending)
            if paging.after is not None:
                after = paging.after
                matching = [o for o in matching if (key(o) < after if paging.descending else key(o) > after)]
            page = matching[:page_size]
            data: dict[str, Any] = {
                "orders": [_order_json(o, list_view=True) for o in page],
                "total_count": len(matching),
            }
            if len(matching) > page_size:
                # Each token is its own position: asked for again (a client retrying, or resuming after a
                # crash), it serves the same next page, as TikTok's tokens do, until it expires.
                following = dataclasses.replace(
                    paging,
                    after=key(page[-1]),
                    page_size=page_size,
                    issued_at=now,
                    served=paging.served | {o.id for o in page},
                )
                next_token = secrets.token_urlsafe(24)
                self._paging = {k: v for k, v in self._paging.items() if now - v.issued_at <= PAGE_TOKEN_LIFETIME}
                self._paging[next_token] = following
                data["next_page_token"] = next_token
            else:
                data["next_page_token"] = ""
        return _envelope(0, "success", data)

    def _mutate(self, paging: _Paging, now: datetime) -> None:
        """Move one order this search served, and one it has yet to serve, one step along their lives."""
        matching = sorted((o for o in self._orders.values() if paging.query.matches(o)), key=lambda o: o.id)
        served = [o for o in matching if o.id in paging.served]
        upcoming = [o for o in matching if o.id not in paging.served]
        for group, cancel in ((served, False), (upcoming, True)):
            candidates = [o for o in group if o.status in NEXT_STATUS]
            if not candidates:
                continue
            order = self._mutation_rng.choice(candidates)
            old = order.status
            order.status = (
                "CANCELLED" if cancel and old in ("UNPAID", "ON_HOLD", "AWAITING_SHIPMENT") else NEXT_STATUS[old]
            )
            if order.status in ("DELIVERED", "COMPLETED") and order.delivery_time is None:
                order.delivery_time = now
            order.update_time = max(order.update_time, now)
            self.mutations.append((order.id, old, order.status))

    def _detail(self, request: Request, shop: Shop) -> dict[str, Any]:
        """Orders by id (202309 and 202507 differ only in fields the fake never serves)."""
        ids = [i for raw in request.args.getlist("ids") for i in raw.split(",") if i]
        if not ids or len(ids) > MAX_DETAIL_IDS:
            raise _Refusal("param", f"ids is required: 1 to {MAX_DETAIL_IDS} order ids.")
        with self._lock:
            found = [self._orders[i] for i in ids if i in self._orders and self._orders[i].shop_id == shop.id]
            orders = [_order_json(o, list_view=False) for o in found]
        return _envelope(0, "success", {"orders": orders})

    def _shipping_document(self, request: Request, shop: Shop, package_id: str) -> dict[str, Any]:
        if request.args.get("document_type") not in (
            "SHIPPING_LABEL",
            "PACKING_SLIP",
            "SHIPPING_LABEL_AND_PACKING_SLIP",
        ):
            raise _Refusal("param", "document_type is SHIPPING_LABEL, PACKING_SLIP or SHIPPING_LABEL_AND_PACKING_SLIP.")
        with self._lock:
            order = next(
                (o for o in self._orders.values() if o.package_id == package_id and o.shop_id == shop.id), None
            )
            if order is None:
                raise _Refusal("not_found", "The package was not found.")
            if order.shipping_type != "TIKTOK" or order.fulfillment_type != "FULFILLMENT_BY_SELLER":
                raise _Refusal("no_document")
            if order.status not in ("AWAITING_SHIPMENT", "AWAITING_COLLECTION", "PARTIALLY_SHIPPING"):
                raise _Refusal("no_document", "The package's shipping documents are no longer available.")
            doc = secrets.token_urlsafe(24)
            self._docs[doc] = (order.id, self.now() + DOC_URL_LIFETIME)
        url = f"{self.base_url}/_docs/{doc}.pdf"
        return _envelope(0, "success", {"doc_url": url, "tracking_number": order.tracking_number})

    def _document(self, doc: str) -> Response:
        with self._lock:
            self.calls["document"] += 1
            entry = self._docs.get(doc)
        if entry is None or self.now() >= entry[1]:
            return Response(b"", status=404)
        return Response(self.shipping_document(entry[0]), status=200, mimetype="application/pdf")

    # --- control endpoints ----------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        """JSON endpoints under ``/_fake/`` so another process (benchmark, demo) can drive the fake."""
        try:
            return self._control_route(request)
        except (FakeTikTokError, ValueError, TypeError, KeyError) as exc:
            return _json_response(400, {"error": type(exc).__name__, "message": str(exc)})

    def _control_route(self, request: Request) -> Response:
        path, method = request.path.removeprefix("/_fake"), request.method
        body: dict[str, Any] = (request.get_json(silent=True) or {}) if method == "POST" else {}
        if (method, path) == ("GET", "/stats"):
            return _json_response(200, self.stats())
        if (method, path) == ("GET", "/app"):
            return _json_response(
                200,
                {
                    "app_key": self.app.app_key,
                    "app_secret": self.app.app_secret,
                    "shops": [_shop_json(s) for s in self.shops],
                },
            )
        if (method, path) == ("POST", "/authorize"):
            return _json_response(201, {"auth_code": self.authorize()})
        if (method, path) == ("POST", "/orders"):
            start = body.get("start")
            ids = self.generate_orders(
                int(body.get("n", 1)),
                shop=int(body.get("shop", 0)),
                statuses=body.get("statuses"),
                start=datetime.fromisoformat(start) if start else None,
                platform_shipped_every=int(body.get("platform_shipped_every", 0)),
            )
            return _json_response(201, {"order_ids": ids})
        if (method, path) == ("GET", "/order-ids"):
            with self._lock:
                return _json_response(200, {"order_ids": sorted(self._orders)})
        if (method, path) == ("POST", "/inject"):
            self.inject(status=int(body["status"]), count=int(body.get("count", 1)), operation=body.get("operation"))
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
    """Raised through werkzeug so the connection closes without an answer (an injected dropped connection)."""


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _envelope(code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": uuid.uuid4().hex.upper()}
    if data is not None:
        body["data"] = data
    return body


def _error_response(error: ApiError) -> Response:
    return _json_response(error.status, _envelope(error.code, error.message))


def _json_response(status: int, body: Any) -> Response:
    text = "" if body is None else json.dumps(body, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escape it (valid JSON)
        text = json.dumps(body)
    response = Response(text, status=status)
    if body is not None:
        response.content_type = "application/json"
    return response


def _shop_json(shop: Shop) -> dict[str, Any]:
    return {
        "cipher": shop.cipher,
        "code": shop.code,
        "id": shop.id,
        "name": shop.name,
        "region": shop.region,
        "seller_type": shop.seller_type,
    }


def _mask(text: str | None) -> str:
    """TikTok's desensitising: first and last character kept, the rest starred."""
    if not text:
        return ""
    return text[0] + "***" + text[-1] if len(text) > 2 else "***"


def _recipient_json(order: FakeOrder) -> dict[str, Any]:
    r = order.recipient
    if order.platform_shipped:
        # "if this order uses platform logistics, recipient name [and phone] will be desensitized"; the
        # street is withheld too: the seller prints TikTok's label instead.
        return {
            "name": _mask(r.name),
            "first_name": _mask(r.first_name),
            "last_name": _mask(r.last_name),
            "phone_number": (r.phone_number[:6] + "*****" + r.phone_number[-2:]) if r.phone_number else "",
            "address_line1": "***",
            "address_line2": "",
            "address_line3": "",
            "address_line4": "",
            "address_detail": "***",
            "full_address": "***",
            "postal_code": r.postal_code or "",
            "region_code": r.region_code,
            "district_info": [_district_json(d) for d in r.districts],
        }
    lines = [x for x in (r.address_line1, r.address_line2, r.address_line3, r.address_line4) if x]
    levels = [d.name for d in r.districts if d.level != "L0"]
    body: dict[str, Any] = {
        "name": r.name,
        "first_name": r.first_name or r.name,
        "last_name": r.last_name or "",
        "phone_number": r.phone_number or "",
        "address_line1": r.address_line1,
        "address_line2": r.address_line2 or "",
        "address_line3": r.address_line3 or "",
        "address_line4": r.address_line4 or "",
        "address_detail": r.address_line2 or "",
        "full_address": ", ".join((*lines, *reversed(levels), r.postal_code or "")),
        "postal_code": r.postal_code or "",
        "region_code": r.region_code,
        "district_info": [_district_json(d) for d in r.districts],
        "delivery_preferences": {"drop_off_location": ""},
    }
    if r.post_town:
        body["post_town"] = r.post_town
    return body


def _district_json(d: Any) -> dict[str, Any]:
    body = {"address_level": d.level, "address_level_name": d.level_name, "address_name": d.name}
    if d.iso_code:
        body["iso_code"] = d.iso_code
    return body


def _order_json(order: FakeOrder, *, list_view: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": order.id,
        "status": order.status,
        "create_time": _ts(order.create_time),
        "update_time": _ts(order.update_time),
        "shipping_type": order.shipping_type,
        "fulfillment_type": order.fulfillment_type,
        "delivery_type": "HOME_DELIVERY",
        "is_sample_order": False,
        "is_cod": False,
        "buyer_email": order.buyer_email,
        "buyer_message": order.buyer_message,
        "user_id": "76" + order.id[2:],
        "packages": [{"id": order.package_id}],
        "warehouse_id": "7000000000000000001",
        "order_type": "NORMAL",
    }
    if order.status != "UNPAID":
        body["paid_time"] = _ts(order.create_time) + 30
    if order.rts_sla_time is not None:
        body["rts_sla_time"] = _ts(order.rts_sla_time)
    if order.status in ("IN_TRANSIT", "DELIVERED", "COMPLETED", "AWAITING_COLLECTION"):
        body["tracking_number"] = order.tracking_number
    if order.delivery_time is not None:
        body["delivery_time"] = _ts(order.delivery_time)
    if order.status == "CANCELLED":
        body["cancel_reason"] = "Buyer changed mind"
        body["cancellation_initiator"] = "BUYER"
    if order.has_address:
        body["recipient_address"] = _recipient_json(order)
    return body


def regions() -> tuple[str, ...]:
    """The markets the fake's recipients live in (for tests that want one of each)."""
    return places()


def market(region: str) -> Any:
    """The address shape of one market (districts, postal code), for tests that build a recipient."""
    return place(region)
