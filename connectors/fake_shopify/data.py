"""The fake shop's orders: what they hold, their life (fulfilment, cancellation, closing) and a seeded factory.

Recipients are invented but shaped like the ones a cross-border seller meets on Shopify: family-name-first
CJK names and addresses, Arabic names and streets (right to left, with digits), diacritics and apostrophes,
companies, two address lines, provinces with and without a code, phones in each country's style, a missing
phone, a name far longer than a label line, and (on request) control characters or a lone surrogate.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

# Order.displayFulfillmentStatus values the fake gives its orders, and each one's fulfillment orders' status.
DISPLAY_STATUSES: tuple[str, ...] = ("UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "ON_HOLD", "SCHEDULED")
_STATUS_WEIGHTS: dict[str, int] = {
    "UNFULFILLED": 45,
    "PARTIALLY_FULFILLED": 10,
    "FULFILLED": 35,
    "ON_HOLD": 5,
    "SCHEDULED": 5,
}
# The fulfillment orders of an order in each display status (FulfillmentOrderStatus values).
FULFILLMENT_ORDER_STATUSES: dict[str, tuple[str, ...]] = {
    "UNFULFILLED": ("OPEN",),
    "PARTIALLY_FULFILLED": ("CLOSED", "OPEN"),
    "FULFILLED": ("CLOSED",),
    "ON_HOLD": ("ON_HOLD",),
    "SCHEDULED": ("SCHEDULED",),
    "IN_PROGRESS": ("IN_PROGRESS",),
}
COUNTRIES: tuple[str, ...] = ("US", "CA", "GB", "DE", "FR", "JP", "CN", "KR", "AE", "SA", "AU")
SHIPPABLE_FIRST_ORDER_NUMBER = 1001  # Shopify numbers a shop's orders #1001, #1002, ...
ORDER_GID = "gid://shopify/Order/"
ADDRESS_GID = "gid://shopify/MailingAddress/"
FULFILLMENT_ORDER_GID = "gid://shopify/FulfillmentOrder/"
FULFILLMENT_GID = "gid://shopify/Fulfillment/"
CUSTOMER_GID = "gid://shopify/Customer/"


@dataclass(frozen=True)
class ShippingAddress:
    """A recipient as Shopify's ``MailingAddress`` holds it (the label fields, in snake case).

    ``None`` is absent. ``name`` is what Shopify serves as ``MailingAddress.name``: first and last name
    joined by a space.
    """

    first_name: str | None = field(repr=False)
    last_name: str = field(repr=False)
    company: str | None = field(repr=False)
    address1: str = field(repr=False)
    address2: str | None = field(repr=False)
    city: str
    province: str | None
    province_code: str | None
    zip: str | None = field(repr=False)
    country_code: str
    country: str
    phone: str | None = field(repr=False)

    @property
    def name(self) -> str:
        """``MailingAddress.name``: "first last", or the last name alone."""
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass(frozen=True)
class FakeCustomer:
    """The buyer's customer record (the privacy webhooks name it; the label never needs it)."""

    legacy_id: int
    email: str = field(repr=False)
    phone: str | None = field(repr=False)

    @property
    def gid(self) -> str:
        """The customer's GraphQL id."""
        return f"{CUSTOMER_GID}{self.legacy_id}"


@dataclass
class FakeFulfillmentOrder:
    """One fulfillment order of an order (a location's share of the shipment)."""

    legacy_id: int
    status: str  # a FulfillmentOrderStatus value

    @property
    def gid(self) -> str:
        """The fulfillment order's GraphQL id."""
        return f"{FULFILLMENT_ORDER_GID}{self.legacy_id}"


@dataclass
class FakeFulfillment:
    """A fulfillment made through ``fulfillmentCreate``: the fulfillment orders it closed and its tracking."""

    legacy_id: int
    created: datetime
    fulfillment_order_ids: list[int]
    tracking_company: str | None
    tracking_numbers: list[str]
    notify_customer: bool

    @property
    def gid(self) -> str:
        """The fulfillment's GraphQL id."""
        return f"{FULFILLMENT_GID}{self.legacy_id}"


