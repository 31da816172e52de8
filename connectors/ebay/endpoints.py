"""Where an eBay account's API lives, what the app may ask a seller for, and eBay's call limits as pacing.

eBay has no regions: one API host per environment (production, sandbox), its OAuth token endpoint on the
same host, and the consent page on the ``auth.`` host. An account is ``region="global"``; a sandbox
account is one whose endpoints are the sandbox hosts.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from connectors.ratelimit import UsagePlan
from vault.marketplace_accounts import EndpointPolicy

API_HOST = "https://api.ebay.com"
SANDBOX_API_HOST = "https://api.sandbox.ebay.com"
AUTH_HOST = "https://auth.ebay.com"
SANDBOX_AUTH_HOST = "https://auth.sandbox.ebay.com"
TOKEN_PATH = "/identity/v1/oauth2/token"  # noqa: S105 - a path, not a secret
AUTHORIZE_PATH = "/oauth2/authorize"
ORDERS_PATH = "/sell/fulfillment/v1/order"
REGION = "global"

#: The one scope the connector asks for: the seller's orders and their fulfillments (the document's
#: ``sell.fulfillment``, "View and manage your order fulfillments"): getOrders reads the orders, and
#: createShippingFulfillment marks one shipped once the vault bought its label (connectors/ebay/fulfillment.py).
#: A grant of the read-only ``sell.fulfillment.readonly`` still syncs; its confirmations fail until re-consent.
SCOPE = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"

#: The application's daily call limit for the Fulfillment API (getOrders and getOrder share it), before
#: eBay's Application Growth Check raises it; an app with a higher limit passes its own (``daily_calls``
#: of the connector factory). docs/marketplaces/ebay.md says where the figure comes from.
FULFILLMENT_DAILY_CALLS = 100_000
#: eBay's OAuth limits per application and day (developer.ebay.com, "OAuth rate limits").
REFRESH_DAILY_CALLS = 50_000
CODE_DAILY_CALLS = 10_000
DAY_SECONDS = 86400.0


def daily_plan(calls_per_day: int) -> UsagePlan:
    """A token bucket that can never spend more than ``calls_per_day`` in any day.

    eBay counts calls per application per day and answers 429 once they are spent, for the rest of the
    day. The bucket holds an hour's average (``calls_per_day / 24``) so a sync is not slowed while the app
    is well inside its quota, and refills at the rest of the day's share, so a full bucket plus a day's
    refill is exactly the quota: a process that paces on it is never throttled by eBay.
    """
    if calls_per_day < 24:
        raise ValueError("a daily quota below 24 calls can't be paced by the hour")
    burst = calls_per_day // 24
    return UsagePlan(rate=(calls_per_day - burst) / DAY_SECONDS, burst=burst)


def usage_plans(daily_calls: int = FULFILLMENT_DAILY_CALLS) -> dict[str, UsagePlan]:
    """The pacing plans by operation group: the Fulfillment API's quota and the token grants'."""
    return {
        "fulfillment": daily_plan(daily_calls),
        "oauthRefresh": daily_plan(REFRESH_DAILY_CALLS),
        "oauthCode": daily_plan(CODE_DAILY_CALLS),
    }


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The two base URLs one account talks to: the API origin and the token URL."""

    api: str
    token: str


def endpoint_policy(overrides: Collection[str] = ()) -> EndpointPolicy:
    """Where an eBay account may point: eBay's production or sandbox API host and their token URLs, or an
    origin in the operator's ``overrides`` (fakes and tests only)."""
    return EndpointPolicy(
        api=frozenset({API_HOST, SANDBOX_API_HOST}),
        token=frozenset({API_HOST + TOKEN_PATH, SANDBOX_API_HOST + TOKEN_PATH}),
        overrides=frozenset(overrides),
    )


def endpoints_for(api_endpoint: str | None = None, token_endpoint: str | None = None) -> Endpoints:
    """The account's endpoints: eBay's production hosts unless the account stores others."""
    api = (api_endpoint or API_HOST).rstrip("/")
    return Endpoints(api=api, token=token_endpoint or api + TOKEN_PATH)


def consent_host(api: str) -> str:
    """The consent page's origin for an API origin: eBay's ``auth.`` host of the same environment, or the
    API origin itself for a fake (which serves both)."""
    if api == API_HOST:
        return AUTH_HOST
    if api == SANDBOX_API_HOST:
        return SANDBOX_AUTH_HOST
    return api
