"""Fixtures of the connector tests: the fake Amazon marketplace (real HTTP) on a clock the tests move."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.fake_amazon import FakeAmazon, FakeClock
from tests.support.amazon import SPEEDUP


@pytest.fixture
def clock() -> FakeClock:
    """The marketplace's clock, shared by the fake and the connector (tests move it by hand)."""
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeAmazon]:
    """A running fake Amazon marketplace with no orders yet; its served bodies must all match Amazon's models."""
    with FakeAmazon(speedup=SPEEDUP, seed=0, clock=clock) as marketplace:
        yield marketplace
        assert marketplace.validation_errors == []
        assert marketplace.server_errors == []
