"""The fake Shopify: a real HTTP server speaking the Admin GraphQL API 2026-07, OAuth and privacy webhooks.

One ``FakeShopify`` is a WSGI application served by werkzeug in a background thread. A GraphQL request
passes the same steps as at Shopify, each able to answer early::

    route -> count -> injected delay -> injected fault -> access token (401) -> parse and validate
          against the schema -> requested cost (MAX_COST_EXCEEDED) -> leaky bucket (THROTTLED)
          -> execute over the in-memory orders (scopes, protected data -> ACCESS_DENIED)
          -> actual cost, refund -> JSON Schema check of the answer (500 if it fails) -> answer

Queries are executed by graphql-core against the schema Shopify publishes, with resolvers over the fake's
orders, so an answer has exactly the query's shape. Every answer is also checked against a JSON Schema
derived from the query and the schema's types; a failure is recorded in ``validation_errors`` (which tests
keep empty) and answered as 500. Nothing is logged per request: the fake serves buyer data.
"""

from __future__ import annotations

import base64
import collections
import copy
import functools
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    execute,
    get_named_type,
    get_operation_ast,
    get_variable_values,
    parse,
    validate,
)
from werkzeug.wrappers import Request, Response

from connectors.fakeserver import ServedFake, client_went_away

from . import search
from .data import (
    COUNTRIES,
    FULFILLMENT_ORDER_STATUSES,
    ORDER_GID,
    FakeFulfillment,
    FakeFulfillmentOrder,
    FakeOrder,
    OrderFactory,
    ShippingAddress,
    iso,
    utc,
    with_changes,
)
from .limits import BUCKET_SECONDS, PLANS, CostBucket
from .schema import (
    API_VERSION,
    PROTECTED_CONTENTS,
    SINGLE_QUERY_MAX_COST,
    Check,
    actual_cost,
    compile_check,
    introspection,
    protected_content,
    requested_cost,
    response_schema,
)

GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
AUTHORIZE_PATH = "/admin/oauth/authorize"
ACCESS_TOKEN_PATH = "/admin/oauth/access_token"  # noqa: S105 - a path, not a secret
MAX_PAGE_SIZE = 250
ORDER_WINDOW = timedelta(days=60)  # without read_all_orders, only the last 60 days of orders are visible
CODE_LIFETIME = timedelta(minutes=10)
# Expiring offline tokens (Shopify, December 2025; required for public apps from 1 January 2027): the access
# token lives an hour, its refresh token 90 days, and each refresh rotates both.
EXPIRING_TOKEN_LIFETIME = timedelta(seconds=3600)
REFRESH_TOKEN_LIFETIME = timedelta(days=90)
FAULT_STATUSES = frozenset({401, 402, 403, 404, 423, 429, 500, 502, 503, 504})
WEBHOOK_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
PROTECTED_DOCS = "https://shopify.dev/docs/apps/launch/protected-customer-data"
INVALID_TOKEN_BODY = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
KNOWN_SCOPES = frozenset(
    {
        "read_orders",
        "write_orders",
        "read_all_orders",
        "read_customers",
        "read_assigned_fulfillment_orders",
        "read_merchant_managed_fulfillment_orders",
        "read_third_party_fulfillment_orders",
        "read_marketplace_fulfillment_orders",
        "read_marketplace_orders",
        "read_products",
        "read_shipping",
        "read_fulfillments",
        "write_assigned_fulfillment_orders",
        "write_merchant_managed_fulfillment_orders",
        "write_third_party_fulfillment_orders",
    }
)
#: Fulfillment order states from which ``fulfillmentCreate`` may fulfil (Shopify's ``create_fulfillment`` action).
FULFILLABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})
_FAULT_BODIES: dict[int, Any] = {
    401: INVALID_TOKEN_BODY,
    402: {"errors": "Unavailable Shop"},
    403: {"errors": "[API] This action requires merchant approval for the requested scopes."},
    404: {"errors": "Not Found"},
    423: {"errors": "Locked"},
    429: {
        "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
    },
    500: {"errors": "Internal Server Error"},
    502: {"errors": "Bad Gateway"},
    503: {"errors": "Service Unavailable"},
    504: {"errors": "Gateway Timeout"},
}


class FakeShopifyError(Exception):
    """Misuse of the fake's control API (unknown order, shop, app, token or status)."""


@dataclass(frozen=True)
class ProtectedAccess:
    """What an app may read of protected customer data, as Shopify grants it.

    ``level`` 0: no customer data at all (``Order`` objects are denied); 1: customer data without names,
    addresses, phones and e-mails; 2: those of ``fields`` too (``name``, ``address``, ``phone``,
    ``email``, approved one by one). Custom apps have level 2 for everything.
    """

    level: int = 2
    fields: frozenset[str] = PROTECTED_CONTENTS

    def __post_init__(self) -> None:
        if self.level not in (0, 1, 2):
            raise FakeShopifyError("protected data level must be 0, 1 or 2")
        unknown = self.fields - PROTECTED_CONTENTS
        if unknown:
            raise FakeShopifyError(f"protected fields are among {', '.join(sorted(PROTECTED_CONTENTS))}")

    def allows(self, content: str) -> bool:
        """True when the app may read protected data of this kind."""
        return self.level == 2 and content in self.fields


FULL_ACCESS = ProtectedAccess(2, PROTECTED_CONTENTS)
LABEL_ACCESS = ProtectedAccess(2, frozenset({"name", "address", "phone"}))
LEVEL_1 = ProtectedAccess(1, frozenset())
NO_ACCESS = ProtectedAccess(0, frozenset())


@dataclass(frozen=True)
class Shop:
    """A shop on the fake: its myshopify domain, numeric id and plan (which sets its rate limit)."""

    domain: str
    shop_id: int
    name: str
    plan: str = "standard"


@dataclass(frozen=True)
class App:
    """A public app (OAuth install flow) or a custom app (tokens made in the shop admin), with its secret.

    ``client_secret`` signs OAuth redirects and webhooks. ``access`` is its protected-customer-data approval.
    """

    client_id: str
    client_secret: str = field(repr=False)
    kind: str = "public"  # public or custom
    access: ProtectedAccess = LABEL_ACCESS
    redirect_urls: tuple[str, ...] = ()  # empty: any redirect_uri is accepted


@dataclass
class _Token:
    app: str  # client_id
    shop: str
    scopes: frozenset[str]
    revoked: bool = False
    expires_at: datetime | None = None  # None: a non-expiring token (custom apps, legacy offline tokens)


@dataclass
class _Refresh:
    app: str
    shop: str
    scopes: frozenset[str]
    expires_at: datetime
    revoked: bool = False


@dataclass
class _Code:
    app: str
    shop: str
    scopes: frozenset[str]
    expires_at: datetime
    used: bool = False


@dataclass
class _Fault:
    count: int
    operation: str | None
    status: int = 0
    seconds: float = 0.0
    throttle: bool = False


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST the fake made to a webhook URL, and how the receiver answered (``status`` 0: unreachable)."""

    topic: str
    webhook_id: str
    body: bytes = field(repr=False)
    signed_correctly: bool
    status: int


@dataclass
class _Context:
    token: _Token
    app: App
    shop: Shop
    notes: list[dict[str, Any]] = field(default_factory=list)


def _derive(seed: int, *parts: str) -> str:
    return hashlib.sha256(":".join((str(seed), *parts)).encode()).hexdigest()


def oauth_hmac(params: Mapping[str, str], secret: str) -> str:
    """Shopify's OAuth signature: hex HMAC-SHA256 of the other parameters as ``k=v`` sorted, joined by ``&``."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def webhook_hmac(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of the HMAC-SHA256 of the raw body with the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def legacy_id(order_id: str | int) -> int:
    """The numeric id of an order given as a GID (``gid://shopify/Order/123``), digits or an int."""
    if isinstance(order_id, int):
        return order_id
    text = order_id.removeprefix(ORDER_GID)
    if not text.isdigit():
        raise FakeShopifyError(f"not a Shopify order id: {order_id!r}")
    return int(text)


@functools.lru_cache(maxsize=256)
def _compiled(query: str, operation_name: str | None) -> tuple[DocumentNode, OperationDefinitionNode, Check] | str:
    """Parse, validate and compile the checker of the answer's JSON Schema, once per distinct query text.

    Returns the error message (the first) as a string when the query doesn't parse or validate.
    """
    try:
        document = parse(query)
    except GraphQLSyntaxError as exc:
        return exc.message
    errors = validate(introspection().schema, document)
    if errors:
        return errors[0].message
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return "An operation name is required when the document holds several operations."
    if operation.operation.value not in ("query", "mutation"):
        return "The fake Shopify serves queries and mutations only."
    return document, operation, compile_check(response_schema(document, operation))


