"""The fake Shopify as a contract harness (tests.support.contract): an installed public app's expiring
offline token, on a clock the tests move."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy.orm import Session

from connectors.fake_shopify import LABEL_ACCESS, FakeClock, FakeShopify, legacy_id
from connectors.interfaces import Connector
from connectors.registry import connector_for_account
from connectors.shopify import RetryPolicy
from connectors.shopify.pacing import CostPacer
from tests.support.contract import Harness, State
from tests.support.shopify import (
    SPEEDUP,
    add_shopify_account,
    expected_record,
    expected_status,
    installed_token,
    make_connector,
)
from vault.keys import KeyManager
from vault.marketplace_accounts import endpoint_origin
from vault.models import MarketplaceAccount, Tenant


class ShopifyHarness(Harness):
    code: ClassVar[str] = "shopify"

    def __init__(self, fake: FakeShopify, clock: FakeClock) -> None:
        self.fake, self.clock = fake, clock

    @classmethod
    @contextmanager
    def running(cls, *, seed: int, speedup: float | None = None) -> Iterator[ShopifyHarness]:
        clock = FakeClock()
        with FakeShopify(speedup=speedup or SPEEDUP, seed=seed, clock=clock) as fake:
            yield cls(fake, clock)
            assert fake.validation_errors == []
            assert fake.server_errors == []
            assert not fake.unserved_fields

    def _settle(self) -> None:
        # The connector's window ends a few seconds before now (updates Shopify has yet to index).
        self.clock.advance(minutes=1)

    def seed_orders(self, count: int) -> list[str]:
        gids = self.fake.generate_orders(count)
        self._settle()
        return [str(legacy_id(g)) for g in gids]

    def connect(self, session: Session, keys: KeyManager, tenant: Tenant) -> MarketplaceAccount:
        return add_shopify_account(session, keys, tenant, self.fake, token=installed_token(self.fake))

    def connector(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> Connector:
        return make_connector(session, keys, account, self.fake)

    def move_on(self, rng: random.Random, count: int) -> list[str]:
        orders = self.fake.orders()
        live = sorted(g for g, o in orders.items() if not o.cancelled and o.display_status != "FULFILLED")
        changed = []
        for gid in rng.sample(live, min(count, len(live))):
            change = rng.choice(["fulfill", "cancel", "partially_fulfill", "hold", "close"])
            self.fake.update_order(gid, **{change: True})
            changed.append(str(legacy_id(gid)))
        self._settle()
        return changed

    def expire_tokens(self) -> None:
        self.fake.expire_tokens()

    def throttle_next(self, count: int) -> None:
        self.fake.inject_throttle(count)

    def fail_next(self, count: int) -> None:
        self.fake.inject(status=503, count=count, operation="graphql")

    def add_bad_order(self) -> str:
        (gid,) = self.fake.generate_orders(1, statuses=["UNFULFILLED"])
        self.fake.edit_shipping_address(gid, first_name="Ana \ud83d", last_name="Bug", address1="Main\x00 St")
        self._settle()
        return str(legacy_id(gid))

    def expected(self) -> State:
        out: State = {}
        for gid in self.fake.orders():
            status = expected_status(self.fake, gid)
            label = expected_record(self.fake, gid, access=LABEL_ACCESS) if status != "cancelled" else None
            out[str(legacy_id(gid))] = (status, label if label and label["name"] else None)
        return out

    def throttled(self) -> int:
        return sum(self.fake.throttled.values())

    def token_grants(self) -> int:
        return self.fake.token_grants

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
            pacer=CostPacer(speedup=speedup),
            retry=RetryPolicy(attempts=8, base_delay=1.0, read_timeout=5.0),
            speedup=speedup,
            clock=lambda: now,
            page_size=50,
            initial_lookback=timedelta(days=30),
            endpoint_overrides={endpoint_origin(account.api_endpoint) or ""} if account.api_endpoint else set(),
        )
