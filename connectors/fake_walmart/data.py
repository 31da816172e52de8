"""Generated Walmart purchase orders: US ship-to addresses (tricky recipients among them) and order lines.

A Walmart purchase order has no order-level status: each order line carries one or more statuses, each for
a quantity (two of three units Shipped, one Created). The fake keeps that shape, and an order's "last
modified" time is its latest line status date, which is all ``getAllOrders`` answers with.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: Order-line statuses, as ``getAllOrders`` declares them (``Refund`` exists but is not generated).
LINE_STATUSES = ("Created", "Acknowledged", "Shipped", "Delivered", "Cancelled")
#: How a line moves on when the fake changes an order.
NEXT_STATUS = {"Created": "Acknowledged", "Acknowledged": "Shipped", "Shipped": "Delivered"}
METHOD_CODES = ("Standard", "Express", "OneDay", "Value")
#: How long before "now" a generated order last changed, at the latest.
HISTORY_GAP = timedelta(minutes=5)


def utc(t: datetime) -> datetime:
    """``t`` as aware UTC (naive times are taken to be UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def millis(t: datetime) -> int:
    """Walmart's timestamps: milliseconds since the epoch."""
    return int(utc(t).timestamp() * 1000)


@dataclass
class ShipTo:
    """The recipient as Walmart serves ``shippingInfo``: ``postalAddress`` and ``phone`` (may be empty)."""

    name: str = field(repr=False)
    address1: str = field(repr=False)
    city: str
    state: str
    postal_code: str = field(repr=False)
    address2: str | None = field(default=None, repr=False)
    country: str = "USA"
    address_type: str | None = "RESIDENTIAL"
    phone: str = field(default="", repr=False)


@dataclass
class LineStatus:
    """One status of an order line, for a quantity of its units."""

    status: str
    quantity: int
    tracking_number: str | None = None
    #: The ``trackingInfo`` a ``shippingUpdates`` call gave (carrierName, methodCode, shipDateTime), if any.
    tracking_info: dict[str, Any] | None = None


@dataclass
class FakeLine:
    """One order line: an item, its quantity and its statuses (quantities add up to the line's)."""

    line_number: str
    sku: str
    product_name: str
    quantity: int
    price: float
    statuses: list[LineStatus]
    status_date: datetime


@dataclass
class FakeOrder:
    """A Walmart purchase order as the fake stores it."""

    purchase_order_id: str
    customer_order_id: str
    seller_id: str
    customer_email: str = field(repr=False)  # a relay address, as Walmart serves it
    order_date: datetime
    ship_to: ShipTo = field(repr=False)
    method_code: str
    estimated_ship: datetime
    estimated_delivery: datetime
    lines: list[FakeLine]

    @property
    def last_modified(self) -> datetime:
        """When the order last changed: its latest line status date (or its order date)."""
        return max([self.order_date, *(line.status_date for line in self.lines)])

    @property
    def line_statuses(self) -> set[str]:
        """Every status any of its lines has."""
        return {s.status for line in self.lines for s in line.statuses}


_FIRST = ("Kathryn", "James", "Maria", "Wei", "Aisha", "Jorge", "Linh", "Priya", "Olivia", "Noah")
_LAST = ("Cole", "Nguyen", "García", "Okafor", "Smith", "Kowalski", "Haddad", "Johnson", "Patel", "Kim")
_PLACES = (
    ("Warners", "NY", "13164"),
    ("Bentonville", "AR", "72712"),
    ("Austin", "TX", "78701"),
    ("Seattle", "WA", "98101"),
    ("San Juan", "PR", "00901"),
    ("Honolulu", "HI", "96813"),
    ("Chicago", "IL", "60601"),
    ("Miami", "FL", "33101"),
)
_STREETS = ("Main St", "Oak Ave", "Warners Rd", "Elm Street", "Walton Blvd", "Sunset Dr")
_PRODUCTS = ("Laundry Bag", "Garden Hose 50 ft", "LED Desk Lamp", "Stainless Water Bottle", "Yoga Mat")

#: Recipients that have broken connectors: CJK, Arabic, control characters, a lone surrogate, a very long
#: name, no phone, no second line. Every ``TRICKY_EVERY``-th generated order gets the next one.
TRICKY: tuple[dict[str, str], ...] = (
    {"name": "王小明", "address1": "北京路 88 号 3 单元"},
    {"name": "محمد العلي", "address1": "1200 شارع الملك فهد"},
    {"name": "Ann\tMarie\x07 O'Neil", "address1": "12 Bell\nLane"},
    {"name": "Broken \ud83d Emoji", "address1": "5 Surrogate Ct"},
    {"name": "Maximiliana " + "Wolfeschlegelsteinhausen" * 6, "address1": "1 Very Long Name Way"},
    {"name": "Sam Nophone", "address1": "9 Quiet Rd", "phone": ""},
)
TRICKY_EVERY = 7


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


@dataclass
class OrderFactory:
    """Deterministic purchase orders from a seed (the same seed and calls give the same orders)."""

    seed: int
    _rng: random.Random = field(init=False, repr=False)
    _count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - test data, not secrets

    def ship_to(self) -> ShipTo:
        """A US recipient; every ``TRICKY_EVERY``-th one from ``TRICKY``."""
        rng = self._rng
        city, state, postal = rng.choice(_PLACES)
        ship = ShipTo(
            name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)} {_digits(rng, 4)}",
            address1=f"{rng.randint(1, 9999)} {rng.choice(_STREETS)} {_digits(rng, 3)}",
            address2=rng.choice((None, f"Apt {rng.randint(1, 900)}", "Garage")),
            city=city,
            state=state,
            postal_code=postal if rng.random() < 0.7 else f"{postal}-{_digits(rng, 4)}",
            address_type=rng.choice(("RESIDENTIAL", "RESIDENTIAL", "COMMERCIAL")),
            phone=f"{rng.randint(201, 989)}{_digits(rng, 7)}",
        )
        self._count += 1
        if self._count % TRICKY_EVERY == 0:
            tricky = TRICKY[(self._count // TRICKY_EVERY - 1) % len(TRICKY)]
            for key, value in tricky.items():
                setattr(ship, key, value)
        return ship

    def lines(self, status: str, at: datetime) -> list[FakeLine]:
        """One to three lines; all in ``status``, except that a "Shipped" order may have a line to ship yet."""
        rng = self._rng
        count = rng.choice((1, 1, 1, 2, 3))
        lines = []
        for number in range(1, count + 1):
            quantity = rng.choice((1, 1, 2, 3))
            tracking = _digits(rng, 20) if status in ("Shipped", "Delivered") else None
            lines.append(
                FakeLine(
                    line_number=str(number),
                    sku=f"SKU-{_digits(rng, 6)}",
                    product_name=rng.choice(_PRODUCTS),
                    quantity=quantity,
                    price=round(rng.uniform(4, 120), 2),
                    statuses=[LineStatus(status, quantity, tracking)],
                    status_date=at,
                )
            )
        return lines

    def generate(
        self,
        n: int,
        *,
        seller_id: str,
        start: datetime,
        now: datetime,
        statuses: Sequence[str] | None = None,
    ) -> list[FakeOrder]:
        """``n`` orders placed from ``start`` to ``HISTORY_GAP`` before ``now``; each of ``statuses`` at least once
        if ``n`` allows."""
        rng = self._rng
        wanted = list(statuses or LINE_STATUSES)
        plan = [wanted[i % len(wanted)] for i in range(n)]
        rng.shuffle(plan)
        orders = []
        # Generated orders are history: placed and last changed at least HISTORY_GAP before now, so a
        # connector that (rightly) leaves the last seconds for its next window sees them all at once.
        latest = now - HISTORY_GAP
        span = max(1.0, (latest - start).total_seconds())
        for status in plan:
            placed = (start + timedelta(seconds=rng.uniform(0, span))).replace(microsecond=0)
            changed = min(latest, placed + timedelta(hours=rng.uniform(0, 48))).replace(microsecond=0)
            method = rng.choice(METHOD_CODES)
            orders.append(
                FakeOrder(
                    purchase_order_id=_digits(rng, 13),
                    customer_order_id=_digits(rng, 13),
                    seller_id=seller_id,
                    customer_email=f"{rng.getrandbits(128):032X}@relay.walmart.com",
                    order_date=placed,
                    ship_to=self.ship_to(),
                    method_code=method,
                    estimated_ship=placed + timedelta(days=1),
                    estimated_delivery=placed + timedelta(days=2 if method in ("Express", "OneDay") else 5),
                    lines=self.lines(status, changed),
                )
            )
        return orders
