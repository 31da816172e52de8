"""The fake TikTok Shop's world: shops, orders and their recipients, generated from a seed.

Recipients are invented people at real address shapes of TikTok Shop's markets, with the cases a connector
has to survive: CJK, Thai and Arabic names, a very long name, a missing phone, a control character and a
lone surrogate (the last two only when a test asks, :meth:`FakeTikTok.add_tricky_order`). Every string of a
recipient is PII as far as the code is concerned.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

#: TikTok's order statuses in the order an order lives through them (``CANCELLED`` aside).
STATUSES = (
    "UNPAID",
    "ON_HOLD",
    "AWAITING_SHIPMENT",
    "PARTIALLY_SHIPPING",
    "AWAITING_COLLECTION",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
    "CANCELLED",
)
#: The status an order moves to next (the fake's mutations follow it).
NEXT_STATUS = {
    "UNPAID": "ON_HOLD",
    "ON_HOLD": "AWAITING_SHIPMENT",
    "AWAITING_SHIPMENT": "AWAITING_COLLECTION",
    "PARTIALLY_SHIPPING": "AWAITING_COLLECTION",
    "AWAITING_COLLECTION": "IN_TRANSIT",
    "IN_TRANSIT": "DELIVERED",
    "DELIVERED": "COMPLETED",
}
#: Statuses in which TikTok still shows the seller the recipient (before payment it shows nothing).
ADDRESS_STATUSES = frozenset(STATUSES) - {"UNPAID"}
#: Who ships an order: ``SELLER`` (the seller prints its own label) or ``TIKTOK`` (TikTok's shipping service:
#: the seller gets TikTok's label and a desensitised recipient). Fulfilled by TikTok (FBT) ships from
#: TikTok's warehouse: nothing for the seller to print at all.
SHIPPING_TYPES = ("SELLER", "TIKTOK")
FULFILLMENT_TYPES = ("FULFILLMENT_BY_SELLER", "FULFILLMENT_BY_TIKTOK")


@dataclass(frozen=True)
class Shop:
    """An authorised shop, as ``/authorization/202309/shops`` lists it."""

    id: str
    name: str
    region: str
    cipher: str
    code: str
    seller_type: str = "CROSS_BORDER"


@dataclass(frozen=True)
class District:
    """One level of a recipient's ``district_info`` (L0 the country, L1 a state, L2 a county, L3 a city)."""

    level: str
    level_name: str
    name: str
    iso_code: str | None = None


@dataclass(frozen=True)
class Recipient:
    """An order's ``recipient_address`` as TikTok holds it (the fake desensitises it for TikTok shipping)."""

    name: str = field(repr=False)
    address_line1: str = field(repr=False)
    region_code: str
    districts: tuple[District, ...] = field(repr=False)
    postal_code: str | None = field(default=None, repr=False)
    address_line2: str | None = field(default=None, repr=False)
    address_line3: str | None = field(default=None, repr=False)
    address_line4: str | None = field(default=None, repr=False)
    phone_number: str | None = field(default=None, repr=False)
    post_town: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)


@dataclass
class FakeOrder:
    """One order of one shop; times are whole seconds (TikTok's Unix timestamps)."""

    id: str
    shop_id: str
    status: str
    create_time: datetime
    update_time: datetime
    recipient: Recipient = field(repr=False)
    shipping_type: str = "SELLER"
    fulfillment_type: str = "FULFILLMENT_BY_SELLER"
    package_id: str = ""
    tracking_number: str = ""
    buyer_email: str = field(default="", repr=False)
    buyer_message: str = field(default="", repr=False)
    delivery_time: datetime | None = None
    rts_sla_time: datetime | None = None

    @property
    def platform_shipped(self) -> bool:
        """TikTok ships it: the seller never gets the recipient's address in clear."""
        return self.shipping_type == "TIKTOK" or self.fulfillment_type == "FULFILLMENT_BY_TIKTOK"

    @property
    def has_address(self) -> bool:
        """Whether TikTok serves the seller a recipient address for this order now."""
        return self.status in ADDRESS_STATUSES and self.status != "CANCELLED"


@dataclass(frozen=True)
class _Place:
    region: str
    districts: tuple[District, ...]
    postal_code: str
    streets: tuple[str, ...]
    units: tuple[str, ...]
    names: tuple[tuple[str, str], ...]  # (first, last); the full name is built per market
    phone_prefix: str
    family_first: bool = False
    post_town: str | None = None


def _d(level: str, level_name: str, name: str, iso: str | None = None) -> District:
    return District(level, level_name, name, iso)