def _cursor(order: FakeOrder, sort_key: str) -> str:
    value: Any = {
        "UPDATED_AT": iso(order.updated),
        "CREATED_AT": iso(order.created),
        "PROCESSED_AT": iso(order.created),
    }.get(sort_key, order.legacy_id)
    raw = json.dumps({"last_id": order.legacy_id, "last_value": value}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _sort_value(order: FakeOrder, sort_key: str) -> tuple[Any, int]:
    if sort_key == "UPDATED_AT":
        return (order.updated, order.legacy_id)
    if sort_key in ("CREATED_AT", "PROCESSED_AT"):  # the fake processes every order when it is created
        return (order.created, order.legacy_id)
    return (order.legacy_id, order.legacy_id)


def _decode_cursor(cursor: str, sort_key: str) -> tuple[Any, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        last_id = int(raw["last_id"])
        value = raw["last_value"]
        if sort_key in ("UPDATED_AT", "CREATED_AT", "PROCESSED_AT"):
            return (utc(datetime.fromisoformat(str(value).replace("Z", "+00:00"))), last_id)
        return (int(value), last_id)
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"}) from exc


class FakeShopify(ServedFake):
    """A fake Shopify: Admin GraphQL API 2026-07, OAuth install flow, privacy webhooks, over real HTTP.

    ``speedup`` multiplies every bucket's restore rate (the bucket size stays twenty seconds of restore at
    the documented rate); ``clock`` is the platform's "now" (default: the system clock, UTC);
    ``bucket_clock`` is the wall clock the buckets restore on (default: ``time.monotonic``). ``latency`` is
    how long every Admin GraphQL call and token call takes before it is answered, in wall seconds: Shopify is
    some 150 ms away, and a fleet synced against a fake that answers at once would measure CPU, not how the
    worker copes with waiting (``bench.fleet``).
    """

    DEFAULT_SHOP: ClassVar[Shop] = Shop("labelvault-test.myshopify.com", 60_000_000_001, "Labelvault Test Shop")
    DEFAULT_APP: ClassVar[App] = App(
        client_id="9f1c2a7e5b3d4c6e8a0b1c2d3e4f5a6b",
        client_secret="shpss_fakedefaultappsecret00000000001",  # noqa: S106 - fake
        kind="public",
        access=LABEL_ACCESS,
    )
    CUSTOM_APP: ClassVar[App] = App(
        client_id="custom-app-labelvault-test",
        client_secret="shpss_fakecustomappsecret000000000002",  # noqa: S106 - fake
        kind="custom",
        access=FULL_ACCESS,
    )
    DEFAULT_TOKEN: ClassVar[str] = "shpat_fake0default0custom0app0token001"  # noqa: S105 - fake
    DEFAULT_SCOPES: ClassVar[frozenset[str]] = frozenset(
        {"read_orders", "read_merchant_managed_fulfillment_orders", "read_assigned_fulfillment_orders"}
    )

    def __init__(
        self,
        *,
        speedup: float = 1.0,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
        bucket_clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
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
        self._clock = clock or (lambda: datetime.now(UTC))
        self._bucket_clock = bucket_clock
        self._lock = threading.RLock()
        self._factory = OrderFactory(seed)
        self._mutation_rng = random.Random(seed + 1)  # noqa: S311 - test data, not secrets
        self._shops: dict[str, Shop] = {}
        self._apps: dict[str, App] = {}
        self._tokens: dict[str, _Token] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh_tokens: dict[str, _Refresh] = {}
        # A refresh token stays good after its refresh until the access token it bought is first used
        # (Shopify, August 2026), so a lost refresh answer can be retried: access token -> old refresh token.
        self._retire_on_use: dict[str, str] = {}
        self.token_grants = 0  # access tokens issued by the token endpoint (codes exchanged, refreshes)
        self._orders: dict[int, FakeOrder] = {}
        self._shop_orders: dict[str, dict[int, FakeOrder]] = collections.defaultdict(dict)  # a query scans one shop
        self._buckets: dict[tuple[str, str], CostBucket] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Fault] = []
        self._mutate_while_paging = False
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()
        self.cost_spent = 0  # actual cost of every query answered, summed
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []
        self.unserved_fields: collections.Counter[str] = collections.Counter()
        self.mutations: list[tuple[str, str, str]] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.add_shop(self.DEFAULT_SHOP.domain, shop_id=self.DEFAULT_SHOP.shop_id, name=self.DEFAULT_SHOP.name)
        self._apps[self.DEFAULT_APP.client_id] = self.DEFAULT_APP
        self._apps[self.CUSTOM_APP.client_id] = self.CUSTOM_APP
        self._tokens[self.DEFAULT_TOKEN] = _Token(
            app=self.CUSTOM_APP.client_id, shop=self.DEFAULT_SHOP.domain, scopes=self.DEFAULT_SCOPES
        )

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-shopify"
    already_started = FakeShopifyError
    # base_url (ServedFake's) is where the fake answers for every shop, e.g. ``http://127.0.0.1:8500``
    # (Shopify: ``https://{shop}``).

    def _before_start(self) -> None:
        # Build and validate the schema now (about a second), not inside a client's first request's timeout.
        _compiled("{ shop { name } }", None)

    @property
    def graphql_url(self) -> str:
        """The Admin GraphQL endpoint: ``{base_url}/admin/api/2026-07/graphql.json``."""
        return f"{self.base_url}{GRAPHQL_PATH}"

    def now(self) -> datetime:
        """The platform's current time (aware, UTC)."""
        return utc(self._clock())

    # --- shops, apps, tokens --------------------------------------------------------------------------------

    def add_shop(
        self, domain: str, *, shop_id: int | None = None, name: str | None = None, plan: str = "standard"
    ) -> Shop:
        """Register a shop (``<handle>.myshopify.com``); ``plan`` sets its rate limit (standard, plus, ...)."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*\.myshopify\.com", domain):
            raise FakeShopifyError("a shop domain looks like my-shop.myshopify.com")
        if plan not in PLANS:
            raise FakeShopifyError(f"plan must be one of {', '.join(PLANS)}")
        with self._lock:
            if domain in self._shops:
                raise FakeShopifyError(f"shop {domain} already exists")
            shop = Shop(
                domain=domain,
                shop_id=shop_id or 60_000_000_000 + int(_derive(self.seed, "shop", domain)[:8], 16),
                name=name or domain.split(".", 1)[0].replace("-", " ").title(),
                plan=plan,
            )
            self._shops[domain] = shop
        return shop

    def shop(self, domain: str | None = None) -> Shop:
        """A registered shop (the default one when no domain is given)."""
        key = domain or self.DEFAULT_SHOP.domain
        try:
            return self._shops[key]
        except KeyError:
            raise FakeShopifyError(f"unknown shop {key}") from None

    def add_app(self, name: str, *, access: ProtectedAccess = LABEL_ACCESS, redirect_urls: Sequence[str] = ()) -> App:
        """Register a public app (client id and secret derived from the seed and ``name``: reproducible)."""
        digest = _derive(self.seed, "app", name)
        app = App(
            client_id=digest[:32],
            client_secret=f"shpss_{digest[32:64]}",
            kind="public",
            access=access,
            redirect_urls=tuple(redirect_urls),
        )
        with self._lock:
            if app.client_id in self._apps:
                raise FakeShopifyError(f"app {name} already exists")
            self._apps[app.client_id] = app
        return app

    def app(self, client_id: str | None = None) -> App:
        """A registered app (the default public app when no client id is given)."""
        key = client_id or self.DEFAULT_APP.client_id
        try:
            return self._apps[key]
        except KeyError:
            raise FakeShopifyError(f"unknown app {key}") from None

    def set_access(self, client_id: str, access: ProtectedAccess) -> None:
        """Change an app's protected-customer-data approval (takes effect on the next query)."""
        with self._lock:
            self._apps[client_id] = replace(self.app(client_id), access=access)

    def custom_app_token(
        self,
        shop: str | None = None,
        *,
        scopes: Sequence[str] | None = None,
        access: ProtectedAccess = FULL_ACCESS,
    ) -> str:
        """A new Admin API access token of a custom app installed on ``shop`` (``shpat_...``).

        Each call makes a separate custom app (its own rate-limit bucket) with this ``access``.
        """
        owner = self.shop(shop)
        wanted = frozenset(scopes) if scopes is not None else self.DEFAULT_SCOPES
        self._check_scopes(wanted)
        with self._lock:
            n = len(self._tokens)
            app = App(
                client_id=f"custom-{_derive(self.seed, 'custom', owner.domain, str(n))[:16]}",
                client_secret=f"shpss_{_derive(self.seed, 'custom-secret', owner.domain, str(n))[:32]}",
                kind="custom",
                access=access,
            )
            self._apps[app.client_id] = app
            token = f"shpat_{_derive(self.seed, 'token', owner.domain, str(n))[:32]}"
            self._tokens[token] = _Token(app=app.client_id, shop=owner.domain, scopes=wanted)
        return token

    def token_scopes(self, token: str) -> frozenset[str]:
        """The scopes a token was granted."""
        return self._token(token).scopes

    def revoke_token(self, token: str) -> None:
        """Revoke one token (the merchant uninstalled the app or rotated the custom app's token): 401 after."""
        with self._lock:
            self._token(token).revoked = True

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working (401); refresh tokens stay good.

        An expiring token is as if its hour were up: refreshing buys a new one. A non-expiring token (a
        custom app's, a legacy offline token) can't be renewed: for it this is a revocation.
        """
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def _token(self, token: str) -> _Token:
        try:
            return self._tokens[token]
        except KeyError:
            raise FakeShopifyError("unknown token") from None

    @staticmethod
    def _check_scopes(scopes: frozenset[str]) -> None:
        unknown = scopes - KNOWN_SCOPES
        if unknown:
            raise FakeShopifyError(f"unknown scope {sorted(unknown)[0]}; known: {', '.join(sorted(KNOWN_SCOPES))}")

    def bucket(self, token: str) -> CostBucket:
        """The rate-limit bucket a token's queries draw on (one per app and shop)."""
        entry = self._token(token)
        return self._bucket(entry.app, entry.shop)

    def _bucket(self, app: str, shop: str) -> CostBucket:
        with self._lock:
            key = (app, shop)
            if key not in self._buckets:
                rate = PLANS[self._shops[shop].plan]
                self._buckets[key] = CostBucket(rate * self.speedup, rate * BUCKET_SECONDS, clock=self._bucket_clock)
            return self._buckets[key]

    def restore_rate(self, shop: str | None = None) -> float:
        """Points per second a bucket on this shop restores (the plan's rate times ``speedup``)."""
        return PLANS[self.shop(shop).plan] * self.speedup

    def min_seconds(self, total_cost: int, shop: str | None = None) -> float:
        """The least wall time queries costing ``total_cost`` can take from a full bucket on this shop."""
        rate = PLANS[self.shop(shop).plan]
        return max(0.0, total_cost - rate * BUCKET_SECONDS) / (rate * self.speedup)

    # --- orders ---------------------------------------------------------------------------------------------

    def generate_orders(
        self,
        n: int,
        *,
        shop: str | None = None,
        countries: Sequence[str] = COUNTRIES,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
    ) -> list[str]:
        """Create ``n`` orders on ``shop``, created between ``start`` (default: 7 days ago) and now; their GIDs.

        Deterministic from the seed. ``statuses`` are ``displayFulfillmentStatus`` values (UNFULFILLED,
        PARTIALLY_FULFILLED, FULFILLED, ON_HOLD, SCHEDULED, IN_PROGRESS); each occurs when ``n`` allows.
        """
        owner = self.shop(shop)
        with self._lock:
            now = self.now()
            try:
                made = self._factory.generate(
                    n,
                    shop=owner.domain,
                    countries=countries,
                    statuses=statuses,
                    start=utc(start) if start else now - timedelta(days=7),
                    now=now,
                )
            except ValueError as exc:
                raise FakeShopifyError(str(exc)) from None
            for order in made:
                self._orders[order.legacy_id] = order
                self._shop_orders[order.shop][order.legacy_id] = order
        return [o.gid for o in made]

    def _order(self, order_id: str | int) -> FakeOrder:
        try:
            return self._orders[legacy_id(order_id)]
        except KeyError:
            raise FakeShopifyError(f"unknown order {order_id}") from None

    def _touch(self, order: FakeOrder) -> None:
        order.updated = max(order.updated, self.now().replace(microsecond=0))

    def update_order(
        self,
        order_id: str | int,
        *,
        fulfill: bool = False,
        partially_fulfill: bool = False,
        cancel: bool = False,
        close: bool = False,
        hold: bool = False,
        release: bool = False,
    ) -> None:
        """Change an order as a merchant would, and bump its ``updatedAt`` to now.

        ``fulfill``: every fulfillment order CLOSED, FULFILLED; ``partially_fulfill``: the first one CLOSED,
        a second OPEN, PARTIALLY_FULFILLED; ``cancel``: ``cancelledAt`` now, open fulfillment orders
        CANCELLED (Shopify keeps the address); ``close``: archived; ``hold`` / ``release``: ON_HOLD / OPEN.
        """
        with self._lock:
            order = self._order(order_id)
            now = self.now().replace(microsecond=0)
            if partially_fulfill:
                first = order.fulfillment_orders[0]
                first.status = "CLOSED"
                if len(order.fulfillment_orders) == 1:
                    order.fulfillment_orders.append(_new_fulfillment_order(first, self._factory, "OPEN"))
                order.display_status = "PARTIALLY_FULFILLED"
            if fulfill:
                for fo in order.fulfillment_orders:
                    if fo.status != "CANCELLED":
                        fo.status = "CLOSED"
                order.display_status = "FULFILLED"
            if hold:
                for fo in order.fulfillment_orders:
                    if fo.status == "OPEN":
                        fo.status = "ON_HOLD"
                order.display_status = "ON_HOLD"
            if release:
                for fo in order.fulfillment_orders:
                    if fo.status in ("ON_HOLD", "SCHEDULED"):
                        fo.status = "OPEN"
                order.display_status = "UNFULFILLED"
            if cancel:
                order.cancelled_at = now
                order.cancel_reason = "CUSTOMER"
                for fo in order.fulfillment_orders:
                    if fo.status != "CLOSED":
                        fo.status = "CANCELLED"
                if order.display_status != "FULFILLED":
                    order.display_status = "UNFULFILLED"
            if close:
                order.closed_at = now
            self._touch(order)

    def edit_shipping_address(self, order_id: str | int, **changes: str | None) -> None:
        """Change fields of an order's shipping address (``ShippingAddress`` names) and bump its ``updatedAt``.

        Any text goes, as a buyer types it: a control character or a lone surrogate (served as a JSON
        ``\\u`` escape) included.
        """
        with self._lock:
            order = self._order(order_id)
            if order.shipping_address is None:
                raise FakeShopifyError(f"order {order_id} has no shipping address")
            try:
                order.shipping_address = with_changes(order.shipping_address, **changes)
            except TypeError as exc:
                raise FakeShopifyError(str(exc)) from None
            self._touch(order)

    def remove_shipping_address(self, order_id: str | int) -> None:
        """The order has no shipping address (a digital or pick-up order); bumps ``updatedAt``."""
        with self._lock:
            order = self._order(order_id)
            order.shipping_address = None
            self._touch(order)

    def orders(self, shop: str | None = None) -> dict[str, FakeOrder]:
        """A snapshot of the shop's orders by GID: the truth a connector's result is compared with."""
        domain = self.shop(shop).domain
        with self._lock:
            return {o.gid: copy.deepcopy(o) for o in self._shop_orders[domain].values()}

    def expected_label(self, order_id: str | int, *, access: ProtectedAccess = FULL_ACCESS) -> dict[str, str | None]:
        """The shipping-address fields a connector should store for this order now, under ``access``.

        Keys are the ``MailingAddress`` field names; a field the access doesn't cover is None, as Shopify
        redacts it; an order without a shipping address gives all None.
        """
        with self._lock:
            order = self._order(order_id)
            address = order.shipping_address
        keys = (
            "name",
            "firstName",
            "lastName",
            "company",
            "address1",
            "address2",
            "city",
            "province",
            "provinceCode",
            "zip",
            "countryCodeV2",
            "phone",
        )
        if address is None:
            return dict.fromkeys(keys)
        values = _address_json(address)
        return {
            k: None if (c := protected_content("MailingAddress", k)) and not access.allows(c) else values[k]
            for k in keys
        }

    def buyer_pii_strings(self) -> set[str]:
        """Every buyer name, street line, zip, phone and e-mail the fake serves or can serve (for leak checks)."""
        found: set[str] = set()
        with self._lock:
            orders = [copy.deepcopy(o) for o in self._orders.values()]
        for o in orders:
            a = o.shipping_address
            if a is not None:
                found.update(v for v in (a.name, a.first_name, a.last_name, a.address1, a.address2, a.phone) if v)
                found.update(v for v in (a.company,) if v)
            if o.customer is not None:
                found.update(v for v in (o.customer.email, o.customer.phone) if v)
            if o.email:
                found.add(o.email)
        found.discard("")
        return found

    # --- fault injection ------------------------------------------------------------------------------------

    def inject(self, *, status: int, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` requests (to ``operation``: graphql, authorize, access_token; or any) answer ``status``.

        Shopify's bodies: 401 invalid token, 402 unavailable shop, 423 locked, 429, 5xx. Injected answers
        come before authentication and spend no bucket points.
        """
        if status not in FAULT_STATUSES:
            raise FakeShopifyError(f"status must be one of {sorted(FAULT_STATUSES)}")
        self._check_operation(operation)
        with self._lock:
            self._faults.append(_Fault(count=count, operation=operation, status=status))

    def inject_throttle(self, count: int = 1) -> None:
        """The next ``count`` GraphQL queries answer THROTTLED (HTTP 200), whatever their bucket holds."""
        with self._lock:
            self._faults.append(_Fault(count=count, operation="graphql", throttle=True))

    def drain_bucket(self, token: str) -> None:
        """Empty the bucket a token draws on: its next queries are throttled until it restores."""
        self.bucket(token).drain()

    def inject_delay(self, seconds: float, *, count: int = 1, operation: str | None = None) -> None:
        """The next ``count`` matching requests wait ``seconds`` before being handled (slow responses)."""
        self._check_operation(operation)
        with self._lock:
            self._delays.append(_Fault(count=count, operation=operation, seconds=seconds))

    def mutate_while_paging(self, enabled: bool = True) -> None:
        """Before each next page of an ``orders`` query, change one served and two not-yet-served orders.

        The served one is fulfilled, one upcoming one cancelled, another's shipping address edited by the
        buyer; each gets ``updatedAt`` now. Each change is recorded in ``mutations`` as (GID, old status, new
        status): an address edit keeps its status.
        """
        with self._lock:
            self._mutate_while_paging = enabled

    def add_bad_order(self, shop: str | None = None) -> str:
        """One more unfulfilled order whose recipient's name holds a lone surrogate and whose first address line
        a NUL and a BEL (no vault can seal that text as served); its GID."""
        (gid,) = self.generate_orders(1, shop=shop, statuses=["UNFULFILLED"])
        self.edit_shipping_address(gid, first_name="Ana", last_name="\ud83d Bug", address1="Main\x00 St\x07 12")
        return gid

    @staticmethod
    def _check_operation(operation: str | None) -> None:
        if operation is not None and operation not in ("graphql", "authorize", "access_token"):
            raise FakeShopifyError("operation must be graphql, authorize or access_token")

    def _take(self, queue: list[_Fault], operation: str) -> _Fault | None:
        with self._lock:
            for fault in queue:
                if fault.count > 0 and fault.operation in (None, operation):
                    fault.count -= 1
                    if fault.count == 0:
                        queue.remove(fault)
                    return fault
        return None

    # --- observation ----------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for a separate process (``GET /_fake/stats``)."""
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttled": dict(self.throttled),
                "cost_spent": self.cost_spent,
                "validation_errors": list(self.validation_errors),
                "server_errors": list(self.server_errors),
                "unserved_fields": dict(self.unserved_fields),
                "mutations": [list(m) for m in self.mutations],
                "orders": len(self._orders),
                "speedup": self.speedup,
                "latency": self.latency,
            }

    # --- WSGI -----------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # a bug in the fake: say so in server_errors, never in a log
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{type(exc).__name__} on {request.method} {request.path}")
            response = _json_response(500, _FAULT_BODIES[500])
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_fake/"):
            return self._control(request)
        if path == GRAPHQL_PATH:
            operation = "graphql"
        elif re.fullmatch(r"/admin/api/[^/]+/graphql\.json", path):
            return _json_response(404, {"errors": f"The fake Shopify serves API version {API_VERSION} only."})
        elif path == AUTHORIZE_PATH:
            operation = "authorize"
        elif path == ACCESS_TOKEN_PATH:
            operation = "access_token"
        else:
            return _json_response(404, _FAULT_BODIES[404])
        with self._lock:
            self.calls[operation] += 1
        if operation != "authorize":  # a browser's redirect, not an API call
            self._wait_latency()
        delay = self._take(self._delays, operation)
        if delay is not None:
            self._stopping.wait(delay.seconds)
        fault = self._take(self._faults, operation)
        if fault is not None and not fault.throttle:
            return _json_response(fault.status, _FAULT_BODIES[fault.status])
        if operation == "authorize":
            return self._authorize(request)
        if operation == "access_token":
            return self._access_token(request)
        if request.method != "POST":
            return _json_response(405, {"errors": "Method Not Allowed"})
        return self._graphql(request, forced_throttle=fault is not None)

    def _wait_latency(self) -> None:
        """Shopify's distance: every API and token call waits ``latency`` (a stopping fake stops waiting)."""
        if self.latency:
            self._stopping.wait(self.latency)

    # --- GraphQL --------------------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> _Context | None:
        token = request.headers.get("X-Shopify-Access-Token", "")
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry.revoked or (entry.expires_at is not None and entry.expires_at <= self.now()):
                return None
            host = (request.host or "").split(":", 1)[0]
            if host.endswith(".myshopify.com") and host != entry.shop:
                return None  # a token only opens its own shop
            retired = self._retire_on_use.pop(token, None)
            if retired is not None:
                self._refresh_tokens[retired].revoked = True
            return _Context(token=entry, app=self._apps[entry.app], shop=self._shops[entry.shop])

    def _graphql(self, request: Request, *, forced_throttle: bool) -> Response:
        ctx = self._authenticate(request)
        if ctx is None:
            return _json_response(401, INVALID_TOKEN_BODY)
        if request.mimetype == "application/graphql":  # Shopify takes the bare query text too
            payload: Any = {"query": request.get_data(as_text=True)}
        else:
            try:
                payload = json.loads(request.get_data(as_text=True) or "null")
            except ValueError:
                return self._answer_errors("Invalid JSON in request body.", code="BAD_REQUEST")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return self._answer_errors("Parameter Missing or Invalid: query is required.", code="BAD_REQUEST")
        variables = payload.get("variables") or {}
        if not isinstance(variables, dict):
            return self._answer_errors("Variables must be a JSON object.", code="BAD_REQUEST")
        compiled = _compiled(payload["query"], payload.get("operationName"))
        if isinstance(compiled, str):
            return self._answer_errors(compiled, code="GRAPHQL_VALIDATION_FAILED")
        document, operation, validator = compiled
        coerced = get_variable_values(introspection().schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):  # the variables don't fit their declared types: nothing runs
            return self._answer_errors(coerced[0].message, code="INVALID_VARIABLE")
        cost = requested_cost(document, operation, coerced.coerced)
        bucket = self._bucket(ctx.app.client_id, ctx.shop.domain)
        if cost > SINGLE_QUERY_MAX_COST:
            body = {
                "errors": [
                    {
                        "message": f"Query cost is {cost}, which exceeds the single query max cost limit "
                        f"({SINGLE_QUERY_MAX_COST}).",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": SINGLE_QUERY_MAX_COST},
                    }
                ],
                "extensions": {"cost": _cost(cost, None, bucket)},
            }
            return self._checked(validator, body)
        if forced_throttle or not bucket.take(cost):
            with self._lock:
                self.throttled["graphql"] += 1
            body = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {"cost": _cost(cost, None, bucket)},
            }
            return self._checked(validator, body)
        result = execute(
            introspection().schema,
            document,
            root_value=None,
            context_value=ctx,
            variable_values=variables,
            operation_name=payload.get("operationName"),
            field_resolver=self._resolve,
        )
        if not isinstance(result, ExecutionResult):  # the resolvers are synchronous: never an awaitable
            raise TypeError("asynchronous execution result")
        data = result.data
        errors = result.errors or []
        spent = min(cost, actual_cost(document, operation, data)) if data is not None else cost
        bucket.refund(cost - spent)
        with self._lock:
            self.cost_spent += spent
        answer: dict[str, Any] = {}
        if errors:
            answer["errors"] = [e.formatted for e in errors]
            self._note_internal(errors)
        answer["data"] = data
        extensions: dict[str, Any] = {"cost": _cost(cost, spent, bucket)}
        if ctx.notes:
            extensions["search"] = ctx.notes
        answer["extensions"] = extensions
        return self._checked(validator, answer)

    def _note_internal(self, errors: Sequence[GraphQLError]) -> None:
        """Errors that are the fake's own bugs (an exception in a resolver, not Shopify behaviour and not a
        client's bad query or variables) go to ``server_errors``."""
        for error in errors:
            cause = error.original_error
            if cause is not None and not isinstance(cause, GraphQLError):
                with self._lock:
                    self.server_errors.append(f"execution: {type(cause).__name__} at {error.path}")

    def _checked(self, check: Check, body: dict[str, Any]) -> Response:
        failure = check(body, "body")
        if failure:
            with self._lock:
                # Where and which rule, never the value: the value may be a buyer's address.
                self.validation_errors.append(f"answer breaks the query's schema: {failure}")
            return _json_response(500, _FAULT_BODIES[500])
        return _json_response(200, body)

    def _answer_errors(self, message: str, *, code: str) -> Response:
        body = {"errors": [{"message": message, "extensions": {"code": code}}]}
        if _ERROR_ENVELOPE(body, "body") is not None:
            with self._lock:
                self.validation_errors.append("error envelope breaks Shopify's shape")
            return _json_response(500, _FAULT_BODIES[500])
        return _json_response(200, body)

    def _resolve(self, source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        """The one resolver: root fields by name, every other field from the parent's dict, with Shopify's rules."""
        ctx: _Context = info.context
        parent, name = info.parent_type.name, info.field_name
        guarded, required, content = _field_rules(parent, name)
        if required and not ctx.token.scopes.intersection(required):
            readable = ", ".join(f"`{s}` access scope" for s in required)
            raise GraphQLError(
                f"Access denied for {name} field. Required access: {readable}.",
                extensions={"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes"},
            )
        if guarded == "Order" and ctx.app.access.level == 0:
            raise GraphQLError(
                f"This app is not approved to access the Order object. See {PROTECTED_DOCS} for more details.",
                extensions={"code": "ACCESS_DENIED"},
            )
        if content is not None and not ctx.app.access.allows(content):
            raise GraphQLError(
                f"This app is not approved to use the {name} field. See {PROTECTED_DOCS} for more details.",
                extensions={"code": "ACCESS_DENIED", "requiredAccess": f"protected customer data: {content}"},
            )
        if parent == "QueryRoot":
            return self._root(ctx, info, name, args)
        if parent == "Mutation":
            return self._mutation(ctx, name, args)
        return self._field(source, info, args)

    def _mutation(self, ctx: _Context, name: str, args: dict[str, Any]) -> Any:
        """The mutations the fake serves; each needs one of its field's write scopes, as Shopify lists them."""
        scopes = introspection().field_scopes.get(("Mutation", name), ())
        if scopes and not ctx.token.scopes.intersection(scopes):
            readable = ", ".join(f"`{s}` access scope" for s in scopes)
            raise GraphQLError(
                f"Access denied for {name} field. Required access: {readable}.",
                extensions={"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes"},
            )
        if name == "fulfillmentCreate":
            return self._fulfillment_create(ctx, args["fulfillment"])
        with self._lock:
            self.unserved_fields[f"Mutation.{name}"] += 1
        raise GraphQLError(f"The fake Shopify doesn't serve Mutation.{name}.", extensions={"code": "FAKE_UNSERVED"})

    def _fulfillment_create(self, ctx: _Context, given: dict[str, Any]) -> dict[str, Any]:
        """``fulfillmentCreate``: fulfil whole fulfillment orders of one order (line items aren't modelled, so
        a partial ``fulfillmentOrderLineItems`` list is refused), with its tracking; the order's display status
        follows. Problems are ``userErrors``, as Shopify answers them, and change nothing."""

        def refused(message: str) -> dict[str, Any]:
            return {"fulfillment": None, "userErrors": [{"field": ["fulfillment"], "message": message}]}

        wanted = given.get("lineItemsByFulfillmentOrder") or []
        if not wanted:
            return refused("Line items by fulfillment order can't be blank.")
        with self._lock:
            found: list[tuple[FakeOrder, FakeFulfillmentOrder]] = []
            for item in wanted:
                gid = str(item["fulfillmentOrderId"])
                if item.get("fulfillmentOrderLineItems"):
                    return refused("The fake Shopify fulfils whole fulfillment orders only.")
                match = next(
                    (
                        (order, fo)
                        for order in self._shop_orders[ctx.shop.domain].values()
                        for fo in order.fulfillment_orders
                        if fo.gid == gid
                    ),
                    None,
                )
                if match is None or not self._visible(ctx, match[0]):
                    return refused(f"Fulfillment order {gid} does not exist.")
                if match[1].status not in FULFILLABLE_STATUSES:
                    return refused(f"Fulfillment order {gid} has an unfulfillable status= {match[1].status.lower()}.")
                found.append(match)
            if len({order.legacy_id for order, _ in found}) != 1:
                return refused("All fulfillment orders must belong to the same order.")
            order = found[0][0]
            tracking = given.get("trackingInfo") or {}
            numbers = [n for n in [tracking.get("number"), *(tracking.get("numbers") or [])] if n]
            fulfillment = FakeFulfillment(
                legacy_id=self._factory.new_id(),
                created=self.now().replace(microsecond=0),
                fulfillment_order_ids=[fo.legacy_id for _, fo in found],
                tracking_company=tracking.get("company"),
                tracking_numbers=numbers,
                notify_customer=bool(given.get("notifyCustomer")),
            )
            for _, fo in found:
                fo.status = "CLOSED"
            order.fulfillments.append(fulfillment)
            remaining = [fo for fo in order.fulfillment_orders if fo.status not in ("CLOSED", "CANCELLED")]
            order.display_status = "PARTIALLY_FULFILLED" if remaining else "FULFILLED"
            self._touch(order)
            return {"fulfillment": _fulfillment_json(fulfillment), "userErrors": []}

    def fulfillments(self, order_id: str | int) -> list[FakeFulfillment]:
        """The fulfillments made on an order through ``fulfillmentCreate`` (for tests)."""
        with self._lock:
            return list(self._order(order_id).fulfillments)

    def _field(self, source: Any, info: GraphQLResolveInfo[Any], args: dict[str, Any]) -> Any:
        """A field's value from its parent's dict (a callable there takes the field's arguments)."""
        parent, name = info.parent_type.name, info.field_name
        if isinstance(source, dict) and name in source:
            value = source[name]
            return value(**args) if callable(value) else value
        if name == "__typename":
            return parent
        with self._lock:
            self.unserved_fields[f"{parent}.{name}"] += 1
        raise GraphQLError(f"The fake Shopify doesn't serve {parent}.{name}.", extensions={"code": "FAKE_UNSERVED"})

    def _root(self, ctx: _Context, info: GraphQLResolveInfo[Any], name: str, args: dict[str, Any]) -> Any:
        if name == "orders":
            return self._orders_connection(ctx, info, args)
        if name == "order":
            try:
                wanted = legacy_id(str(args["id"]))
            except FakeShopifyError:
                raise GraphQLError(f"Invalid global id '{args['id']}'", extensions={"code": "BAD_REQUEST"}) from None
            with self._lock:
                order = self._orders.get(wanted)
                if order is None or order.shop != ctx.shop.domain or not self._visible(ctx, order):
                    return None
                return self._order_json(order)
        if name == "shop":
            return {
                "id": f"gid://shopify/Shop/{ctx.shop.shop_id}",
                "name": ctx.shop.name,
                "myshopifyDomain": ctx.shop.domain,
                "plan": {
                    "partnerDevelopment": False,
                    "shopifyPlus": ctx.shop.plan == "plus",
                    "publicDisplayName": ctx.shop.plan.title(),
                },
            }
        if name in ("node", "nodes"):
            wanted_ids = [args["id"]] if name == "node" else list(args["ids"])
            if len(wanted_ids) > MAX_PAGE_SIZE:
                raise GraphQLError(f"nodes takes at most {MAX_PAGE_SIZE} ids.", extensions={"code": "BAD_REQUEST"})
            found: list[dict[str, Any] | None] = []
            with self._lock:
                for gid in wanted_ids:
                    order = self._orders.get(int(gid.removeprefix(ORDER_GID))) if _is_order_gid(gid) else None
                    visible = order is not None and order.shop == ctx.shop.domain and self._visible(ctx, order)
                    found.append(self._order_json(order) if order is not None and visible else None)
            return found[0] if name == "node" else found
        if name == "currentAppInstallation":
            return {
                "id": f"gid://shopify/AppInstallation/{int(_derive(self.seed, ctx.app.client_id)[:10], 16)}",
                "accessScopes": [{"handle": s, "description": s.replace("_", " ")} for s in sorted(ctx.token.scopes)],
            }
        with self._lock:
            self.unserved_fields[f"QueryRoot.{name}"] += 1
        raise GraphQLError(f"The fake Shopify doesn't serve QueryRoot.{name}.", extensions={"code": "FAKE_UNSERVED"})

    def _visible(self, ctx: _Context, order: FakeOrder) -> bool:
        """Without ``read_all_orders`` an app sees only orders created in the last 60 days."""
        oldest = self._oldest_visible(ctx)
        return oldest is None or order.created >= oldest

    def _oldest_visible(self, ctx: _Context) -> datetime | None:
        return None if "read_all_orders" in ctx.token.scopes else self.now() - ORDER_WINDOW

    def _orders_connection(self, ctx: _Context, info: GraphQLResolveInfo[Any], args: dict[str, Any]) -> dict[str, Any]:
        first: int | None = args.get("first")
        last: int | None = args.get("last")
        if first is not None and last is None:
            size = first
        elif last is not None and first is None:
            size = last
        else:
            raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
        if not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(
                f"The page size {size} is outside 0 to {MAX_PAGE_SIZE}.", extensions={"code": "BAD_REQUEST"}
            )
        sort_key = args.get("sortKey") or "ID"
        if sort_key not in ("ID", "UPDATED_AT", "CREATED_AT", "PROCESSED_AT"):
            raise GraphQLError(f"The fake Shopify doesn't sort by {sort_key}.", extensions={"code": "FAKE_UNSERVED"})
        reverse = bool(args.get("reverse")) != (last is not None)
        parsed = search.parse(args.get("query"))
        note = parsed.extension([str(p) for p in info.path.as_list()])
        if note:
            ctx.notes.append(note)
        after = args.get("after") if first is not None else args.get("before")
        with self._lock:
            position = _decode_cursor(after, sort_key) if after else None
            if position is not None and self._mutate_while_paging:
                self._mutate(ctx, parsed, sort_key, position, reverse)
            oldest = self._oldest_visible(ctx)
            matching = sorted(
                (
                    o
                    for o in self._shop_orders[ctx.shop.domain].values()
                    if (oldest is None or o.created >= oldest) and parsed.matches(o)
                ),
                key=lambda o: _sort_value(o, sort_key),
                reverse=reverse,
            )
            if position is not None:
                matching = [
                    o
                    for o in matching
                    if (_sort_value(o, sort_key) < position if reverse else _sort_value(o, sort_key) > position)
                ]
            page = matching[:size]
            nodes = [self._order_json(o) for o in page]
            cursors = [_cursor(o, sort_key) for o in page]
        if last is not None:
            nodes.reverse()
            cursors.reverse()
        more = len(matching) > size
        return {
            "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
            "nodes": nodes,
            "pageInfo": {
                "hasNextPage": more if first is not None else after is not None,
                "hasPreviousPage": after is not None if first is not None else more,
                "startCursor": cursors[0] if cursors else None,
                "endCursor": cursors[-1] if cursors else None,
            },
        }

    def _mutate(
        self, ctx: _Context, parsed: search.Search, sort_key: str, position: tuple[Any, int], reverse: bool
    ) -> None:
        """Fulfil one already-served order of this query, cancel one upcoming one and edit another upcoming
        one's shipping address (see ``mutate_while_paging``)."""
        live = [
            o
            for o in self._shop_orders[ctx.shop.domain].values()
            if parsed.matches(o) and not o.cancelled and o.display_status != "FULFILLED"
        ]
        live.sort(key=lambda o: o.legacy_id)
        served = [
            o
            for o in live
            if (_sort_value(o, sort_key) > position if reverse else _sort_value(o, sort_key) <= position)
        ]
        served_ids = {o.legacy_id for o in served}
        upcoming = [o for o in live if o.legacy_id not in served_ids]
        rng = self._mutation_rng
        for group, cancel in ((served, False), (upcoming, True)):
            if not group:
                continue
            order = rng.choice(group)
            old = "CANCELLED" if order.cancelled else order.display_status
            self.update_order(order.gid, cancel=cancel, fulfill=not cancel)
            new = "CANCELLED" if order.cancelled else order.display_status
            self.mutations.append((order.gid, old, new))
        editable = [o for o in upcoming if not o.cancelled and o.shipping_address is not None]
        if editable:
            order = rng.choice(editable)
            address = order.shipping_address
            assert address is not None
            self.edit_shipping_address(order.gid, address2=f"{address.address2 or ''} (changed by the buyer)".strip())
            self.mutations.append((order.gid, order.display_status, order.display_status))

    def _order_json(self, order: FakeOrder) -> dict[str, Any]:
        """The fields of ``Order`` the fake serves, in Shopify's names (connections as callables of their args)."""
        address = order.shipping_address
        fulfillment_orders = [{"id": fo.gid, "status": fo.status} for fo in order.fulfillment_orders]
        customer = order.customer

        def fulfillment_connection(first: int | None = None, last: int | None = None, **_: Any) -> dict[str, Any]:
            if (first is None) == (last is None):
                raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
            size = first if first is not None else last
            assert size is not None
            page = fulfillment_orders[:size] if first is not None else fulfillment_orders[-size:] if size else []
            return {
                "edges": [{"cursor": _fo_cursor(f["id"]), "node": f} for f in page],
                "nodes": page,
                "pageInfo": {
                    "hasNextPage": first is not None and len(fulfillment_orders) > size,
                    "hasPreviousPage": last is not None and len(fulfillment_orders) > size,
                    "startCursor": _fo_cursor(page[0]["id"]) if page else None,
                    "endCursor": _fo_cursor(page[-1]["id"]) if page else None,
                },
            }

        return {
            "id": order.gid,
            "legacyResourceId": str(order.legacy_id),
            "name": order.name,
            "createdAt": iso(order.created),
            "updatedAt": iso(order.updated),
            "processedAt": iso(order.created),
            "cancelledAt": iso(order.cancelled_at) if order.cancelled_at else None,
            "cancelReason": order.cancel_reason,
            "closed": order.closed,
            "closedAt": iso(order.closed_at) if order.closed_at else None,
            "displayFulfillmentStatus": order.display_status,
            "requiresShipping": address is not None,
            "email": order.email,
            "phone": address.phone if address else None,
            "test": False,
            "__typename": "Order",  # how graphql-core resolves the Node interface of nodes(ids:) and node(id:)
            "fulfillmentOrders": fulfillment_connection,
            "fulfillments": lambda first=None, **_: [_fulfillment_json(f) for f in order.fulfillments][:first],
            "shippingAddress": {"id": f"gid://shopify/MailingAddress/{order.address_id}", **_address_json(address)}
            if address
            else None,
            "customer": {"id": customer.gid, "email": customer.email, "phone": customer.phone} if customer else None,
        }

    # --- OAuth ----------------------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> Response:
        """The merchant approves the install at once: 302 to ``redirect_uri`` with a signed code."""
        args = request.args
        client_id, redirect_uri, state = args.get("client_id"), args.get("redirect_uri"), args.get("state")
        app = self._apps.get(client_id or "")
        if app is None or app.kind != "public":
            return _text_response(400, "Oauth error invalid_request: The client_id is not a known public app.")
        if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _text_response(400, "Oauth error invalid_request: The redirect_uri is missing or not a URL.")
        if app.redirect_urls and redirect_uri.split("?", 1)[0] not in app.redirect_urls:
            return _text_response(400, "Oauth error invalid_request: The redirect_uri is not whitelisted.")
        scopes = frozenset(s.strip() for s in (args.get("scope") or "").split(",") if s.strip())
        unknown = scopes - KNOWN_SCOPES
        if not scopes or unknown:
            return _text_response(400, "Oauth error invalid_scope: The scope is missing or names an unknown scope.")
        host = (request.host or "").split(":", 1)[0]
        domain = host if host in self._shops else args.get("shop") or self.DEFAULT_SHOP.domain
        if domain not in self._shops:
            return _text_response(404, "There's no shop at this address.")
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = _Code(
                app=app.client_id, shop=domain, scopes=scopes, expires_at=self.now() + CODE_LIFETIME
            )
        params = {
            "code": code,
            "host": base64.b64encode(f"admin.shopify.com/store/{domain.split('.', 1)[0]}".encode())
            .decode()
            .rstrip("="),
            "shop": domain,
            "timestamp": str(int(self.now().timestamp())),
        }
        if state is not None:
            params["state"] = state
        params["hmac"] = oauth_hmac(params, app.client_secret)
        separator = "&" if "?" in redirect_uri else "?"
        return Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(params)}"})

    def _access_token(self, request: Request) -> Response:
        """The token endpoint: an authorization code, or (``grant_type=refresh_token``) a refresh token,
        for an offline access token; ``expiring=1`` with a code asks for an expiring one with a refresh token."""
        if request.method != "POST":
            return _json_response(405, {"errors": "Method Not Allowed"})
        form: Mapping[str, Any]
        if request.mimetype == "application/json":
            body = request.get_json(silent=True)
            form = body if isinstance(body, dict) else {}
        else:
            form = request.form
        app = self._apps.get(str(form.get("client_id") or ""))
        if app is None or not hmac.compare_digest(str(form.get("client_secret") or ""), app.client_secret):
            return _json_response(
                400, {"error": "invalid_client", "error_description": "Client credentials are invalid"}
            )
        if form.get("grant_type") == "refresh_token":
            return self._refresh(app, str(form.get("refresh_token") or ""))
        with self._lock:
            grant = self._codes.get(str(form.get("code") or ""))
            if grant is None or grant.used or grant.app != app.client_id or grant.expires_at < self.now():
                return _json_response(
                    400,
                    {
                        "error": "invalid_request",
                        "error_description": "The authorization code was not found or was already used",
                    },
                )
            grant.used = True
            expiring = str(form.get("expiring", "0")).lower() in ("1", "true")
            answer = self._issue(app.client_id, grant.shop, grant.scopes, expiring=expiring)
        return _json_response(200, answer)

    def _refresh(self, app: App, refresh_token: str) -> Response:
        with self._lock:
            entry = self._refresh_tokens.get(refresh_token)
            if entry is None or entry.revoked or entry.app != app.client_id or entry.expires_at <= self.now():
                return _json_response(
                    400,
                    {"error": "invalid_grant", "error_description": "The refresh token is invalid or has expired"},
                )
            answer = self._issue(entry.app, entry.shop, entry.scopes, expiring=True)
            self._retire_on_use[answer["access_token"]] = refresh_token
        return _json_response(200, answer)

    def _issue(self, app: str, shop: str, scopes: frozenset[str], *, expiring: bool) -> dict[str, Any]:
        """A new offline access token (and refresh token, when expiring), as the token endpoint answers it."""
        now = self.now()
        token = f"shpua_{secrets.token_hex(16)}"
        self._tokens[token] = _Token(
            app=app, shop=shop, scopes=scopes, expires_at=now + EXPIRING_TOKEN_LIFETIME if expiring else None
        )
        self.token_grants += 1
        answer: dict[str, Any] = {"access_token": token, "scope": ",".join(sorted(scopes))}
        if expiring:
            refresh = f"shprt_{secrets.token_hex(16)}"
            self._refresh_tokens[refresh] = _Refresh(app, shop, scopes, now + REFRESH_TOKEN_LIFETIME)
            answer |= {
                "expires_in": int(EXPIRING_TOKEN_LIFETIME.total_seconds()),
                "refresh_token": refresh,
                "refresh_token_expires_in": int(REFRESH_TOKEN_LIFETIME.total_seconds()),
            }
        return answer

    def install(
        self,
        *,
        client_id: str | None = None,
        shop: str | None = None,
        scopes: Sequence[str] | None = None,
        expiring: bool = True,
    ) -> dict[str, Any]:
        """Install a public app on a shop without the HTTP dance: the token endpoint's answer for it
        (``access_token``, ``scope`` and, when expiring, ``expires_in``, ``refresh_token``,
        ``refresh_token_expires_in``). Counts as a token grant."""
        app = self.app(client_id)
        if app.kind != "public":
            raise FakeShopifyError("only public apps are installed through OAuth")
        wanted = frozenset(scopes) if scopes is not None else self.DEFAULT_SCOPES
        self._check_scopes(wanted)
        with self._lock:
            return self._issue(app.client_id, self.shop(shop).domain, wanted, expiring=expiring)

    def uninstall(self, *, client_id: str | None = None, shop: str | None = None) -> None:
        """The merchant uninstalls the app: every access and refresh token of it on the shop is revoked."""
        app, domain = self.app(client_id).client_id, self.shop(shop).domain
        with self._lock:
            grants: list[_Token | _Refresh] = [*self._tokens.values(), *self._refresh_tokens.values()]
            for entry in grants:
                if entry.app == app and entry.shop == domain:
                    entry.revoked = True

    def authorize_url(
        self,
        *,
        client_id: str | None = None,
        scopes: Sequence[str] = ("read_orders",),
        redirect_uri: str,
        state: str,
        shop: str | None = None,
    ) -> str:
        """The install URL a seller would open (with the fake's ``shop`` parameter naming the shop)."""
        params = {
            "client_id": client_id or self.DEFAULT_APP.client_id,
            "scope": ",".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "shop": self.shop(shop).domain,
        }
        return f"{self.base_url}{AUTHORIZE_PATH}?{urlencode(params)}"

    # --- webhooks -------------------------------------------------------------------------------------------

    def webhook_body(
        self, topic: str, *, shop: str | None = None, customer_of: str | int | None = None
    ) -> dict[str, Any]:
        """The JSON body Shopify sends for a privacy topic (``customer_of``: an order whose buyer it is about)."""
        owner = self.shop(shop)
        if topic not in WEBHOOK_TOPICS:
            raise FakeShopifyError(f"topic must be one of {', '.join(WEBHOOK_TOPICS)}")
        body: dict[str, Any] = {"shop_id": owner.shop_id, "shop_domain": owner.domain}
        if topic == "shop/redact":
            return body
        if customer_of is None:
            raise FakeShopifyError(f"{topic} needs customer_of: an order of the customer it is about")
        with self._lock:
            order = self._order(customer_of)
            customer = order.customer
            if customer is None:
                raise FakeShopifyError(f"order {customer_of} has no customer")
            theirs = sorted(o.legacy_id for o in self._shop_orders[owner.domain].values() if o.customer == customer)
        body["customer"] = {"id": customer.legacy_id, "email": customer.email, "phone": customer.phone}
        if topic == "customers/redact":
            body["orders_to_redact"] = theirs
        else:
            body["orders_requested"] = theirs
            body["data_request"] = {
                "id": int(_derive(self.seed, "data-request", str(len(self.webhook_deliveries)))[:8], 16)
            }
        return body

    def deliver_webhook(
        self,
        url: str,
        topic: str,
        *,
        shop: str | None = None,
        customer_of: str | int | None = None,
        client_id: str | None = None,
        duplicate: bool = False,
        bad_signature: bool = False,
        timeout: float = 10.0,
    ) -> list[WebhookDelivery]:
        """POST a privacy webhook to ``url`` as Shopify does, signed with the app's secret; the deliveries made.

        ``duplicate=True`` sends the same delivery (same body, same ``X-Shopify-Webhook-Id``) twice, as
        Shopify's at-least-once delivery can; ``bad_signature=True`` signs with a wrong secret.
        """
        app = self.app(client_id)
        owner = self.shop(shop)
        payload = self.webhook_body(topic, shop=owner.domain, customer_of=customer_of)
        body = json.dumps(payload, separators=(",", ":")).encode()
        webhook_id = str(uuid.UUID(_derive(self.seed, "webhook", topic, str(len(self.webhook_deliveries)))[:32]))
        secret = app.client_secret if not bad_signature else app.client_secret + "-wrong"
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": webhook_hmac(body, secret),
            "X-Shopify-Shop-Domain": owner.domain,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": webhook_id,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Triggered-At": iso(self.now()),
        }
        made: list[WebhookDelivery] = []
        for _ in range(2 if duplicate else 1):
            status = _post(url, body, headers, timeout=timeout)
            made.append(WebhookDelivery(topic, webhook_id, body, not bad_signature, status))
        with self._lock:
            self.webhook_deliveries.extend(made)
        return made

    # --- control endpoints ----------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        """JSON endpoints under ``/_fake/`` so another process (benchmark, demo) can drive the fake."""
        try:
            return self._control_route(request)
        except (FakeShopifyError, ValueError, TypeError, KeyError) as exc:
            return _json_response(400, {"error": type(exc).__name__, "message": str(exc)})

    def _control_route(self, request: Request) -> Response:
        path, method = request.path.removeprefix("/_fake"), request.method
        body: dict[str, Any] = (request.get_json(silent=True) or {}) if method == "POST" else {}
        if (method, path) == ("GET", "/stats"):
            return _json_response(200, self.stats())
        if (method, path) == ("POST", "/shops"):
            # A shop with a custom app's Admin API access token (its own bucket) and ``orders`` orders.
            orders = int(body.get("orders", 0))
            if orders < 0:
                raise FakeShopifyError("orders must not be negative")
            shop = self.add_shop(body["domain"], plan=body.get("plan", "standard"))
            token = self.custom_app_token(shop.domain, scopes=body.get("scopes"))
            gids = self.generate_orders(orders, shop=shop.domain) if orders else []
            return _json_response(
                201, {"domain": shop.domain, "shop_id": shop.shop_id, "token": token, "order_ids": gids}
            )
        if (method, path) == ("POST", "/tokens"):
            token = self.custom_app_token(body.get("shop"), scopes=body.get("scopes"))
            return _json_response(201, {"token": token})
        if (method, path) == ("POST", "/orders"):
            start = body.get("start")
            ids = self.generate_orders(
                int(body.get("n", 1)),
                shop=body.get("shop"),
                countries=body.get("countries") or COUNTRIES,
                statuses=body.get("statuses"),
                start=datetime.fromisoformat(start) if start else None,
            )
            return _json_response(201, {"order_ids": ids})
        found = re.fullmatch(r"/orders/(\d+)(/expected-label)?", path)
        if found and method == "GET":
            if found.group(2):
                return _json_response(200, self.expected_label(int(found.group(1))))
            return _json_response(200, _order_meta(self._order(int(found.group(1)))))
        if found and method == "POST" and not found.group(2):
            flags = ("fulfill", "partially_fulfill", "cancel", "close", "hold", "release")
            self.update_order(int(found.group(1)), **{k: bool(body.get(k)) for k in flags})
            return _json_response(200, _order_meta(self._order(int(found.group(1)))))
        if (method, path) == ("POST", "/inject"):
            self.inject(status=int(body["status"]), count=int(body.get("count", 1)), operation=body.get("operation"))
            return _json_response(204, None)
        if (method, path) == ("POST", "/throttle"):
            self.inject_throttle(int(body.get("count", 1)))
            return _json_response(204, None)
        if (method, path) == ("POST", "/delay"):
            self.inject_delay(float(body["seconds"]), count=int(body.get("count", 1)), operation=body.get("operation"))
            return _json_response(204, None)
        if (method, path) == ("POST", "/install"):
            answer = self.install(
                client_id=body.get("client_id"),
                shop=body.get("shop"),
                scopes=body.get("scopes"),
                expiring=bool(body.get("expiring", True)),
            )
            return _json_response(201, answer)
        if (method, path) == ("POST", "/access"):
            fields = frozenset(body.get("fields", sorted(PROTECTED_CONTENTS)))
            self.set_access(body["client_id"], ProtectedAccess(int(body["level"]), fields))
            return _json_response(204, None)
        if (method, path) == ("POST", "/webhooks"):
            made = self.deliver_webhook(
                body["url"],
                body["topic"],
                shop=body.get("shop"),
                customer_of=body.get("customer_of"),
                client_id=body.get("client_id"),
                duplicate=bool(body.get("duplicate")),
                bad_signature=bool(body.get("bad_signature")),
            )
            return _json_response(200, {"deliveries": [{"webhook_id": d.webhook_id, "status": d.status} for d in made]})
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
                self.cost_spent = 0
            return _json_response(204, None)
        return _json_response(404, {"error": "NotFound", "message": f"no control endpoint {method} {path}"})


@functools.cache
def _field_rules(parent: str, name: str) -> tuple[str, tuple[str, ...], str | None]:
    """What guards a field, from the schema: the guarded type's name, the scopes any one of which it
    needs, and the kind of protected customer data it holds (cached: the resolver asks for every field)."""
    spec = _possible_field(parent, name)
    guarded = _guarded_type(get_named_type(spec.type)).name if spec is not None else ""
    return guarded, introspection().scopes.get(guarded, ()), protected_content(parent, name)


def _possible_field(parent: str, name: str) -> Any:
    kind = introspection().schema.get_type(parent)
    return getattr(kind, "fields", {}).get(name)


def _guarded_type(named: Any) -> Any:
    """The type whose scopes guard a field: for a connection, its nodes' type (Shopify denies ``orders``
    itself, not each node, to an app without ``read_orders``); otherwise the field's own type."""
    fields = getattr(named, "fields", {})
    if named.name.endswith("Connection") and "nodes" in fields:
        return get_named_type(fields["nodes"].type)
    return named


def _fulfillment_json(fulfillment: FakeFulfillment) -> dict[str, Any]:
    """The fields of ``Fulfillment`` the fake serves."""
    company = fulfillment.tracking_company

    def tracking_info(first: int | None = None, **_: Any) -> list[dict[str, Any]]:
        infos = [{"company": company, "number": n, "url": None} for n in fulfillment.tracking_numbers]
        return infos[:first] if first is not None else infos

    return {
        "id": fulfillment.gid,
        "legacyResourceId": str(fulfillment.legacy_id),
        "status": "SUCCESS",
        "displayStatus": "FULFILLED",
        "createdAt": iso(fulfillment.created),
        "updatedAt": iso(fulfillment.created),
        "requiresShipping": True,
        "trackingInfo": tracking_info,
        "__typename": "Fulfillment",
    }


def _new_fulfillment_order(template: FakeFulfillmentOrder, factory: OrderFactory, status: str) -> FakeFulfillmentOrder:
    """A new fulfillment order like ``template`` with its own id and ``status``."""
    return replace(template, legacy_id=factory.new_id(), status=status)


def _post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> int:
    """POST ``body`` and return the HTTP status (0: no answer). urllib, because httpx logs every request
    at INFO and a fake logs nothing per request."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FakeShopifyError("a webhook URL is http or https")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - checked above
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def _is_order_gid(gid: str) -> bool:
    return gid.startswith(ORDER_GID) and gid.removeprefix(ORDER_GID).isdigit()


def _fo_cursor(gid: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"last_id": int(gid.rsplit("/", 1)[1])}).encode()).decode().rstrip("=")


def _address_json(address: ShippingAddress) -> dict[str, Any]:
    return {
        "name": address.name,
        "firstName": address.first_name,
        "lastName": address.last_name,
        "company": address.company,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "province": address.province,
        "provinceCode": address.province_code,
        "zip": address.zip,
        "country": address.country,
        "countryCodeV2": address.country_code,
        "phone": address.phone,
    }


def _cost(requested: int, actual: int | None, bucket: CostBucket) -> dict[str, Any]:
    return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": bucket.status().as_json()}


def _order_meta(order: FakeOrder) -> dict[str, Any]:
    """An order's non-PII facts, for the control API."""
    return {
        "id": order.gid,
        "name": order.name,
        "shop": order.shop,
        "created_at": iso(order.created),
        "updated_at": iso(order.updated),
        "display_fulfillment_status": order.display_status,
        "fulfillment_orders": [fo.status for fo in order.fulfillment_orders],
        "cancelled": order.cancelled,
        "closed": order.closed,
        "has_shipping_address": order.shipping_address is not None,
        "country_code": order.shipping_address.country_code if order.shipping_address else None,
    }


_ERROR_ENVELOPE = compile_check(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}, "extensions": {"type": "object"}},
                },
            }
        },
    }
)


def _json_response(status: int, body: Any) -> Response:
    text = "" if body is None else json.dumps(body, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escape it (valid JSON, as Shopify sends it)
        text = json.dumps(body)
    response = Response(
        text, status=status, headers={"X-Request-Id": str(uuid.uuid4()), "X-Shopify-API-Version": API_VERSION}
    )
    if body is not None:
        response.content_type = "application/json; charset=utf-8"
    return response


def _text_response(status: int, text: str) -> Response:
    return Response(text, status=status, content_type="text/plain; charset=utf-8")


__all__ = [
    "FULFILLMENT_ORDER_STATUSES",
    "FULL_ACCESS",
    "LABEL_ACCESS",
    "LEVEL_1",
    "NO_ACCESS",
    "App",
    "FakeShopify",
    "FakeShopifyError",
    "ProtectedAccess",
    "Shop",
    "WebhookDelivery",
    "legacy_id",
    "oauth_hmac",
    "webhook_hmac",
]
