"""One carrier client per carrier account per process, reused across requests and threads.

Building a client per request cost the shipment path a TLS-ready HTTP client pair and a fresh TCP (and TLS)
connection per carrier call, and gave every request its own copy of the carrier's rate-limit bucket, so a
wave of concurrent purchases bursted past the carrier's limit and was throttled (429, backoff). The pool
keeps one client per account: HTTP keep-alive across requests, and one purchase bucket per account (the
client's own :class:`~connectors.ratelimit.TokenBucket`) shared by every thread of the process.

Invalidation is exact: a client is found again only under the same account id, carrier, endpoint, options
*and the same opened credentials* (a SHA-256 of them, never the secrets themselves, is the key). Rotating an
account's credentials, moving its endpoint, changing its options (the client's policy), or removing it (its
credentials shredded: opening them fails before the pool is asked) never reaches an old client. A replaced
client is closed once the last request using it has released it. Clients are thread-safe (httpx's connection
pool is), so one client serves concurrent requests.

The pool is a :data:`~connectors.carriers.shipments.CarrierFactory` itself: what it hands out is the shared
client behind a borrow whose :meth:`close` releases it instead of closing it. Never imports Flask.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from connectors.carriers.interfaces import (
    Carrier,
    LabelDocument,
    LabelFormat,
    OrderContext,
    Parcel,
    Purchase,
    Quote,
    Rate,
    ShipFrom,
    Tracking,
    VoidStatus,
)
from vault.models import CarrierAccount
from vault.records import LabelRecord

#: Builds the carrier client of a stored account from its opened credentials (the registry's factory).
Build = Callable[[CarrierAccount, dict[str, str]], Carrier]


@dataclass(eq=False)
class _Entry:
    key: tuple[int, str, str | None, str, str]
    client: Carrier
    borrowed: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Borrowed:
    """The pooled client for one request: every call goes to the shared client; :meth:`close` gives it back."""

    def __init__(self, pool: CarrierPool, entry: _Entry) -> None:
        self.carrier = entry.client.carrier
        #: The shared client's purchase pace, if it declares one (what a wave is sized by).
        self.purchase_rate: float | None = getattr(entry.client, "purchase_rate", None)
        #: How long after a purchase attempt the shared client's "not bought" may be believed, if it declares it.
        self.settle_delay: timedelta | None = getattr(entry.client, "settle_delay", None)
        self._pool = pool
        self._entry: _Entry | None = entry
        self._client = entry.client

    def quote(
        self,
        *,
        ship_from: ShipFrom,
        ship_to: LabelRecord,
        parcel: Parcel,
        reference: str = "",
        order: OrderContext | None = None,
    ) -> Quote:
        return self._client.quote(ship_from=ship_from, ship_to=ship_to, parcel=parcel, reference=reference, order=order)

    def purchase(self, rate: Rate, *, label_format: LabelFormat, reference: str) -> Purchase:
        return self._client.purchase(rate, label_format=label_format, reference=reference)

    def find_purchase(self, *, rate: Rate, reference: str) -> Purchase | None:
        return self._client.find_purchase(rate=rate, reference=reference)

    def label(self, purchase: Purchase) -> LabelDocument:
        return self._client.label(purchase)

    def void(self, purchase: Purchase) -> VoidStatus:
        return self._client.void(purchase)

    def tracking(self, purchase: Purchase) -> Tracking:
        return self._client.tracking(purchase)

    def close(self) -> None:
        """Give the client back (idempotent); the pool closes it if it was replaced meanwhile."""
        entry, self._entry = self._entry, None
        if entry is not None:
            self._pool.release(entry)


def _fingerprint(secrets: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(secrets, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class CarrierPool:
    """Per-process carrier clients, one per account (and credentials); thread-safe.

    ``build`` makes a client on a miss (the registry's :func:`~connectors.carriers.registry.carrier_factory`,
    which checks the account's endpoint then). :meth:`close` closes every client (at process exit, in tests).
    """

    def __init__(self, build: Build) -> None:
        self._build = build
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()
        self.built = 0

    def __call__(self, account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        options = json.dumps(account.options or {}, sort_keys=True, separators=(",", ":"))
        key = (account.id, account.carrier, account.api_endpoint, options, _fingerprint(secrets))
        with self._lock:
            entry = self._entries.get(account.id)
            if entry is not None and entry.key == key:
                with entry.lock:
                    entry.borrowed += 1
                return _Borrowed(self, entry)
        # Built outside the lock (a client's construction may take milliseconds); the first one stored wins.
        fresh = _Entry(key, self._build(account, secrets), borrowed=1)
        loser: _Entry | None = None
        with self._lock:
            current = self._entries.get(account.id)
            if current is not None and current.key == key:
                loser, fresh = fresh, current
                with fresh.lock:
                    fresh.borrowed += 1
            else:
                self._entries[account.id] = fresh
                self.built += 1
                if current is not None:
                    self._retire(current)
        if loser is not None:
            loser.client.close()
        return _Borrowed(self, fresh)

    def _retire(self, entry: _Entry) -> None:
        with entry.lock:
            entry.retired = True
            idle = entry.borrowed == 0
        if idle:
            entry.client.close()

    def release(self, entry: _Entry) -> None:
        """A borrower is done with ``entry``'s client; it is closed if it was replaced meanwhile."""
        with entry.lock:
            entry.borrowed -= 1
            close = entry.retired and entry.borrowed == 0
        if close:
            entry.client.close()

    def clients(self) -> int:
        """How many accounts have a live client."""
        with self._lock:
            return len(self._entries)

    def close(self) -> None:
        """Close every client; requests still holding one finish on a closed client (their calls fail)."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            entry.client.close()
