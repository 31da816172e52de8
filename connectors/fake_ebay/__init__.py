"""A fake eBay for tests, benchmarks and the demo (see ``FakeEbay``).

Serves eBay's OAuth consent and token endpoint and Sell Fulfillment v1 ``getOrders`` / ``getOrder`` over real
HTTP from generated orders, checking every answer against eBay's own OpenAPI document. Run it standalone
with ``python -m connectors.fake_ebay``.
"""

from .data import CANCEL_STATES, FULFILLMENT_STATUSES, MARKETPLACES, TRICKY_NAMES, FakeOrder, ShipTo
from .marketplace import (
    FULFILLMENT_DAILY_CALLS,
    SCOPE_FULFILLMENT,
    App,
    DailyQuota,
    FakeEbay,
    FakeEbayError,
    Seller,
    operation_names,
)

__all__ = [
    "CANCEL_STATES",
    "FULFILLMENT_DAILY_CALLS",
    "FULFILLMENT_STATUSES",
    "MARKETPLACES",
    "SCOPE_FULFILLMENT",
    "TRICKY_NAMES",
    "App",
    "DailyQuota",
    "FakeEbay",
    "FakeEbayError",
    "FakeOrder",
    "Seller",
    "ShipTo",
    "operation_names",
]
