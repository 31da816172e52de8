"""The fake Amazon as a contract harness (tests.support.contract): Orders v2026-01-01 on a clock the tests move."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.orm import Session

from connectors.amazon import RetryPolicy
from connectors.amazon.endpoints import USAGE_PLANS
from connectors.fake_amazon import FakeAmazon, FakeClock
from connectors.interfaces import Connector
from connectors.ratelimit import RateLimiter
from connectors.registry import connector_for_account
from tests.support.amazon import SPEEDUP, STATUS, add_amazon_account, make_connector
from tests.support.contract import Harness, State
from vault.keys import KeyManager
from vault.marketplace_accounts import endpoint_origin
from vault.models import MarketplaceAccount, Tenant

_LIVE = ("PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED")


class AmazonHarness(Harness):
    code: ClassVar[str] = "amazon"

    def __init__(self, fake: FakeAmazon, clock: FakeClock) -> None:
        self.fake, self.clock = fake, clock

    @classmethod
    @contextmanager
    def running(cls, *, seed: int, speedup: float | None = None) -> Iterator[AmazonHarness]:
        clock = FakeClock()
        with FakeAmazon(speedup=speedup or SPEEDUP, seed=seed, clock=clock) as fake:
            yield cls(fake, clock)
            assert fake.validation_errors == []
            assert fake.server_errors == []

    def seed_orders(self, count: int) -> list[str]:
        return list(self.fake.generate_orders(count))

    def connect(self, session: Session, keys: KeyManager, tenant: Tenant) -> MarketplaceAccount:
        return add_amazon_account(session, keys, tenant, self.fake)

    def connector(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> Connector:
        return make_connector(session, keys, account, self.fake)

    def move_on(self, rng: random.Random, count: int) -> list[str]:
        orders = self.fake.orders()
        live = [oid for oid, o in orders.items() if o.status in _LIVE]
        shipped = [oid for oid, o in orders.items() if o.status == "SHIPPED"]
        changed = []
        for oid in rng.sample(live, min(count, len(live))):
            self.fake.update_order(oid, status=rng.choice(["SHIPPED", "CANCELLED", "PARTIALLY_SHIPPED"]))
            changed.append(oid)
        for oid in rng.sample(shipped, min(count // 4, len(shipped))):
            self.fake.update_order(oid, delivered=True)
            changed.append(oid)
        return changed

    def expire_tokens(self) -> None:
        self.fake.expire_tokens()

    def throttle_next(self, count: int) -> None:
        self.fake.inject(status=429, count=count, operation="searchOrders")

    def fail_next(self, count: int) -> None:
        self.fake.inject(status=503, count=count, operation="searchOrders")

    def add_bad_order(self) -> str:
        (oid,) = self.fake.generate_orders(1, statuses=["UNSHIPPED"])
        self.fake.edit_ship_to(oid, name="Ana \ud83d", address_line1="Main\x00 St")
        self.clock.advance(minutes=3)  # Amazon serves changes two minutes old at the latest
        return oid

    def expected(self) -> State:
        out: State = {}
        for oid, order in self.fake.orders().items():
            label = self.fake.expected_label(oid)
            out[oid] = (STATUS[order.status], label if any(v is not None for v in label.values()) else None)
        return out

    def throttled(self) -> int:
        return sum(self.fake.throttled.values())

    def token_grants(self) -> int:
        return self.fake.calls["lwaToken"]

    def pii_strings(self) -> set[str]:
        return self.fake.buyer_pii_strings()

    def advance(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    def now(self) -> datetime:
        return self.fake.now()

    @classmethod
    def worker_connector(
        cls, session: Session, keys: KeyManager, account: MarketplaceAccount, *, speedup: float, now: datetime
    ) -> Connector:
        return connector_for_account(
            session,
            keys=keys,
            account=account,
            limiter=RateLimiter(USAGE_PLANS, speedup=speedup),
            retry=RetryPolicy(attempts=8, base_delay=1.0, read_timeout=5.0),
            speedup=speedup,
            clock=lambda: now,
            page_size=50,
            initial_lookback=timedelta(days=30),
            endpoint_overrides={
                endpoint_origin(url) or "" for url in (account.api_endpoint, account.token_endpoint) if url
            },
        )
