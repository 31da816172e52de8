"""The connector contract's side of each platform: a harness per marketplace, so that
``tests/connectors/test_contract.py`` runs the same tests against every registered connector.

A harness drives one running fake of its platform: it seeds orders, connects a stored account pointing at
the fake (credentials sealed like a real one's), builds the account's connector through the registry, moves
orders on (shipped, cancelled), expires tokens, injects throttling and server errors, adds an order whose
recipient text no vault could seal as served, and says what the vault must hold afterwards. A new platform
writes ``tests/support/<code>_harness.py`` and lists it in ``tests/support/harnesses.py``.
"""

from __future__ import annotations

import abc
import random
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.interfaces import Connector
from vault.keys import KeyManager
from vault.labels import unseal_label
from vault.models import MarketplaceAccount, Order, Tenant

#: What the vault holds of one order: its status and its unsealed label as a dict (``None``: no label).
State = dict[str, tuple[str, dict[str, Any] | None]]


class Harness(abc.ABC):
    """One platform's fake, from the contract tests' side."""

    #: The platform's code in connectors.registry.
    code: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def running(cls, *, seed: int, speedup: float | None = None) -> AbstractContextManager[Harness]:
        """The fake running on loopback (its own clock where it has one), torn down after; on exit it fails
        the test if any answer it served broke the platform's schema."""

    @abc.abstractmethod
    def seed_orders(self, count: int) -> list[str]:
        """Add ``count`` orders of the platform's usual mix (tricky recipients included); their ids."""

    @abc.abstractmethod
    def connect(self, session: Session, keys: KeyManager, tenant: Tenant) -> MarketplaceAccount:
        """A stored account of ``tenant`` pointing at the fake, its credentials sealed; committed."""

    @abc.abstractmethod
    def connector(self, session: Session, keys: KeyManager, account: MarketplaceAccount) -> Connector:
        """The account's connector through ``connectors.registry`` (fast retries, the fake's pace and clock,
        the operator allowing the fake's origin)."""

    @abc.abstractmethod
    def move_on(self, rng: random.Random, count: int) -> list[str]:
        """Change ``count`` live orders the way the platform's orders change (shipped, cancelled, partly
        shipped, delivered), later than anything served so far; the ids changed."""

    @abc.abstractmethod
    def expire_tokens(self) -> None:
        """Make every access token the fake issued invalid (the connector must renew and go on)."""

    @abc.abstractmethod
    def throttle_next(self, count: int) -> None:
        """Answer the next ``count`` order-listing calls with the platform's throttling answer."""

    @abc.abstractmethod
    def fail_next(self, count: int) -> None:
        """Answer the next ``count`` order-listing calls with a server error (HTTP 5xx)."""

    @abc.abstractmethod
    def add_bad_order(self) -> str:
        """Add an order whose recipient name holds a lone surrogate and whose address line a NUL; its id."""

    @abc.abstractmethod
    def expected(self) -> State:
        """What the vault must hold after syncing every order (statuses as stored, labels as unsealed)."""

    @abc.abstractmethod
    def throttled(self) -> int:
        """How many throttling answers the fake has given (injected ones included)."""

    @abc.abstractmethod
    def token_grants(self) -> int:
        """How many access tokens the fake has issued."""

    @abc.abstractmethod
    def pii_strings(self) -> set[str]:
        """Every buyer string the fake serves (names, address lines, phones, e-mails), for leak checks."""

    @abc.abstractmethod
    def advance(self, minutes: int) -> None:
        """Move the fake's clock on (a no-op for a fake that runs on the wall clock)."""

    @abc.abstractmethod
    def now(self) -> datetime:
        """The fake's idea of now."""

    @classmethod
    @abc.abstractmethod
    def worker_connector(
        cls, session: Session, keys: KeyManager, account: MarketplaceAccount, *, speedup: float, now: datetime
    ) -> Connector:
        """The account's connector as a separate sync process builds it (tests.support.sync_worker), from
        what the stored account says alone."""


def stored(session: Session, keys: KeyManager, account: MarketplaceAccount) -> State:
    """Every stored order of the account: status and unsealed label (``None`` without one)."""
    session.expire_all()
    out: State = {}
    for order in session.scalars(select(Order).where(Order.account_id == account.id)):
        label = unseal_label(session, keys=keys, order=order).as_dict() if order.label else None
        out[order.external_order_id] = (order.status, label)
    return out