@dataclass
class FakeOrder:
    """One order as the fake shop knows it: the truth a connector's result is compared with."""

    legacy_id: int
    number: int  # #1001 ...
    shop: str  # the shop's myshopify domain
    created: datetime
    updated: datetime
    display_status: str  # Order.displayFulfillmentStatus
    fulfillment_orders: list[FakeFulfillmentOrder]
    shipping_address: ShippingAddress | None = field(repr=False)
    address_id: int
    customer: FakeCustomer | None = field(repr=False)
    email: str | None = field(repr=False)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    fulfillments: list[FakeFulfillment] = field(default_factory=list)

    @property
    def gid(self) -> str:
        """``Order.id``: ``gid://shopify/Order/<legacy id>``."""
        return f"{ORDER_GID}{self.legacy_id}"

    @property
    def name(self) -> str:
        """``Order.name``: the shop's order number, ``#1001``."""
        return f"#{self.number}"

    @property
    def closed(self) -> bool:
        """``Order.closed``: archived by the merchant (or automatically after fulfilment)."""
        return self.closed_at is not None

    @property
    def cancelled(self) -> bool:
        """The order was cancelled (``Order.cancelledAt`` is set)."""
        return self.cancelled_at is not None


# --- country profiles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    city: str
    province: str | None
    province_code: str | None
    zip: str | None
    area: str  # telephone area code


@dataclass(frozen=True)
class _Profile:
    country: str  # MailingAddress.country, as Shopify names it
    first: tuple[str, ...]
    last: tuple[str, ...]
    places: tuple[_Place, ...]
    streets: tuple[str, ...]  # "{n}" is the house number
    line2: tuple[str, ...]
    companies: tuple[str, ...]
    phone: str  # format with {area} {b4}


