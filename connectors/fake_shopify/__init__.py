"""A fake Shopify for tests, benchmarks and the demo: the Admin GraphQL API 2026-07 over real HTTP.

Serves ``POST /admin/api/2026-07/graphql.json`` (header ``X-Shopify-Access-Token``), validating every
query against Shopify's published schema and executing it over generated orders, so an answer has exactly
the query's shape; the OAuth install flow of a public app (``/admin/oauth/authorize``,
``/admin/oauth/access_token``); and the privacy webhooks, signed as Shopify signs them. Run it standalone
with ``python -m connectors.fake_shopify``.

The Python API (stable; connectors, harnesses and benchmarks rely on it)::

    fake = FakeShopify(speedup=1.0, seed=0, clock=FakeClock(), latency=0.0).start()   # or `with FakeShopify() as fake:`
    fake.base_url, fake.graphql_url                                   # http://127.0.0.1:<port>[/admin/api/2026-07/graphql.json]
    fake.DEFAULT_SHOP.domain, fake.DEFAULT_TOKEN                      # a shop and a custom-app token for it
    fake.add_shop("other.myshopify.com", plan="standard") -> Shop
    fake.custom_app_token(shop, scopes=[...], access=FULL_ACCESS) -> "shpat_..."
    fake.add_app(name, access=LABEL_ACCESS, redirect_urls=()) -> App (public app: client_id, client_secret)
    fake.authorize_url(client_id=, scopes=, redirect_uri=, state=, shop=) -> URL that 302s with code+hmac
    fake.install(client_id=, shop=, scopes=, expiring=True) -> the token endpoint's answer (access + refresh token)
    fake.set_access(client_id, ProtectedAccess(level, fields)); fake.revoke_token(t); fake.uninstall(client_id=, shop=)
    fake.expire_tokens()   # every access token 401s from now on; refresh tokens (grant_type=refresh_token) still work
    fake.generate_orders(n, shop=, countries=, statuses=, start=) -> [order GID, ...]
    fake.update_order(gid, fulfill=, partially_fulfill=, cancel=, close=, hold=, release=)
    fake.edit_shipping_address(gid, **ShippingAddress fields); fake.remove_shipping_address(gid)
    fake.add_bad_order(shop) -> GID (lone surrogate and control characters in the recipient)
    fake.orders(shop) -> {GID: FakeOrder}; fake.expected_label(gid, access=FULL_ACCESS) -> {MailingAddress field: value}
    fake.buyer_pii_strings() -> set[str]
    fake.inject(status=503, count=1, operation="graphql"); fake.inject_throttle(count); fake.drain_bucket(token)
    fake.inject_delay(seconds, count=1); fake.mutate_while_paging(True)
    fake.deliver_webhook(url, "customers/redact", customer_of=gid, duplicate=False, bad_signature=False)
    fake.calls, fake.throttled, fake.token_grants, fake.cost_spent, fake.mutations, fake.webhook_deliveries
    fake.validation_errors, fake.server_errors, fake.unserved_fields   # tests keep these three empty
    fake.restore_rate(shop), fake.min_seconds(total_cost, shop), fake.bucket(token).status()
"""

from .data import (
    COUNTRIES,
    DISPLAY_STATUSES,
    FULFILLMENT_ORDER_STATUSES,
    FakeCustomer,
    FakeFulfillmentOrder,
    FakeOrder,
    ShippingAddress,
)
from .limits import PLANS, CostBucket, FakeClock, ThrottleStatus
from .schema import API_VERSION, SINGLE_QUERY_MAX_COST, requested_cost, response_schema, schema
from .shop import (
    ACCESS_TOKEN_PATH,
    AUTHORIZE_PATH,
    FULL_ACCESS,
    GRAPHQL_PATH,
    LABEL_ACCESS,
    LEVEL_1,
    MAX_PAGE_SIZE,
    NO_ACCESS,
    WEBHOOK_TOPICS,
    App,
    FakeShopify,
    FakeShopifyError,
    ProtectedAccess,
    Shop,
    WebhookDelivery,
    legacy_id,
    oauth_hmac,
    webhook_hmac,
)

__all__ = [
    "ACCESS_TOKEN_PATH",
    "API_VERSION",
    "AUTHORIZE_PATH",
    "COUNTRIES",
    "DISPLAY_STATUSES",
    "FULFILLMENT_ORDER_STATUSES",
    "FULL_ACCESS",
    "GRAPHQL_PATH",
    "LABEL_ACCESS",
    "LEVEL_1",
    "MAX_PAGE_SIZE",
    "NO_ACCESS",
    "PLANS",
    "SINGLE_QUERY_MAX_COST",
    "WEBHOOK_TOPICS",
    "App",
    "CostBucket",
    "FakeClock",
    "FakeCustomer",
    "FakeFulfillmentOrder",
    "FakeOrder",
    "FakeShopify",
    "FakeShopifyError",
    "ProtectedAccess",
    "ShippingAddress",
    "Shop",
    "ThrottleStatus",
    "WebhookDelivery",
    "legacy_id",
    "oauth_hmac",
    "requested_cost",
    "response_schema",
    "schema",
    "webhook_hmac",
]
