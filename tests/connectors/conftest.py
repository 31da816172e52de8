"""Fixtures of the connector tests: the fake Amazon marketplace and the fake TikTok Shop (real HTTP) on a clock
the tests move."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.fake_tiktok import FakeTikTok
from tests.support.amazon import SPEEDUP
from tests.support.tiktok import SPEEDUP as TIKTOK_SPEEDUP


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


@pytest.fixture
def tiktok(clock: FakeClock) -> Iterator[FakeTikTok]:
    """A running fake TikTok Shop with no orders yet; every body it served must match TikTok's schemas."""
    with FakeTikTok(speedup=TIKTOK_SPEEDUP, seed=0, clock=clock) as shop:
        yield shop
        assert shop.validation_errors == []
        assert shop.server_errors == []