_PROFILES: dict[str, _Profile] = {
    "US": _Profile(
        "United States",
        ("James", "María José", "D'Andre", "Anne-Marie", "Wei", "Patricia"),
        ("Smith", "García", "O'Connor", "Nguyen", "Kowalski", "Washington"),
        (
            _Place("Seattle", "Washington", "WA", "98101", "206"),
            _Place("Austin", "Texas", "TX", "78701", "512"),
            _Place("Portland", "Oregon", "OR", "97205-2134", "503"),
            _Place("New York", "New York", "NY", "10001", "212"),
        ),
        ("{n} Pine St", "{n} Westlake Ave N", "{n} Congress Ave", "{n} Broadway"),
        ("Apt 4B", "Suite 200", "Unit 12"),
        ("Contoso Ltd", "Fabrikam, Inc.", "Acme Widgets LLC"),
        "+1 {area}-555-{b4}",
    ),
    "CA": _Profile(
        "Canada",
        ("Émilie", "Liam", "Siobhán", "Jean-François", "Aarav"),
        ("Tremblay", "Roy", "MacDonald", "Côté", "Singh"),
        (
            _Place("Montréal", "Quebec", "QC", "H2X 1Y4", "514"),
            _Place("Toronto", "Ontario", "ON", "M5V 3L9", "416"),
            _Place("Vancouver", "British Columbia", "BC", "V6B 1A1", "604"),
        ),
        ("{n} rue Sainte-Catherine O", "{n} King St W", "{n} Granville St"),
        ("App. 3", "Unit 1203"),
        ("Érable & Fils Inc.", "Northern Goods Ltd"),
        "+1 {area}-555-{b4}",
    ),
    "GB": _Profile(
        "United Kingdom",
        ("Oliver", "Zoë", "Siobhan", "Rhys", "Priya"),
        ("Bennett", "O'Neill", "Fforde-Smythe", "Patel", "MacLeod"),
        (
            _Place("London", None, None, "SW1A 1AA", "20 7946"),
            _Place("Manchester", None, None, "M1 1AE", "161 496"),
            _Place("Edinburgh", None, None, "EH1 1YZ", "131 496"),
        ),
        ("{n} High Street", "{n} Station Road", "{n} Oak Avenue"),
        ("Flat 2A", "The Old Rectory"),
        ("Bennett & Hughes Ltd", "Thistle Supplies plc"),
        "+44 {area} {b4}",
    ),
    "DE": _Profile(
        "Germany",
        ("Jürgen", "Anna-Lena", "Özlem", "Björn", "Hannah"),
        ("Müller", "Weiß", "Schröder", "Yılmaz", "Strauß"),
        (
            _Place("Berlin", None, None, "10117", "30 23125"),
            _Place("München", None, None, "80331", "89 2180"),
            _Place("Köln", None, None, "50667", "221 4708"),
        ),
        ("Friedrichstraße {n}", "Schloßstraße {n}", "Königsallee {n}"),
        ("Hinterhaus, 3. OG", "c/o Familie Becker"),
        ("Müller & Söhne GmbH", "Weiß Logistik GmbH & Co. KG"),
        "+49 {area}-{b4}",
    ),
    "FR": _Profile(
        "France",
        ("Élodie", "François", "Chloé", "Jean-Baptiste", "Noémie"),
        ("Lefèvre", "Dubois", "D'Arcy", "Rousseau", "Bénard"),
        (
            _Place("Paris", None, None, "75008", "1 99 00"),
            _Place("Lyon", None, None, "69002", "4 65 71"),
            _Place("Bordeaux", None, None, "33000", "5 36 49"),
        ),
        ("{n} rue du Faubourg Saint-Honoré", "{n} quai des Chartrons"),
        ("Bâtiment B, 2e étage", "Escalier C"),
        ("Dubois et Fils SARL", "Maison Lefèvre & Cie"),
        "+33 {area} {b4}",
    ),
    "JP": _Profile(
        "Japan",
        ("太郎", "花子", "美咲", "さくら", "翔"),
        ("山田", "佐藤", "鈴木", "高橋", "渡辺"),
        (
            _Place("千代田区", "Tokyo", "JP-13", "100-0001", "3-3211"),
            _Place("大阪市北区", "Ōsaka", "JP-27", "530-0001", "6-6345"),
            _Place("札幌市中央区", "Hokkaidō", "JP-01", "060-0001", "11-211"),
        ),
        ("千代田1-{n}", "梅田3-1-{n}", "北1条西2丁目{n}"),
        ("グランドビル 5階 501号室", "メゾン桜 101"),
        ("株式会社サンプル商事", "合同会社みなと物産"),
        "+81 {area}-{b4}",
    ),
    "CN": _Profile(
        "China",
        ("伟", "娜", "敏", "静", "磊"),
        ("王", "李", "张", "刘", "欧阳"),
        (
            _Place("上海市", "Shanghai", "SH", "200120", "21 5081"),
            _Place("北京市", "Beijing", "BJ", "100022", "10 6561"),
            _Place("深圳市", "Guangdong", "GD", "518057", "755 8601"),
        ),
        ("世纪大道{n}号", "建国路{n}号", "深南大道99{n}号"),
        ("环球金融中心 25楼", "A座 1203室"),
        ("上海示例贸易有限公司", "深圳市测试科技有限公司"),
        "+86 {area} {b4}",
    ),
    "KR": _Profile(
        "South Korea",
        ("민준", "서연", "지호", "하은"),
        ("김", "이", "박", "최"),
        (
            _Place("서울특별시 강남구", "Seoul", "KR-11", "06236", "2-555"),
            _Place("부산광역시 해운대구", "Busan", "KR-26", "48094", "51-555"),
        ),
        ("테헤란로 {n}", "해운대해변로 {n}"),
        ("101동 1203호", "3층"),
        ("주식회사 샘플", "테스트상사"),
        "+82 {area}-{b4}",
    ),
    "AE": _Profile(
        "United Arab Emirates",
        ("محمد", "فاطمة", "عبد الله", "نور"),
        ("الهاشمي", "المنصوري", "الكعبي", "بن راشد"),
        (
            _Place("دبي", "Dubai", "DU", None, "4 555"),
            _Place("أبو ظبي", "Abu Dhabi", "AZ", None, "2 555"),
        ),
        ("شارع الشيخ زايد {n}", "فيلا {n}، شارع الوصل"),
        ("الطابق 12، برج الأمل", "شقة 7"),
        ("شركة المثال للتجارة ذ.م.م",),
        "+971 {area} {b4}",
    ),
    "SA": _Profile(
        "Saudi Arabia",
        ("خالد", "سارة", "عبد الرحمن", "ريم"),
        ("العتيبي", "القحطاني", "الشمري", "آل سعود"),
        (
            _Place("الرياض", None, None, "12271", "11 555"),
            _Place("جدة", None, None, "21577", "12 555"),
        ),
        ("طريق الملك فهد {n}", "حي النزهة، شارع {n}"),
        ("مبنى 4، مكتب 210",),
        ("مؤسسة النخبة التجارية",),
        "+966 {area} {b4}",
    ),
    "AU": _Profile(
        "Australia",
        ("Charlotte", "Jack", "Mia", "Nguyễn Văn"),
        ("Taylor", "O'Brien", "Wilson", "Anh"),
        (
            _Place("Sydney", "New South Wales", "NSW", "2000", "2 5550"),
            _Place("Melbourne", "Victoria", "VIC", "3000", "3 5550"),
        ),
        ("{n} George St", "{n} Collins St"),
        ("Level 12", "Unit 5"),
        ("Wattle Trading Pty Ltd",),
        "+61 {area} {b4}",
    ),
}
# A name no label line holds whole (Shopify accepts up to 255 characters per name field).
LONG_LAST_NAME = (
    "Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh-Cholmondeley-Marjoribanks-"
    "Mainwaring-Throckmorton-Leveson-Gower"
)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_address(rng: random.Random, country: str, *, company: bool, phone: bool, long_name: bool) -> ShippingAddress:
    """A plausible Shopify shipping address in ``country`` (a ``ValueError`` for a country without a profile)."""
    try:
        profile = _PROFILES[country]
    except KeyError:
        raise ValueError(f"countries must be among {', '.join(COUNTRIES)}") from None
    place = rng.choice(profile.places)
    last = LONG_LAST_NAME if long_name else rng.choice(profile.last)
    return ShippingAddress(
        first_name=rng.choice(profile.first) if rng.random() < 0.95 else None,
        last_name=last,
        company=rng.choice(profile.companies) if company else None,
        address1=rng.choice(profile.streets).format(n=rng.randrange(1, 99)),
        address2=rng.choice(profile.line2) if rng.random() < 0.5 else None,
        city=place.city,
        province=place.province,
        province_code=place.province_code,
        zip=place.zip,
        country_code=country,
        country=profile.country,
        phone=profile.phone.format(area=place.area, b4=_digits(rng, 4)) if phone else None,
    )


