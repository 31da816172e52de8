"""The fake Walmart as a contract harness (tests.support.contract): the Orders API on a clock the tests move."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeClock
from connectors.fake_walmart import FakeWalmart
from connectors.interfaces import Connector
from connectors.ratelimit import RateLimiter
from connectors.registry import connector_for_account
from connectors.walmart import RetryPolicy
from connectors.walmart.client import USAGE_PLANS
from tests.support.contract import Harness, State
from tests.support.walmart import SPEEDUP, add_walmart_account, expected_state, make_connector
from vault.keys import KeyManager
from vault.marketplace_accounts import endpoint_origin
from vault.models import MarketplaceAccount, Tenant

_TO_SHIP = {"Created", "Acknowledged"}


class WalmartHarness(Harness):
    code: ClassVar[str] = "walmart"

    def __init__(self, fake: FakeWalmart, clock: FakeClock) -> None:
        self.fake, self.clock = fake, clock

    @classmethod
    @contextmanager
    def running(cls, *, seed: int, speedup: float | None = None) -> Iterator[WalmartHarness]:
        clock = FakeClock()
        with FakeWalmart(speedup=speedup or SPEEDUP, seed=seed, clock=clock) as fake:
            yield cls(fake, clock)
            assert fake.validation_errors == []
            assert fake.server_errors == []

    def seed_orders(self, count: int) -> list[str]:
        return self.fake.generate_orders(count)

    def connect(self, session: Session, keys: KeyManager, tenant: Tenant) -> MarketplaceAccount:
        return add_walmart_account(session, keys, tenant, self.fake)

    def connector(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> Connector:
        return make_connector(session, keys, account, self.fake)

    def move_on(self, rng: random.Random, count: int) -> list[str]:
        orders = self.fake.orders()
        live = [oid for oid, o in orders.items() if o.line_statuses & _TO_SHIP]
        shipped = [oid for oid, o in orders.items() if o.line_statuses == {"Shipped"}]
        changed = []
        for oid in rng.sample(live, min(count, len(live))):
            lines = orders[oid].lines
            move = rng.choice(["ship", "cancel", "ship one line", "acknowledge"])
            if move == "ship one line" and len(lines) > 1:
                self.fake.update_order(oid, status="Shipped", lines=[lines[0].line_number])
            elif move == "cancel":
                self.fake.update_order(oid, status="Cancelled")
            elif move == "acknowledge":
                self.fake.update_order(oid, status="Acknowledged")
            else:
                self.fake.update_order(oid, status="Shipped")
            changed.append(oid)
        for oid in rng.sample(shipped, min(count // 4, len(shipped))):
            self.fake.update_order(oid, status="Delivered")
            changed.append(oid)
        return changed

    def expire_tokens(self) -> None:
        self.fake.expire_tokens()

    def throttle_next(self, count: int) -> None:
        self.fake.inject(status=429, count=count, operation="getAllOrders")

    def fail_next(self, count: int) -> None:
        self.fake.inject(status=503, count=count, operation="getAllOrders")

    def add_bad_order(self) -> str:
        (oid,) = self.fake.generate_orders(1, statuses=["Created"])
        self.fake.edit_ship_to(oid, name="Ana \ud83d", address1="Main\x00 St")
        self.clock.advance(minutes=1)  # the connector leaves the last seconds to its next window
        return oid

    def expected(self) -> State:
        out: State = {}
        for oid, (status, label) in expected_state(self.fake).items():
            out[oid] = (status, label if any(v is not None for v in label.values()) else None)
        return out

    def throttled(self) -> int:
        return sum(self.fake.throttled.values())

    def token_grants(self) -> int:
        return self.fake.calls["tokenAPI"]

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
