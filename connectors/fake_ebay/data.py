"""The fake eBay's orders: what they hold and how realistic ones are generated from a seed.

Invented but shaped like eBay's: order ids like ``01-03955-36441``, a ship-to (``shippingStep.shipTo``) that
differs from the buyer's registration address (which, with the buyer's e-mail, a connector must never
read), cross-border buyers (CN, JP, SA via eBay's US and GB sites), and the recipients that break careless
code: CJK and Arabic names, control characters, a lone surrogate, a 200-character name, no phone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

#: ``orderFulfillmentStatus`` values (the Order type's OrderFulfillmentStatus).
FULFILLMENT_STATUSES: tuple[str, ...] = ("NOT_STARTED", "IN_PROGRESS", "FULFILLED")
#: ``cancelStatus.cancelState`` values (CancelStateEnum).
CANCEL_STATES: tuple[str, ...] = ("NONE_REQUESTED", "IN_PROGRESS", "CANCELED")
#: eBay marketplaces the fake serves, with their currency.
MARKETPLACES: dict[str, str] = {"EBAY_US": "USD", "EBAY_GB": "GBP", "EBAY_DE": "EUR", "EBAY_AU": "AUD"}
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "AU", "CN", "JP", "SA")
_HOME: dict[str, str] = {"US": "EBAY_US", "GB": "EBAY_GB", "DE": "EBAY_DE", "AU": "EBAY_AU"}


@dataclass(frozen=True)
class ShipTo:
    """A recipient as ``shippingStep.shipTo`` holds it (``ExtendedContact`` with its ``Address``)."""

    full_name: str = field(repr=False)
    company: str | None = field(repr=False)
    address_line1: str = field(repr=False)
    address_line2: str | None = field(repr=False)
    city: str
    state_or_province: str | None
    postal_code: str | None
    country_code: str
    county: str | None = None
    phone: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class FakeItem:
    """One line item."""

    line_item_id: str
    legacy_item_id: str
    title: str
    sku: str
    quantity: int
    unit_price: Decimal
    currency: str


@dataclass
class FakeOrder:
    """One order as the fake eBay knows it: the truth a connector's result is compared with."""

    order_id: str
    seller_id: str
    marketplace_id: str
    created: datetime
    last_modified: datetime
    fulfillment_status: str
    cancel_state: str
    ship_by: datetime
    min_delivery: datetime
    max_delivery: datetime
    items: tuple[FakeItem, ...]
    ship_to: ShipTo = field(repr=False)
    buyer_username: str = field(repr=False)
    buyer_email: str = field(repr=False)
    buyer_address: ShipTo = field(repr=False)  # buyerRegistrationAddress: the buyer's, not the recipient's
    #: Shipping fulfillments created by createShippingFulfillment, as getShippingFulfillments serves them.
    fulfillments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def country_code(self) -> str:
        """The ship-to country."""
        return self.ship_to.country_code

    @property
    def total(self) -> Decimal:
        """The order total (items only)."""
        return sum((i.unit_price * i.quantity for i in self.items), Decimal(0))


@dataclass(frozen=True)
class _Place:
    city: str
    state: str | None
    postal: str | None
    phone: str  # with {n} for four digits


@dataclass(frozen=True)
class _Profile:
    first: tuple[str, ...]
    last: tuple[str, ...]
    family_first: bool
    sep: str
    streets: tuple[str, ...]  # "{n}" is the house number
    line2: tuple[str, ...]
    places: tuple[_Place, ...]
    companies: tuple[str, ...]


