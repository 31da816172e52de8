"""Where a Shopify shop's Admin API lives, and what a shop domain may look like.

A shop's Admin GraphQL API is ``https://{shop}.myshopify.com/admin/api/2026-07/graphql.json``; the OAuth
install flow runs on the same host (``/admin/oauth/authorize``, ``/admin/oauth/access_token``). The shop
domain comes from a seller's form or an OAuth callback, so it is checked against Shopify's own pattern
before any URL is built from it: anything else would make the vault send a token to a host of the
caller's choosing.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from connectors.interfaces import ConnectorError
from vault.errors import AccountSetupError
from vault.marketplace_accounts import EndpointPolicy

API_VERSION = "2026-07"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
AUTHORIZE_PATH = "/admin/oauth/authorize"
ACCESS_TOKEN_PATH = "/admin/oauth/access_token"  # noqa: S105 - a path, not a secret
#: Shopify's shop domains: a handle of lower-case letters, digits and dashes, then ``.myshopify.com``.
SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
MAX_DOMAIN = 255


def shop_domain(value: str) -> str:
    """``value`` as a shop domain (trimmed, lower-cased, a bare handle completed with ``.myshopify.com``);
    :class:`AccountSetupError` when it is not one."""
    text = value.strip().lower().removeprefix("https://").removesuffix("/")
    if text and "." not in text:
        text += ".myshopify.com"
    if len(text) > MAX_DOMAIN or not SHOP_DOMAIN.fullmatch(text):
        raise AccountSetupError("a Shopify shop domain looks like my-shop.myshopify.com")
    return text


def is_shop_domain(value: str) -> bool:
    """Whether ``value`` is exactly a shop domain (no completion, no trimming: an OAuth callback's check)."""
    return len(value) <= MAX_DOMAIN and SHOP_DOMAIN.fullmatch(value) is not None


def shop_origin(shop: str) -> str:
    """The shop's own origin, ``https://{shop}``."""
    if not is_shop_domain(shop):
        raise ConnectorError("not a Shopify shop domain")
    return f"https://{shop}"


def endpoint_policy(shop: str, overrides: Collection[str] = ()) -> EndpointPolicy:
    """Where an account of ``shop`` may point: the shop's own origin, or an origin the operator allows."""
    return EndpointPolicy(
        api=frozenset({shop_origin(shop)}),
        token=frozenset({shop_origin(shop) + ACCESS_TOKEN_PATH}),
        overrides=frozenset(overrides),
        api_name="Admin API",
    )


def api_base(shop: str, api_endpoint: str | None) -> str:
    """The base URL the account's queries go to: its (checked) override, or the shop's own origin."""
    return (api_endpoint or shop_origin(shop)).rstrip("/")
