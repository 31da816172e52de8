"""A fake TikTok Shop for tests, benchmarks and the demo (see ``FakeTikTok``).

Serves TikTok's token service, the authorised shops, the Order API (202309 search and detail, 202507
detail) and the Fulfillment API's package shipping documents over real HTTP, checking every request's
signature and every answer against TikTok's schemas. Run it standalone with ``python -m connectors.fake_tiktok``.
"""

from .data import STATUSES, District, FakeOrder, Recipient, Shop
from .marketplace import ERRORS, OPERATIONS, RATE_LIMITS, App, FakeTikTok, FakeTikTokError, expected_sign

__all__ = [
    "ERRORS",
    "OPERATIONS",
    "RATE_LIMITS",
    "STATUSES",
    "App",
    "District",
    "FakeOrder",
    "FakeTikTok",
    "FakeTikTokError",
    "Recipient",
    "Shop",
    "expected_sign",
]