_PROFILES: dict[str, _Profile] = {
    "US": _Profile(
        ("James", "María José", "D'Andre", "Anne-Marie", "Wei"),
        ("Smith", "García", "O'Connor", "Nguyen", "Kowalski"),
        False,
        " ",
        ("{n} Pine St", "{n} Congress Ave", "{n} Broadway"),
        ("Apt 4B", "Suite 200", "Unit 12"),
        (_Place("Seattle", "WA", "98101", "+1 206-555-{n}"), _Place("Austin", "TX", "78701", "+1 512-555-{n}")),
        ("Contoso Ltd", "Acme Widgets LLC"),
    ),
    "GB": _Profile(
        ("Oliver", "Siobhan", "Zoë", "Priya"),
        ("Bennett", "O'Neill", "Fforde-Smythe", "Patel"),
        False,
        " ",
        ("{n} High Street", "{n} Station Road"),
        ("Flat 2A", "The Old Rectory"),
        (
            _Place("London", None, "SW1A 1AA", "+44 20 7946 {n}"),
            _Place("Leeds", "West Yorkshire", "LS1 4AP", "+44 113 496 {n}"),
        ),
        ("Thistle Supplies plc",),
    ),
    "DE": _Profile(
        ("Jürgen", "Özlem", "Björn", "Anna-Lena"),
        ("Müller", "Weiß", "Yılmaz", "Strauß"),
        False,
        " ",
        ("Friedrichstraße {n}", "Schloßstraße {n}"),
        ("Hinterhaus, 3. OG", "c/o Familie Becker"),
        (_Place("Berlin", None, "10117", "+49 30 2312{n}"), _Place("München", "Bayern", "80331", "+49 89 218{n}")),
        ("Müller & Söhne GmbH",),
    ),
    "AU": _Profile(
        ("Charlotte", "Jack", "Mia"),
        ("Wilson", "Taylor", "Nguyen"),
        False,
        " ",
        ("{n} George St", "{n} Collins St"),
        ("Level 3", "Unit 7"),
        (_Place("Sydney", "NSW", "2000", "+61 2 9374 {n}"), _Place("Melbourne", "VIC", "3000", "+61 3 9653 {n}")),
        ("Koala Imports Pty Ltd",),
    ),
    "CN": _Profile(
        ("伟", "娜", "静", "磊"),
        ("王", "李", "张", "刘"),
        True,
        "",
        ("世纪大道{n}号", "建国路{n}号"),
        ("环球金融中心 25楼", "A座 1203室"),
        (
            _Place("上海市", "上海市", "200120", "+86 21 5081 {n}"),
            _Place("北京市", "北京市", "100022", "+86 10 6561 {n}"),
        ),
        ("上海示例贸易有限公司",),
    ),
    "JP": _Profile(
        ("太郎", "花子", "さくら"),
        ("山田", "佐藤", "鈴木"),
        True,
        " ",
        ("千代田1-{n}", "渋谷2-21-{n}"),
        ("グランドビル 5階 501号室", "メゾン桜 101"),
        (
            _Place("千代田区", "東京都", "100-0001", "+81 3-3211-{n}"),
            _Place("大阪市北区", "大阪府", "530-0001", "+81 6-6345-{n}"),
        ),
        ("株式会社サンプル商事",),
    ),
    "SA": _Profile(
        ("محمد", "فاطمة", "عبد الله", "نورة"),
        ("العتيبي", "القحطاني", "الشمري"),
        False,
        " ",
        ("طريق الملك فهد {n}", "شارع العليا {n}"),
        ("الدور الثالث", "مكتب ٤"),
        (
            _Place("الرياض", "منطقة الرياض", "12211", "+966 11 234 {n}"),
            _Place("جدة", "منطقة مكة المكرمة", "21577", "+966 12 345 {n}"),
        ),
        ("شركة المثال التجارية",),
    ),
}

#: Recipients that break careless code, served in turn as every seventh order's ship-to name.
TRICKY_NAMES: tuple[str, ...] = (
    "Ana\u0000Lucía\u0007 Pérez",  # control characters
    "Jo\ud83dhn Smith",  # a lone surrogate (half an emoji)
    "Maximilian " + "Alexander-" * 18 + "Wolfeschlegelsteinhausen",  # ~200 characters
    "李\t小龙\r\n",  # breaks inside CJK
    "\u200fعائشة بنت أبي بكر",  # a right-to-left mark ahead of Arabic
)

_TITLES = ("Vintage Film Camera 35mm", "USB-C Charging Cable, 2 m", "Wool Scarf", "Ceramic Tea Set")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_ship_to(rng: random.Random, country: str, *, business: bool, phone: bool) -> ShipTo:
    """A plausible recipient in ``country``; businesses carry a company, some have no phone."""
    profile = _PROFILES[country]
    place = rng.choice(profile.places)
    first, last = rng.choice(profile.first), rng.choice(profile.last)
    name = f"{last}{profile.sep}{first}" if profile.family_first else f"{first}{profile.sep}{last}"
    return ShipTo(
        full_name=name,
        company=rng.choice(profile.companies) if business else None,
        address_line1=rng.choice(profile.streets).format(n=rng.randrange(1, 99)),
        address_line2=rng.choice(profile.line2) if rng.random() < 0.5 else None,
        city=place.city,
        state_or_province=place.state,
        postal_code=place.postal,
        country_code=country,
        phone=place.phone.format(n=f"{rng.randrange(10000):04d}") if phone else None,
    )


