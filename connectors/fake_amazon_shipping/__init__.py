"""A fake Amazon Shipping v2 (rates, purchases, label documents, cancellation, tracking, and its own Login
with Amazon) over real HTTP, on Amazon's model, with Amazon's static sandbox (Shipping v2 and Merchant
Fulfillment v0) as a mode. See ``server.py``."""

from .server import SERVED, FakeAmazonShipping, Seller

__all__ = ["SERVED", "FakeAmazonShipping", "Seller"]
