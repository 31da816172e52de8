"""The fake eBay as a contract harness (tests.support.contract): Sell Fulfillment v1 on a clock the tests move."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.orm import Session

from connectors.ebay import RetryPolicy
from connectors.ebay.endpoints import usage_plans
from connectors.fake_amazon import FakeClock
from connectors.fake_ebay import FakeEbay
from connectors.interfaces import Connector
from connectors.ratelimit import RateLimiter
from connectors.registry import connector_for_account
from tests.support.contract import Harness, State
from tests.support.ebay import SPEEDUP, add_ebay_account, ebay_status, make_ebay_connector
from vault.keys import KeyManager
from vault.marketplace_accounts import endpoint_origin
from vault.models import MarketplaceAccount, Tenant
from vault.records import LabelRecord


class EbayHarness(Harness):
    code: ClassVar[str] = "ebay"

    def __init__(self, fake: FakeEbay, clock: FakeClock) -> None:
        self.fake, self.clock = fake, clock

    @classmethod
    @contextmanager
    def running(cls, *, seed: int, speedup: float | None = None) -> Iterator[EbayHarness]:
        clock = FakeClock()
        with FakeEbay(speedup=speedup or SPEEDUP, seed=seed, clock=clock) as fake:
            yield cls(fake, clock)
            assert fake.validation_errors == []
            assert fake.server_errors == []

    def seed_orders(self, count: int) -> list[str]:
        return list(self.fake.generate_orders(count))

    def connect(self, session: Session, keys: KeyManager, tenant: Tenant) -> MarketplaceAccount:
        return add_ebay_account(session, keys, tenant, self.fake)

    def connector(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> Connector:
        return make_ebay_connector(session, keys, account, self.fake)

    def move_on(self, rng: random.Random, count: int) -> list[str]:
        orders = self.fake.orders()
        live = [
            oid for oid, o in orders.items() if o.cancel_state != "CANCELED" and o.fulfillment_status != "FULFILLED"
        ]
        changed = []
        for oid in rng.sample(live, min(count, len(live))):
            move = rng.choice(["ship", "cancel", "partly"])
            if move == "cancel" and orders[oid].fulfillment_status == "NOT_STARTED":
                self.fake.update_order(oid, cancel="CANCELED")
            else:
                self.fake.update_order(oid, fulfillment="IN_PROGRESS" if move == "partly" else "FULFILLED")
            changed.append(oid)
        return changed

    def expire_tokens(self) -> None:
        self.fake.expire_tokens()

    def throttle_next(self, count: int) -> None:
        self.fake.inject(status=429, count=count, operation="getOrders")

    def fail_next(self, count: int) -> None:
        self.fake.inject(status=503, count=count, operation="getOrders")

    def add_bad_order(self) -> str:
        (oid,) = self.fake.generate_orders(1, statuses=["NOT_STARTED"])
        self.fake.edit_ship_to(oid, full_name="Ana \ud83d", address_line1="Main\x00 St")
        self.clock.advance(minutes=1)  # the connector's windows end 30 seconds ago
        return oid

    def expected(self) -> State:
        out: State = {}
        for oid, order in self.fake.orders().items():
            served = self.fake.expected_label(oid)
            label = None
            if any(v is not None for v in served.values()):
                label = {**dict.fromkeys(LabelRecord.field_names()), **served}
            out[oid] = (ebay_status(order.fulfillment_status, order.cancel_state), label)
        return out

    def throttled(self) -> int:
        return sum(self.fake.throttled.values())

    def token_grants(self) -> int:
        return self.fake.calls["oauthToken"]

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
            limiter=RateLimiter(usage_plans(), speedup=speedup),
            retry=RetryPolicy(attempts=8, base_delay=1.0, read_timeout=5.0),
            speedup=speedup,
            clock=lambda: now,
            page_size=50,
            initial_lookback=timedelta(days=30),
            endpoint_overrides={
                endpoint_origin(url) or "" for url in (account.api_endpoint, account.token_endpoint) if url
            },
        )
