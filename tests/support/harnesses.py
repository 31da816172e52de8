"""Every platform's contract harness (tests.support.contract.Harness), as the contract suite runs them."""

from __future__ import annotations

from tests.support.amazon_harness import AmazonHarness
from tests.support.contract import Harness
from tests.support.ebay_harness import EbayHarness
from tests.support.shopify_harness import ShopifyHarness
from tests.support.tiktok_harness import TikTokHarness
from tests.support.walmart_harness import WalmartHarness

#: One harness per registered platform; a new platform adds its own here.
HARNESSES: tuple[type[Harness], ...] = (AmazonHarness, ShopifyHarness, EbayHarness, TikTokHarness, WalmartHarness)


def harness(code: str) -> type[Harness]:
    """The harness of the platform ``code``."""
    return next(h for h in HARNESSES if h.code == code)
