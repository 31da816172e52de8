"""Where a TikTok Shop account's API lives, and how fast it may be called.

TikTok Shop serves every market's Open API from one host and its token service from another; the package
shipping documents it issues are pre-signed URLs on its own file hosts.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from connectors.ratelimit import UsagePlan
from vault.marketplace_accounts import EndpointPolicy, endpoint_origin

API_URL = "https://open-api.tiktokglobalshop.com"
AUTH_URL = "https://auth.tiktok-shops.com"
REGION = "global"
API_VERSION = "202309"

#: Domains whose hosts may serve a shipping document TikTok hands out (https only). The vault fetches from
#: inside its network, so a document URL elsewhere is refused rather than followed.
DOCUMENT_DOMAINS = ("tiktokglobalshop.com", "tiktokshop.com", "tiktok-shops.com", "tiktokcdn.com", "tiktokcdn-us.com")

#: Requests per second per shop and endpoint, and the burst: the fake TikTok Shop's figures
#: (connectors/fake_tiktok/marketplace.py, RATE_LIMITS; TikTok publishes none per endpoint), mirrored so
#: calls wait for a token instead of drawing a 429.
USAGE_PLANS: dict[str, UsagePlan] = {
    "token.get": UsagePlan(rate=5.0, burst=5),
    "token.refresh": UsagePlan(rate=5.0, burst=5),
    "shops": UsagePlan(rate=5.0, burst=5),
    "orders.search": UsagePlan(rate=10.0, burst=10),
    "orders.detail": UsagePlan(rate=10.0, burst=10),
    "shipping_document": UsagePlan(rate=10.0, burst=10),
}


def endpoint_policy(overrides: Collection[str] = ()) -> EndpointPolicy:
    """Where a TikTok Shop account may point: TikTok's Open API and token hosts, or an operator's override."""
    return EndpointPolicy(
        api=frozenset({API_URL}),
        token=frozenset({AUTH_URL}),
        overrides=frozenset(overrides),
        api_name="TikTok Shop Open API",
    )


def document_url_allowed(url: str, *, api_base: str, overrides: Collection[str] = ()) -> bool:
    """Whether the vault may fetch a shipping document from ``url``.

    TikTok's own file hosts over https, or (a fake, a sandbox) the origin of the account's own API
    endpoint when the operator allows that origin. Anything else is a URL the vault won't follow.
    """
    origin = endpoint_origin(url)
    if origin is None:
        return False
    if origin in overrides and origin == endpoint_origin(api_base):
        return True
    host = (urlsplit(url).hostname or "").lower()
    return urlsplit(url).scheme == "https" and any(host == d or host.endswith("." + d) for d in DOCUMENT_DOMAINS)