def _at_millis(t: datetime) -> datetime:
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


@dataclass
class OrderFactory:
    """Generates orders deterministically: the same seed and the same calls give the same orders."""

    seed: int
    rng: random.Random = field(init=False)
    taken: set[str] = field(default_factory=set)
    made: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - invented buyers, not secrets

    def _order_id(self) -> str:
        order_id = f"{self.rng.randrange(1, 28):02d}-{_digits(self.rng, 5)}-{_digits(self.rng, 5)}"
        while order_id in self.taken:
            order_id = f"{self.rng.randrange(1, 28):02d}-{_digits(self.rng, 5)}-{_digits(self.rng, 5)}"
        self.taken.add(order_id)
        return order_id

    def generate(
        self,
        n: int,
        *,
        seller_id: str,
        marketplace_ids: Sequence[str],
        countries: Sequence[str],
        statuses: Sequence[str] | None,
        start: datetime,
        now: datetime,
    ) -> list[FakeOrder]:
        """``n`` orders created between ``start`` and ten minutes before ``now``, countries round-robin.

        ``statuses`` are fulfilment statuses or ``CANCELED``; each occurs at least once when ``n`` allows.
        """
        rng = self.rng
        unknown = [c for c in countries if c not in _PROFILES]
        if unknown or not countries:
            raise ValueError(f"countries must be among {', '.join(COUNTRIES)}")
        allowed = list(statuses) if statuses else ["NOT_STARTED", "NOT_STARTED", "IN_PROGRESS", "FULFILLED", "CANCELED"]
        plan = allowed[:n] + rng.choices(allowed, k=max(0, n - len(allowed)))
        rng.shuffle(plan)
        end = max(now - timedelta(minutes=10), start + timedelta(seconds=1))
        span = (end - start).total_seconds()
        orders: list[FakeOrder] = []
        for i in range(n):
            self.made += 1
            country = countries[i % len(countries)]
            home = _HOME.get(country, "EBAY_US" if country != "SA" else "EBAY_GB")
            marketplace = home if home in marketplace_ids else marketplace_ids[0]
            status = plan[i]
            ship_to = make_ship_to(rng, country, business=i % 5 == 3, phone=i % 6 != 4)
            if self.made % 7 == 0:
                ship_to = dataclasses.replace(ship_to, full_name=TRICKY_NAMES[(self.made // 7) % len(TRICKY_NAMES)])
            created = _at_millis(start + timedelta(seconds=rng.uniform(0, span)))
            modified = min(_at_millis(created + timedelta(seconds=rng.uniform(0, 2 * 86400))), end)
            if i % 10 == 9 and orders and orders[-1].last_modified >= created:
                modified = orders[-1].last_modified  # ties: several orders modified in the same millisecond
            ship_by = created.replace(hour=23, minute=59, second=59, microsecond=0) + timedelta(days=2)
            currency = MARKETPLACES[marketplace]
            items = tuple(
                FakeItem(
                    line_item_id=_digits(rng, 11),
                    legacy_item_id=_digits(rng, 12),
                    title=rng.choice(_TITLES),
                    sku=f"SKU-{rng.randrange(1000, 9999)}",
                    quantity=rng.choice((1, 1, 2)),
                    unit_price=Decimal(rng.randrange(499, 19999)) / 100,
                    currency=currency,
                )
                for _ in range(rng.choice((1, 1, 2)))
            )
            user = hashlib.sha256(f"{self.seed}:{i}:{self.made}".encode()).hexdigest()[:10]
            orders.append(
                FakeOrder(
                    order_id=self._order_id(),
                    seller_id=seller_id,
                    marketplace_id=marketplace,
                    created=created,
                    last_modified=modified,
                    fulfillment_status="NOT_STARTED" if status == "CANCELED" else status,
                    cancel_state="CANCELED" if status == "CANCELED" else "NONE_REQUESTED",
                    ship_by=ship_by,
                    min_delivery=ship_by + timedelta(days=2),
                    max_delivery=ship_by + timedelta(days=6 if country in _HOME else 15),
                    items=items,
                    ship_to=ship_to,
                    buyer_username=f"buyer_{user}",
                    buyer_email=f"{user}@members.ebay.example",
                    buyer_address=make_ship_to(rng, country, business=False, phone=True),
                )
            )
        return orders


def utc(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime (naive values are taken to be UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def iso(t: datetime) -> str:
    """eBay's timestamp form: ``2015-08-04T19:09:02.768Z``."""
    t = utc(t)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