def _status_plan(rng: random.Random, n: int, statuses: Sequence[str] | None) -> list[str]:
    """``n`` display statuses: each allowed one at least once (when ``n`` allows), the rest weighted, shuffled."""
    allowed = list(statuses) if statuses else list(DISPLAY_STATUSES)
    plan = allowed[:n]
    plan += rng.choices(allowed, weights=[_STATUS_WEIGHTS.get(s, 5) for s in allowed], k=n - len(plan))
    rng.shuffle(plan)
    return plan


@dataclass
class OrderFactory:
    """Generates orders deterministically: the same seed and the same calls give the same orders.

    Ids grow like Shopify's (large, increasing, not contiguous); order numbers count up per shop.
    """

    seed: int
    rng: random.Random = field(init=False)
    next_id: int = field(init=False)
    numbers: dict[str, int] = field(default_factory=dict)
    customers: list[FakeCustomer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - invented buyers, not secrets
        self.next_id = 5_500_000_000_000 + self.rng.randrange(1_000_000) * 1000

    def new_id(self) -> int:
        """A fresh id, larger than every one before (Shopify ids grow, with gaps)."""
        self.next_id += self.rng.randrange(1, 400)
        return self.next_id

    def customer(self, country: str) -> FakeCustomer:
        """A new customer record (a third of the orders reuse an earlier buyer: the redact webhook's many orders)."""
        if self.customers and self.rng.random() < 0.33:
            return self.rng.choice(self.customers)
        legacy_id = self.new_id()
        phone = f"+1 206-555-{_digits(self.rng, 4)}" if self.rng.random() < 0.6 else None
        made = FakeCustomer(
            legacy_id=legacy_id, email=f"buyer{legacy_id % 100000:05d}@example.{country.lower()}", phone=phone
        )
        self.customers.append(made)
        return made

    def generate(
        self,
        n: int,
        *,
        shop: str,
        countries: Sequence[str],
        statuses: Sequence[str] | None,
        start: datetime,
        now: datetime,
    ) -> list[FakeOrder]:
        """``n`` orders created between ``start`` and five minutes before ``now``, countries round-robin.

        Every 7th order has no phone, every 13th a name longer than any label line, every 5th a company;
        every 10th shares its ``updatedAt`` with the one before (ties a cursor must break by id).
        """
        if not countries or any(c not in _PROFILES for c in countries):
            raise ValueError(f"countries must be among {', '.join(COUNTRIES)}")
        bad = [s for s in statuses or () if s not in FULFILLMENT_ORDER_STATUSES]
        if bad:
            raise ValueError(f"unknown display status {bad[0]!r}; use one of {', '.join(FULFILLMENT_ORDER_STATUSES)}")
        rng = self.rng
        plan = _status_plan(rng, n, statuses)
        end = now - timedelta(minutes=5)
        if end <= start:
            end = start + timedelta(seconds=1)
        span = (end - start).total_seconds()
        orders: list[FakeOrder] = []
        for i in range(n):
            country = countries[i % len(countries)]
            status = plan[i]
            address = make_address(rng, country, company=i % 5 == 3, phone=i % 7 != 6, long_name=i % 13 == 12)
            created = (start + timedelta(seconds=rng.uniform(0, span))).replace(microsecond=0)
            updated = min(created + timedelta(seconds=rng.randrange(0, 2 * 86400)), end).replace(microsecond=0)
            updated = max(updated, created)
            if i % 10 == 9 and orders and orders[-1].updated >= created:
                updated = orders[-1].updated
            number = self.numbers.get(shop, SHIPPABLE_FIRST_ORDER_NUMBER)
            self.numbers[shop] = number + 1
            customer = self.customer(country)
            orders.append(
                FakeOrder(
                    legacy_id=self.new_id(),
                    number=number,
                    shop=shop,
                    created=created,
                    updated=updated,
                    display_status=status,
                    fulfillment_orders=[
                        FakeFulfillmentOrder(legacy_id=self.new_id(), status=s)
                        for s in FULFILLMENT_ORDER_STATUSES[status]
                    ],
                    shipping_address=address,
                    address_id=self.new_id(),
                    customer=customer,
                    email=customer.email,
                    closed_at=updated if status == "FULFILLED" and rng.random() < 0.3 else None,
                )
            )
        return orders


def with_changes(address: ShippingAddress, **changes: str | None) -> ShippingAddress:
    """``address`` with some fields replaced (unknown field names are a ``TypeError``, as for any dataclass)."""
    return dataclasses.replace(address, **changes)  # type: ignore[arg-type]


def utc(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime (naive values are taken to be UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def iso(t: datetime) -> str:
    """A ``DateTime`` as Shopify writes it: UTC, seconds, ``Z``."""
    return utc(t).replace(microsecond=0).isoformat().replace("+00:00", "Z")