_PLACES: tuple[_Place, ...] = (
    _Place(
        "US",
        (
            _d("L0", "country", "United States", "US"),
            _d("L1", "State", "California", "US-CA"),
            _d("L2", "County", "Los Angeles", None),
            _d("L3", "City", "Los Angeles", None),
        ),
        "90012",
        ("200 N Spring St", "1 World Way", "633 W 5th St", "350 S Grand Ave"),
        ("Apt 4B", "Suite 1200", "Unit 7", ""),
        (("Maria", "Gonzalez"), ("James", "O'Connor"), ("Nguyễn", "Thị Lan"), ("محمد", "العتيبي")),
        "(+1)213",
    ),
    _Place(
        "GB",
        (
            _d("L0", "country", "United Kingdom", "GB"),
            _d("L1", "Country", "England", "GB-ENG"),
            _d("L2", "County", "Greater London", None),
            _d("L3", "Post Town", "London", None),
        ),
        "SW1A 1AA",
        ("10 Downing Street", "221B Baker Street", "1 Canada Square"),
        ("Flat 3", "", "Floor 12"),
        (("Olivia", "Smith"), ("Aarav", "Patel"), ("Siobhán", "Ní Bhriain")),
        "(+44)20",
        post_town="LONDON",
    ),
    _Place(
        "JP",
        (
            _d("L0", "country", "Japan", "JP"),
            _d("L1", "Prefecture", "東京都", "JP-13"),
            _d("L2", "City", "千代田区", None),
        ),
        "100-0001",
        ("千代田1-1", "丸の内2-7-2", "大手町1-9-2"),
        ("皇居外苑ビル3階", "", "JPタワー12F"),
        (("花子", "佐藤"), ("太郎", "山田"), ("さくら", "鈴木")),
        "(+81)3",
        family_first=True,
    ),
    _Place(
        "TH",
        (
            _d("L0", "country", "Thailand", "TH"),
            _d("L1", "Province", "กรุงเทพมหานคร", "TH-10"),
            _d("L2", "District", "เขตปทุมวัน", None),
            _d("L3", "Subdistrict", "แขวงลุมพินี", None),
        ),
        "10330",
        ("99 ถนนพระราม 1", "1 ถนนราชดำริ"),
        ("ชั้น 5", ""),
        (("สมชาย", "ใจดี"), ("กัญญา", "ศรีสุข")),
        "(+66)2",
    ),
    _Place(
        "MY",
        (
            _d("L0", "country", "Malaysia", "MY"),
            _d("L1", "State", "Wilayah Persekutuan Kuala Lumpur", "MY-14"),
            _d("L2", "City", "Kuala Lumpur", None),
        ),
        "50088",
        ("Jalan Ampang 12", "Lot 5, Jalan Sultan Ismail"),
        ("Level 20", ""),
        (("Nur Aisyah", "binti Ahmad"), ("陈", "伟"), ("Priya", "Ramasamy")),
        "(+60)3",
    ),
)
_LONG_FIRST = "Maximiliana Alexandra Konstantina Josephina"
_LONG_LAST = "von Hohenzollern-Sigmaringen und Wittelsbach-Sachsen-Coburg"


def _second(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(microsecond=0)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_recipient(rng: random.Random, place: _Place, *, long_name: bool = False, phone: bool = True) -> Recipient:
    """A recipient at ``place`` (deterministic from ``rng``)."""
    first, last = rng.choice(place.names)
    if long_name:
        first, last = _LONG_FIRST, _LONG_LAST
    name = f"{last} {first}" if place.family_first else f"{first} {last}"
    unit = rng.choice(place.units)
    return Recipient(
        name=name,
        first_name=first,
        last_name=last,
        address_line1=f"{rng.choice(place.streets)} {_digits(rng, 2)}"
        if place.region == "JP"
        else rng.choice(place.streets),
        address_line2=unit or None,
        region_code=place.region,
        districts=place.districts,
        postal_code=place.postal_code,
        phone_number=f"{place.phone_prefix}{_digits(rng, 7)}" if phone else None,
        post_town=place.post_town,
    )


def _order_id(rng: random.Random) -> str:
    # TikTok order ids are 18-digit numbers starting with 57 or 58 (as strings).
    return "57" + _digits(rng, 16)


@dataclass
class OrderFactory:
    """Deterministic orders: the same seed and the same sequence of calls give the same orders."""

    seed: int
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - test data, not secrets

    def generate(
        self,
        n: int,
        *,
        shop: Shop,
        start: datetime,
        now: datetime,
        statuses: Sequence[str] | None = None,
        platform_shipped_every: int = 0,
    ) -> list[FakeOrder]:
        """``n`` orders created between ``start`` and ``now``, updated between their creation and ``now``.

        Markets come round-robin from every market but the shop's own region first; every seventh order
        has a very long name, every eleventh no phone. ``platform_shipped_every=k`` makes every k-th order
        a TikTok-shipped one (``shipping_type=TIKTOK``). Each status in ``statuses`` (default: the
        label-relevant spread below) occurs in turn.
        """
        rng = self.rng
        plan = list(statuses) if statuses else ["AWAITING_SHIPMENT"] * 5 + ["AWAITING_COLLECTION", "IN_TRANSIT"]
        plan += ["DELIVERED", "CANCELLED", "UNPAID"] if not statuses else []
        span = max((now - start).total_seconds(), 1.0)
        orders: list[FakeOrder] = []
        for i in range(n):
            place = _PLACES[i % len(_PLACES)]
            created = _second(start + timedelta(seconds=rng.uniform(0, span * 0.9)))
            updated = _second(created + timedelta(seconds=rng.uniform(0, (now - created).total_seconds())))
            status = plan[i % len(plan)]
            tiktok = platform_shipped_every > 0 and i % platform_shipped_every == platform_shipped_every - 1
            order = FakeOrder(
                id=_order_id(rng),
                shop_id=shop.id,
                status=status,
                create_time=created,
                update_time=updated,
                recipient=make_recipient(rng, place, long_name=i % 7 == 6, phone=i % 11 != 10),
                shipping_type="TIKTOK" if tiktok else "SELLER",
                package_id="11" + _digits(rng, 16),
                tracking_number=("TT" if tiktok else "1Z") + _digits(rng, 14),
                buyer_email=f"v{_digits(rng, 10)}@scs.tiktokw.us",
                buyer_message=rng.choice(("", "Leave at the door, please", "请放门口")),
                delivery_time=updated if status in ("DELIVERED", "COMPLETED") else None,
                rts_sla_time=created + timedelta(days=3),
            )
            orders.append(order)
        return orders


def places() -> tuple[str, ...]:
    """The markets generated recipients live in."""
    return tuple(p.region for p in _PLACES)


def place(region: str) -> _Place:
    """The address shape of one market."""
    for p in _PLACES:
        if p.region == region:
            return p
    raise KeyError(region)
