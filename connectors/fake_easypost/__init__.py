"""A fake EasyPost (addresses, shipments, rates, labels, refunds, trackers) over real HTTP, on the models of
EasyPost's own Go client and its docs responses: the carrier the tests, the benchmark and the demo buy EasyPost
labels from. See ``carrier.py``."""

from .carrier import DEFAULT_KEY, FakeEasyPost

__all__ = ["DEFAULT_KEY", "FakeEasyPost"]
