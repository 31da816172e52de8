"""A fake Amazon marketplace for tests, benchmarks and the demo (see ``FakeAmazon``).

Serves Login with Amazon, the Tokens API, Orders v0 / v2026-01-01 and Merchant Fulfillment v0 (``mfn.py``,
the label buying of the same orders) over real HTTP, from generated orders
or (``sandbox=True``) from Amazon's own ``x-amzn-api-sandbox`` examples, checking every answer against
Amazon's models. Run it standalone with ``python -m connectors.fake_amazon``.
"""

from .data import ADDRESS_STATUSES, FULFILLMENT_STATUSES, MARKETPLACES, V0_STATUS, BuyerTax, FakeItem, FakeOrder, ShipTo
from .limits import FakeClock, TokenBucket
from .marketplace import FakeAmazon, FakeAmazonError, Seller, operation_names

__all__ = [
    "ADDRESS_STATUSES",
    "FULFILLMENT_STATUSES",
    "MARKETPLACES",
    "V0_STATUS",
    "BuyerTax",
    "FakeAmazon",
    "FakeAmazonError",
    "FakeClock",
    "FakeItem",
    "FakeOrder",
    "Seller",
    "ShipTo",
    "TokenBucket",
    "operation_names",
]
