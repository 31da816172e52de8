"""Where a Walmart account's API lives: Walmart Marketplace's production and sandbox hosts (US)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from vault.marketplace_accounts import EndpointPolicy

#: The hosts Walmart's OpenAPI files name (``servers``).
API_HOST = "https://marketplace.walmartapis.com"
SANDBOX_HOST = "https://sandbox.walmartapis.com"
TOKEN_PATH = "/v3/token"  # noqa: S105 - a path, not a secret
#: An account's region: Walmart Marketplace US (the only market the Orders API here serves).
REGION = "us"
#: The Orders API version the connector speaks (the path's ``/v3/``).
API_VERSION = "v3"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The two URLs one account talks to."""

    api: str
    token: str


def endpoint_policy(overrides: Collection[str] = ()) -> EndpointPolicy:
    """Where a Walmart account may point: Walmart's hosts and their token URLs, or an origin in ``overrides``."""
    return EndpointPolicy(
        api=frozenset({API_HOST, SANDBOX_HOST}),
        token=frozenset({API_HOST + TOKEN_PATH, SANDBOX_HOST + TOKEN_PATH}),
        overrides=frozenset(overrides),
        api_name="Walmart API",
    )


def endpoints_for(
    *, sandbox: bool = False, api_endpoint: str | None = None, token_endpoint: str | None = None
) -> Endpoints:
    """The account's endpoints: Walmart's host (or sandbox host), unless overridden per account; the token
    URL follows the API host unless it is overridden itself."""
    api = (api_endpoint or (SANDBOX_HOST if sandbox else API_HOST)).rstrip("/")
    return Endpoints(api=api, token=token_endpoint or api + TOKEN_PATH)
