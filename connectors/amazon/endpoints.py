"""Where an Amazon account's API lives: SP-API regional hosts, their sandboxes, and Login with Amazon."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from connectors.interfaces import ConnectorError
from connectors.ratelimit import UsagePlan
from vault.marketplace_accounts import EndpointPolicy

#: SP-API hosts per region (Amazon's developer guide, "SP-API endpoints").
REGIONS: dict[str, str] = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
SANDBOX_REGIONS: dict[str, str] = {
    "na": "https://sandbox.sellingpartnerapi-na.amazon.com",
    "eu": "https://sandbox.sellingpartnerapi-eu.amazon.com",
    "fe": "https://sandbox.sellingpartnerapi-fe.amazon.com",
}
LWA_URL = "https://api.amazon.com/auth/o2/token"

#: Amazon's marketplaces by id, as sellers know them (Amazon's developer guide, "Marketplace IDs").
MARKETPLACE_NAMES: dict[str, str] = {
    "ATVPDKIKX0DER": "Amazon.com",
    "A2EUQ1WTGCTBG2": "Amazon.ca",
    "A1AM78C64UM0Y8": "Amazon.com.mx",
    "A2Q3Y263D00KWC": "Amazon.com.br",
    "A1F83G8C2ARO7P": "Amazon.co.uk",
    "A1PA6795UKMFR9": "Amazon.de",
    "A13V1IB3VIYZZH": "Amazon.fr",
    "APJ6JRA9NG5V4": "Amazon.it",
    "A1RKKUPIHCS9HS": "Amazon.es",
    "A1805IZSGTT6HS": "Amazon.nl",
    "A2NODRKZP88ZB9": "Amazon.se",
    "A1C3SOZRARQ6R3": "Amazon.pl",
    "AMEN7PMS3EDWL": "Amazon.com.be",
    "A33AVAJ2PDY3EV": "Amazon.com.tr",
    "A17E79C6D8DWNP": "Amazon.sa",
    "A2VIGQ35RCS4UG": "Amazon.ae",
    "ARBP9OOSHTCHU": "Amazon.eg",
    "A21TJRUUN4KGV": "Amazon.in",
    "A1VC38T7YXB528": "Amazon.co.jp",
    "A39IBJ37TRP1C6": "Amazon.com.au",
    "A19VAU5U5O7RUS": "Amazon.sg",
}

API_V2026 = "2026-01-01"
API_V0 = "v0"
API_VERSIONS = (API_V2026, API_V0)

#: Documented default usage plans (rate per second, burst) of the operations the connector calls.
USAGE_PLANS: dict[str, UsagePlan] = {
    "searchOrders": UsagePlan(rate=0.0056, burst=20),
    "getOrder": UsagePlan(rate=0.5, burst=30),
    "getOrders": UsagePlan(rate=0.0167, burst=20),
    "getOrderAddress": UsagePlan(rate=0.5, burst=30),
    "createRestrictedDataToken": UsagePlan(rate=1.0, burst=10),
    # Telling Amazon an order shipped (connectors/amazon/fulfillment.py): Orders v0.
    "getOrderV0": UsagePlan(rate=0.5, burst=30),
    "getOrderItems": UsagePlan(rate=0.5, burst=30),
    "confirmShipment": UsagePlan(rate=2.0, burst=10),
    # LWA publishes no usage plan; this keeps a broken loop from hammering it.
    "lwaToken": UsagePlan(rate=1.0, burst=5),
}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The two base URLs one account talks to."""

    sp_api: str
    lwa: str


def endpoint_policy(region: str, overrides: Collection[str] = ()) -> EndpointPolicy:
    """Where an account in ``region`` may point: its region's SP-API host or sandbox host and Amazon's LWA URL,
    or an origin in the operator's ``overrides``."""
    own = {hosts[region] for hosts in (REGIONS, SANDBOX_REGIONS) if region in hosts}
    return EndpointPolicy(
        api=frozenset(own), token=frozenset({LWA_URL}), overrides=frozenset(overrides), api_name="SP-API"
    )


def endpoints_for(
    region: str, *, sandbox: bool = False, sp_api_endpoint: str | None = None, lwa_endpoint: str | None = None
) -> Endpoints:
    """The account's endpoints: its region's host (or sandbox host), unless overridden per account."""
    hosts = SANDBOX_REGIONS if sandbox else REGIONS
    if sp_api_endpoint:
        sp_api = sp_api_endpoint
    elif region in hosts:
        sp_api = hosts[region]
    else:
        raise ConnectorError(f"unknown Amazon region {region!r} (expected one of {', '.join(REGIONS)})")
    return Endpoints(sp_api=sp_api.rstrip("/"), lwa=lwa_endpoint or LWA_URL)
