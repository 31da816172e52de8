"""The fake TikTok Shop as a contract harness (tests.support.contract): Order 202309 on a clock the tests move."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.orm import Session

from connectors.fake_amazon import FakeClock
from connectors.fake_tiktok import FakeTikTok, Recipient
from connectors.fake_tiktok.marketplace import market
from connectors.interfaces import Connector
from connectors.ratelimit import RateLimiter
from connectors.registry import connector_for_account
from connectors.tiktok import RetryPolicy
from connectors.tiktok.endpoints import USAGE_PLANS
from connectors.tiktok.mapping import STATUSES
from tests.support.contract import Harness, State
from tests.support.tiktok import SPEEDUP, add_tiktok_account, make_connector
from vault.keys import KeyManager
from vault.marketplace_accounts import endpoint_origin
from vault.models import MarketplaceAccount, Tenant

#: The fake's windows end five seconds before now: changes are served once the clock is past that.
_SETTLE = timedelta(seconds=10)


class TikTokHarness(Harness):
    code: ClassVar[str] = "tiktok"

    def __init__(self, fake: FakeTikTok, clock: FakeClock) -> None:
        self.fake, self.clock = fake, clock

    @classmethod
    @contextmanager
    def running(cls, *, seed: int, speedup: float | None = None) -> Iterator[TikTokHarness]:
        clock = FakeClock()
        with FakeTikTok(speedup=speedup or SPEEDUP, seed=seed, clock=clock) as fake:
            yield cls(fake, clock)
            assert fake.validation_errors == []
            assert fake.server_errors == []

    def seed_orders(self, count: int) -> list[str]:
        ids = list(self.fake.generate_orders(count, platform_shipped_every=5))
        self.clock.advance(seconds=_SETTLE.total_seconds())
        return ids

    def connect(self, session: Session, keys: KeyManager, tenant: Tenant) -> MarketplaceAccount:
        return add_tiktok_account(session, keys, tenant, self.fake)

    def connector(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> Connector:
        return make_connector(session, keys, account, self.fake)

    def move_on(self, rng: random.Random, count: int) -> list[str]:
        orders = self.fake.orders()
        live = [oid for oid, o in orders.items() if o.status in ("ON_HOLD", "AWAITING_SHIPMENT", "AWAITING_COLLECTION")]
        moving = [oid for oid, o in orders.items() if o.status == "IN_TRANSIT"]
        changed = []
        for oid in rng.sample(live, min(count, len(live))):
            status = orders[oid].status
            nxt = "IN_TRANSIT" if status == "AWAITING_COLLECTION" else rng.choice(["AWAITING_COLLECTION", "CANCELLED"])
            self.fake.update_order(oid, status=nxt)
            changed.append(oid)
        for oid in rng.sample(moving, min(count // 4, len(moving))):
            self.fake.update_order(oid, status="DELIVERED")
            changed.append(oid)
        self.clock.advance(seconds=_SETTLE.total_seconds())
        return changed

    def expire_tokens(self) -> None:
        self.fake.expire_tokens()

    def throttle_next(self, count: int) -> None:
        self.fake.inject(status=429, count=count, operation="orders.search")

    def fail_next(self, count: int) -> None:
        self.fake.inject(status=503, count=count, operation="orders.search")

    def add_bad_order(self) -> str:
        recipient = Recipient(
            name="Ana \ud83d",
            address_line1="Main\x00 St",
            region_code="US",
            districts=market("US").districts,
            postal_code="90012",
        )
        oid = self.fake.add_order(recipient=recipient)
        self.clock.advance(seconds=_SETTLE.total_seconds())
        return oid

    def expected(self) -> State:
        out: State = {}
        for oid, order in self.fake.orders().items():
            label = self.fake.expected_label(oid)
            out[oid] = (STATUSES[order.status].value, label if any(v is not None for v in label.values()) else None)
        return out

    def throttled(self) -> int:
        return sum(self.fake.throttled.values())

    def token_grants(self) -> int:
        return self.fake.calls["token.get"] + self.fake.calls["token.refresh"]

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
