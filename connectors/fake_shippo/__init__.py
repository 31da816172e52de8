"""A fake Shippo (shipments, rates, labels, refunds, tracking) over real HTTP, on Shippo's own OpenAPI
document: the carrier the tests, the benchmark and the demo buy labels from. See ``carrier.py``."""

from .carrier import DEFAULT_TOKEN, FakeShippo

__all__ = ["DEFAULT_TOKEN", "FakeShippo"]
