"""A fake Walmart Marketplace (US) for tests, benchmarks and the demo (see ``FakeWalmart``).

Serves the Token API (client credentials) and the Orders API's ``getAllOrders``, ``getAnOrder`` and
``shippingUpdates`` (Ship Order Lines, its request validated too) over real HTTP from generated purchase
orders, checking every answer against Walmart's OpenAPI files
(``connectors/platform_specs/walmart/``). Run it standalone with ``python -m connectors.fake_walmart``.
"""

from .data import LINE_STATUSES, TRICKY, FakeLine, FakeOrder, LineStatus, ShipTo
from .marketplace import FakeWalmart, FakeWalmartError, Seller, render_order

__all__ = [
    "LINE_STATUSES",
    "TRICKY",
    "FakeLine",
    "FakeOrder",
    "FakeWalmart",
    "FakeWalmartError",
    "LineStatus",
    "Seller",
    "ShipTo",
    "render_order",
]
