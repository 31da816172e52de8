"""The fake marketplace's orders: what they hold and how realistic ones are generated from a seed.

The generated buyers are invented but shaped like real ones: local script for JP and CN, diacritics and
apostrophes in European names, company deliveries on three address lines, phones with extensions in each
country's own style, every fulfilment status, a mix of merchant- (MFN) and Amazon-fulfilled (AFN) orders.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

# v2026-01-01 FulfillmentStatus values, in lifecycle order, and their Orders v0 OrderStatus names.
FULFILLMENT_STATUSES: tuple[str, ...] = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
V0_STATUS: dict[str, str] = {
    "PENDING_AVAILABILITY": "PendingAvailability",
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
FROM_V0_STATUS: dict[str, str] = {v: k for k, v in V0_STATUS.items()}
# Amazon: "The shipping address exists only for unshipped, partially shipped and shipped orders."
ADDRESS_STATUSES = frozenset({"UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"})

_STATUS_WEIGHTS: dict[str, int] = {
    "PENDING_AVAILABILITY": 3,
    "PENDING": 12,
    "UNSHIPPED": 35,
    "PARTIALLY_SHIPPED": 8,
    "SHIPPED": 30,
    "CANCELLED": 8,
    "UNFULFILLABLE": 4,
}


@dataclass(frozen=True)
class Marketplace:
    """An Amazon marketplace the fake serves."""

    marketplace_id: str
    country_code: str
    name: str  # v2026 salesChannel.marketplaceName
    sales_channel: str  # v0 SalesChannel
    currency: str
    order_prefixes: tuple[str, ...]


MARKETPLACES: dict[str, Marketplace] = {
    m.marketplace_id: m
    for m in (
        Marketplace("ATVPDKIKX0DER", "US", "Amazon.com", "Amazon.com", "USD", ("111", "112", "113", "114")),
        Marketplace("A1F83G8C2ARO7P", "GB", "Amazon.co.uk", "Amazon.co.uk", "GBP", ("202", "203", "204", "205")),
        Marketplace("A1PA6795UKMFR9", "DE", "Amazon.de", "Amazon.de", "EUR", ("302", "303", "304", "305")),
        Marketplace("A13V1IB3VIYZZH", "FR", "Amazon.fr", "Amazon.fr", "EUR", ("402", "403", "404", "405")),
        Marketplace("A1VC38T7YXB528", "JP", "Amazon.co.jp", "Amazon.co.jp", "JPY", ("249", "250", "503")),
    )
}
# Where a buyer in each country usually orders; CN buyers order cross-border (AmazonGlobal) from the US or JP.
PREFERRED_MARKETPLACES: dict[str, tuple[str, ...]] = {
    "US": ("ATVPDKIKX0DER",),
    "GB": ("A1F83G8C2ARO7P",),
    "DE": ("A1PA6795UKMFR9",),
    "FR": ("A13V1IB3VIYZZH",),
    "JP": ("A1VC38T7YXB528",),
    "CN": ("ATVPDKIKX0DER", "A1VC38T7YXB528"),
}
COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "JP", "CN")


@dataclass(frozen=True)
class ShipTo:
    """A recipient's delivery address, as Amazon holds it (v2026 ``CustomerAddress`` field names in snake case).

    ``None`` means absent; ``blank_absent`` makes the API render some absent fields as ``""``, as Amazon's own
    examples do, so a connector must treat empty strings as absent.
    """

    name: str = field(repr=False)
    company: str | None = field(repr=False)
    address_line1: str = field(repr=False)
    address_line2: str | None = field(repr=False)
    address_line3: str | None = field(repr=False)
    city: str
    district_or_county: str | None
    state_or_region: str | None
    municipality: str | None
    postal_code: str
    country_code: str
    phone: str = field(repr=False)
    address_type: str  # RESIDENTIAL or COMMERCIAL
    blank_absent: bool = False


@dataclass(frozen=True)
class BuyerTax:
    """A business buyer's tax registration (PII: a connector must never store it)."""

    legal_name: str = field(repr=False)
    registration_type: str  # VAT, BUSINESS
    registration_number: str = field(repr=False)
    taxing_region: str


@dataclass(frozen=True)
class FakeItem:
    """One order line."""

    order_item_id: str
    asin: str
    seller_sku: str
    title: str
    quantity: int
    unit_price: Decimal
    currency: str


@dataclass
class FakeOrder:
    """One order as the fake marketplace knows it: the truth tests compare a connector's result against."""

    order_id: str
    seller_id: str
    marketplace_id: str
    status: str  # a v2026 FulfillmentStatus value
    fulfilled_by: str  # MERCHANT or AMAZON
    channel: str  # AMAZON, or NON_AMAZON for multi-channel (UNFULFILLABLE) orders
    created: datetime
    last_updated: datetime
    earliest_ship: datetime
    latest_ship: datetime
    earliest_delivery: datetime
    latest_delivery: datetime
    service_level: str
    is_prime: bool
    seller_order_id: str
    items: tuple[FakeItem, ...]
    ship_to: ShipTo = field(repr=False)
    buyer_name: str = field(repr=False)
    buyer_email: str = field(repr=False)
    purchase_order_number: str | None = None
    tax: BuyerTax | None = field(default=None, repr=False)
    delivered_at: datetime | None = None

    @property
    def v0_status(self) -> str:
        """The Orders v0 ``OrderStatus``."""
        return V0_STATUS[self.status]

    @property
    def fulfillment_channel(self) -> str:
        """The Orders v0 ``FulfillmentChannel``: AFN (Amazon) or MFN (merchant)."""
        return "AFN" if self.fulfilled_by == "AMAZON" else "MFN"

    @property
    def country_code(self) -> str:
        """The ship-to country."""
        return self.ship_to.country_code

    @property
    def is_business(self) -> bool:
        """A business (B2B) order: it has a company and a tax registration."""
        return self.tax is not None

    @property
    def has_address(self) -> bool:
        """Amazon serves a shipping address only for unshipped, partially shipped and shipped orders."""
        return self.status in ADDRESS_STATUSES

    def phone_suppressed(self, now: datetime) -> bool:
        """Amazon suppresses the phone for AFN orders and after the latest delivery date (and, here, on delivery)."""
        return self.fulfilled_by == "AMAZON" or now > self.latest_delivery or self.delivered_at is not None

    @property
    def total(self) -> Decimal:
        """The order total (items only)."""
        return sum((i.unit_price * i.quantity for i in self.items), Decimal(0))

    @property
    def items_shipped(self) -> int:
        """Units shipped so far, by status."""
        units = sum(i.quantity for i in self.items)
        if self.status == "SHIPPED":
            return units
        if self.status == "PARTIALLY_SHIPPED":
            return max(1, units // 2) if units > 1 else 0
        return 0

    @property
    def items_unshipped(self) -> int:
        """Units still to ship (zero once cancelled)."""
        if self.status in ("CANCELLED", "UNFULFILLABLE"):
            return 0
        return sum(i.quantity for i in self.items) - self.items_shipped


# --- country profiles ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    city: str
    state: str | None
    district: str | None
    postal: str
    area: str  # telephone area code, national form without the trunk prefix
    street: str | None = None  # this place's own street ("{n}" is the number), else the profile's streets


@dataclass(frozen=True)
class _Profile:
    first: tuple[str, ...]
    last: tuple[str, ...]
    family_first: bool  # JP and CN write the family name first
    name_sep: str
    places: tuple[_Place, ...]
    streets: tuple[str, ...]  # "{n}" is the house number
    line2: tuple[str, ...]
    line3: tuple[str, ...]
    attention: tuple[str, ...]  # first line of a company delivery
    companies: tuple[str, ...]
    phone: str  # format with {area} {a} {b}
    mobile: str
    extension: str  # format with {ext}
    email_domain: str
    titles: tuple[str, ...]
    tax_type: str | None
    tax_number: str | None  # format with {n}


_PROFILES: dict[str, _Profile] = {
    "US": _Profile(
        first=("James", "Mary", "Robert", "Patricia", "María José", "D'Andre", "Anne-Marie", "Wei"),
        last=("Smith", "Johnson", "García", "O'Connor", "Nguyen", "Kowalski", "Washington", "Lee"),
        family_first=False,
        name_sep=" ",
        places=(
            _Place("Seattle", "WA", "King County", "98101", "206"),
            _Place("Austin", "TX", None, "78701", "512"),
            _Place("Portland", "OR", None, "97205-2134", "503"),
            _Place("Boston", "MA", "Suffolk County", "02108", "617"),
            _Place("New York", "NY", None, "10001", "212"),
            _Place("Denver", "CO", None, "80202", "303"),
        ),
        streets=("{n} Pine St", "{n} Westlake Ave N", "{n} Congress Ave", "{n} Boylston Street", "{n} Broadway"),
        line2=("Apt 4B", "Suite 200", "Unit 12", "Floor 3"),
        line3=("Building C, Dock 4", "Mail Stop 21-B"),
        attention=("Attn: Receiving Dept", "Attn: Accounts Payable"),
        companies=("Contoso Ltd", "Northwind Traders", "Fabrikam, Inc.", "Acme Widgets LLC"),
        phone="+1 {area}-555-01{b2}",
        mobile="+1 {area}-555-01{b2}",
        extension=" ext. {ext}",
        email_domain="marketplace.amazon.com",
        titles=("USB-C Charging Cable, 2 m", "Stainless Steel Water Bottle", "Wireless Mouse"),
        tax_type=None,
        tax_number=None,
    ),
    "GB": _Profile(
        first=("Oliver", "Amelia", "Siobhan", "Rhys", "Zoë", "Priya", "Callum", "Harriet"),
        last=("Bennett", "Hughes", "O'Neill", "Ashworth", "Patel", "MacLeod", "Davies", "Fforde-Smythe"),
        family_first=False,
        name_sep=" ",
        places=(
            _Place("London", "England", "Greater London", "SW1A 1AA", "20 7946"),
            _Place("Manchester", "England", "Greater Manchester", "M1 1AE", "161 496"),
            _Place("Edinburgh", "Scotland", "City of Edinburgh", "EH1 1YZ", "131 496"),
            _Place("Cardiff", "Wales", None, "CF10 1EP", "29 2018"),
            _Place("Bristol", "England", None, "BS1 4DJ", "117 496"),
        ),
        streets=("{n} Oak Avenue", "{n} High Street", "{n} Station Road", "{n} Queen Street"),
        line2=("Flat 2A", "Flat 7", "Unit 3", "The Old Rectory"),
        line3=("Church Lane", "Goods In, Gate 2"),
        attention=("FAO Goods In", "Attn: Stores"),
        companies=("Bennett & Hughes Ltd", "Northern Lights Trading Ltd", "Thistle Supplies plc"),
        phone="+44 {area} 0{b3}",
        mobile="+44 7700 900{b3}",
        extension=" ext. {ext}",
        email_domain="marketplace.amazon.co.uk",
        titles=("Kettle, 1.7 L", "Wool Scarf", "Tea Infuser"),
        tax_type="VAT",
        tax_number="GB{n9}",
    ),
    "DE": _Profile(
        first=("Jürgen", "Anna-Lena", "Lukas", "Sophie", "Özlem", "Maximilian", "Björn", "Hannah"),
        last=("Müller", "Weiß", "Schröder", "Yılmaz", "Strauß", "Becker", "Hoffmann", "Schmidt"),
        family_first=False,
        name_sep=" ",
        places=(
            _Place("Berlin", "Berlin", None, "10117", "30 23125"),
            _Place("München", "Bayern", None, "80331", "89 2180"),
            _Place("Hamburg", "Hamburg", None, "20095", "40 4288"),
            _Place("Köln", "Nordrhein-Westfalen", None, "50667", "221 4708"),
            _Place("Frankfurt am Main", "Hessen", None, "60311", "69 7910"),
        ),
        streets=("Friedrichstraße {n}", "Müllerstraße {n}a", "Schloßstraße {n}", "Königsallee {n}"),
        line2=("Hinterhaus, 3. OG", "c/o Familie Becker", "Wohnung 12", "Aufgang B"),
        line3=("Tor 4", "Halle 2"),
        attention=("Wareneingang", "z. Hd. Einkauf"),
        companies=("Müller & Söhne GmbH", "Beispiel AG", "Weiß Logistik GmbH & Co. KG"),
        phone="+49 {area}-{b3}",
        mobile="+49 151 2345{b3}",
        extension=" Durchwahl {ext}",
        email_domain="marketplace.amazon.de",
        titles=("Kaffeemühle aus Edelstahl", "Wanderrucksack 30 L", "LED-Schreibtischlampe"),
        tax_type="VAT",
        tax_number="DE{n9}",
    ),
    "FR": _Profile(
        first=("Élodie", "François", "Chloé", "Théo", "Inès", "Gaëlle", "Jean-Baptiste", "Noémie"),
        last=("Lefèvre", "Dubois", "Bénard", "Moreau", "Fournier", "D'Arcy", "Lambert", "Rousseau"),
        family_first=False,
        name_sep=" ",
        places=(
            _Place("Paris", "Île-de-France", None, "75008", "1 99 00"),
            _Place("Lyon", "Auvergne-Rhône-Alpes", "Rhône", "69002", "4 65 71"),
            _Place("Marseille", "Provence-Alpes-Côte d'Azur", "Bouches-du-Rhône", "13001", "4 65 71"),
            _Place("Bordeaux", "Nouvelle-Aquitaine", "Gironde", "33000", "5 36 49"),
            _Place("Lille", "Hauts-de-France", "Nord", "59000", "3 53 01"),
        ),
        streets=(
            "{n} rue du Faubourg Saint-Honoré",
            "{n} avenue des Champs-Élysées",
            "{n} quai des Chartrons",
            "{n} boulevard de la Liberté",
        ),
        line2=("Bâtiment B, 2e étage", "Appartement 14", "Escalier C", "Résidence Les Tilleuls"),
        line3=("Porte 3", "Lieu-dit Les Granges"),
        attention=("Service réception", "À l'attention du service achats"),
        companies=("Dubois et Fils SARL", "Exemple SAS", "Maison Lefèvre & Cie"),
        phone="+33 {area} {b2} {c2}",
        mobile="+33 6 39 98 {b2} {c2}",
        extension=" poste {ext}",
        email_domain="marketplace.amazon.fr",
        titles=("Cafetière à piston", "Sac à dos de randonnée", "Lampe de bureau LED"),
        tax_type="VAT",
        tax_number="FR{n11}",
    ),
    "JP": _Profile(
        first=("太郎", "花子", "一郎", "美咲", "健", "さくら", "翔", "陽菜"),
        last=("山田", "佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "中村"),
        family_first=True,
        name_sep=" ",
        places=(
            _Place("千代田区", "東京都", None, "100-0001", "3-3211", "千代田1-{n}"),
            _Place("渋谷区", "東京都", None, "150-0002", "3-5468", "渋谷2-21-{n}"),
            _Place("大阪市北区", "大阪府", None, "530-0001", "6-6345", "梅田3-1-{n}"),
            _Place("京都市下京区", "京都府", None, "600-8216", "75-361", "東塩小路町721-{n}"),
            _Place("札幌市中央区", "北海道", None, "060-0001", "11-211", "北1条西2丁目{n}"),
            _Place("名古屋市中村区", "愛知県", None, "450-0002", "52-588", "名駅1-1-{n}"),
        ),
        streets=(),
        line2=("グランドビル 5階 501号室", "サンシャインマンション 302号室", "第2ビル 3F", "メゾン桜 101"),
        line3=("総務部 御中", "受付気付"),
        attention=("物流センター 入荷係", "経理部"),
        companies=("株式会社サンプル商事", "有限会社テスト工業", "合同会社みなと物産"),
        phone="+81 {area}-{b4}",
        mobile="+81 90-1234-{b4}",
        extension=" 内線{ext}",
        email_domain="marketplace.amazon.co.jp",
        titles=("ステンレス製 電気ケトル 1.0L", "折りたたみ傘 晴雨兼用", "USB充電ケーブル 2m"),
        tax_type="BUSINESS",
        tax_number="T{n13}",
    ),
    "CN": _Profile(
        first=("伟", "娜", "敏", "洋", "静", "帆", "磊", "丽"),
        last=("王", "李", "张", "刘", "陈", "杨", "赵", "黄"),
        family_first=True,
        name_sep="",
        places=(
            _Place("上海市", "上海市", "浦东新区", "200120", "21 5081", "世纪大道{n}号"),
            _Place("北京市", "北京市", "朝阳区", "100022", "10 6561", "建国路{n}号"),
            _Place("深圳市", "广东省", "南山区", "518057", "755 8601", "深南大道99{n}号"),
            _Place("杭州市", "浙江省", "西湖区", "310012", "571 8702", "文三路4{n}号"),
            _Place("成都市", "四川省", "武侯区", "610041", "28 8555", "人民南路四段{n}号"),
        ),
        streets=(),
        line2=("环球金融中心 25楼", "A座 1203室", "3栋 2单元 501", "科技园南区 B栋"),
        line3=("前台代收", "收发室"),
        attention=("采购部", "仓储部 收货组"),
        companies=("上海示例贸易有限公司", "深圳市测试科技有限公司", "杭州样本电子商务有限公司"),
        phone="+86 {area} {b4}",
        mobile="+86 138 0013 {b4}",
        extension=" 转{ext}",
        email_domain="marketplace.amazon.com",
        titles=("USB-C Charging Cable, 2 m", "Portable Espresso Maker", "Noise Cancelling Earbuds"),
        tax_type=None,
        tax_number=None,
    ),
}

_SERVICE_LEVELS = ("STANDARD", "STANDARD", "STANDARD", "EXPEDITED", "NEXT_DAY", "SECOND_DAY")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _phone(rng: random.Random, profile: _Profile, place: _Place, *, extension: bool) -> str:
    template = profile.mobile if rng.random() < 0.3 else profile.phone
    phone = template.format(
        area=place.area,
        b2=f"{rng.randrange(100):02d}",
        c2=f"{rng.randrange(100):02d}",
        b3=f"{rng.randrange(1000):03d}",
        b4=f"{rng.randrange(10000):04d}",
    )
    if extension:
        phone += profile.extension.format(ext=rng.randrange(10, 999))
    return phone


def _person(rng: random.Random, profile: _Profile) -> str:
    first, last = rng.choice(profile.first), rng.choice(profile.last)
    return f"{last}{profile.name_sep}{first}" if profile.family_first else f"{first}{profile.name_sep}{last}"


def make_ship_to(rng: random.Random, country: str, *, business: bool, three_lines: bool, extension: bool) -> ShipTo:
    """A plausible ship-to address in ``country``; business ones carry a company, some run to three lines."""
    profile = _PROFILES[country]
    place = rng.choice(profile.places)
    street = (place.street or rng.choice(profile.streets)).format(n=rng.randrange(1, 99))
    company = rng.choice(profile.companies) if business else None
    line2: str | None
    line3: str | None
    if three_lines:
        line1, line2, line3 = rng.choice(profile.attention), street, rng.choice(profile.line3)
    else:
        line1 = street
        line2 = rng.choice(profile.line2) if rng.random() < 0.6 else None
        line3 = None
    return ShipTo(
        name=_person(rng, profile),
        company=company,
        address_line1=line1,
        address_line2=line2,
        address_line3=line3,
        city=place.city,
        district_or_county=place.district,
        state_or_region=place.state,
        municipality=None,
        postal_code=place.postal,
        country_code=country,
        phone=_phone(rng, profile, place, extension=extension),
        address_type="COMMERCIAL" if business else "RESIDENTIAL",
        blank_absent=country == "GB" and rng.random() < 0.5,
    )


def _tax(rng: random.Random, country: str, company: str) -> BuyerTax | None:
    profile = _PROFILES[country]
    if profile.tax_type is None or profile.tax_number is None:
        return None
    number = profile.tax_number.format(n9=_digits(rng, 9), n11=_digits(rng, 11), n13=_digits(rng, 13))
    return BuyerTax(
        legal_name=company, registration_type=profile.tax_type, registration_number=number, taxing_region=country
    )


def _order_id(rng: random.Random, marketplace: Marketplace) -> str:
    return f"{rng.choice(marketplace.order_prefixes)}-{_digits(rng, 7)}-{_digits(rng, 7)}"


def _at_second(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _status_plan(rng: random.Random, n: int, statuses: Sequence[str] | None) -> list[str]:
    """``n`` statuses: each allowed one at least once (when ``n`` allows), the rest weighted, shuffled."""
    allowed = list(statuses) if statuses else list(FULFILLMENT_STATUSES)
    plan = allowed[:n]
    weights = [_STATUS_WEIGHTS[s] for s in allowed]
    plan += rng.choices(allowed, weights=weights, k=n - len(plan))
    rng.shuffle(plan)
    return plan


@dataclass
class OrderFactory:
    """Generates orders deterministically: the same seed and the same calls give the same orders."""

    seed: int
    rng: random.Random = field(init=False)
    taken: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - invented buyers, not secrets

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
        """``n`` orders placed between ``start`` and ten minutes before ``now``, countries round-robin."""
        rng = self.rng
        unknown = [c for c in countries if c not in _PROFILES]
        if unknown or not countries:
            raise ValueError(f"countries must be among {', '.join(COUNTRIES)}")
        plan = _status_plan(rng, n, statuses)
        end = now - timedelta(minutes=10)
        if end <= start:
            end = start + timedelta(days=1)
        span = (end - start).total_seconds()
        orders: list[FakeOrder] = []
        for i in range(n):
            country = countries[i % len(countries)]
            status = plan[i]
            marketplace = _marketplace_for(country, marketplace_ids)
            business = i % 5 == 3
            ship_to = make_ship_to(
                rng, country, business=business, three_lines=business and i % 10 == 3, extension=i % 4 == 1
            )
            order_id = _order_id(rng, marketplace)
            while order_id in self.taken:
                order_id = _order_id(rng, marketplace)
            self.taken.add(order_id)
            created = _at_second(start + timedelta(seconds=rng.uniform(0, span)))
            settled = max(created, now - timedelta(minutes=5))
            if status in ("PENDING", "PENDING_AVAILABILITY"):
                last_updated = created + timedelta(seconds=rng.randrange(0, 1800))
            else:
                last_updated = created + timedelta(seconds=rng.randrange(1800, 3 * 86400))
            last_updated = min(_at_second(last_updated), settled)
            if i % 10 == 9 and orders and created <= orders[-1].last_updated <= settled:
                last_updated = orders[-1].last_updated  # ties: several orders updated in the same second
            earliest_ship = created.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            latest_ship = earliest_ship + timedelta(days=2, seconds=-1)
            earliest_delivery = latest_ship + timedelta(seconds=1)
            transit = 4 if country == marketplace.country_code else 12  # cross-border takes longer
            latest_delivery = earliest_delivery + timedelta(days=transit, seconds=-1)
            amazon = status == "UNFULFILLABLE" or i % 4 == 2
            items = tuple(
                FakeItem(
                    order_item_id=_digits(rng, 14),
                    asin="B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8)),
                    seller_sku=f"SKU-{country}-{rng.randrange(1000, 9999)}",
                    title=rng.choice(_PROFILES[country].titles),
                    quantity=rng.choice((1, 1, 1, 2, 3)),
                    unit_price=_price(rng, marketplace.currency),
                    currency=marketplace.currency,
                )
                for _ in range(rng.choice((1, 1, 2, 3)))
            )
            buyer_name = ship_to.name if rng.random() < 0.8 else _person(rng, _PROFILES[country])
            email_user = hashlib.sha256(f"{self.seed}:{order_id}".encode()).hexdigest()[:15]
            tax = _tax(rng, country, ship_to.company) if business and ship_to.company else None
            orders.append(
                FakeOrder(
                    order_id=order_id,
                    seller_id=seller_id,
                    marketplace_id=marketplace.marketplace_id,
                    status=status,
                    fulfilled_by="AMAZON" if amazon else "MERCHANT",
                    channel="NON_AMAZON" if status == "UNFULFILLABLE" else "AMAZON",
                    created=created,
                    last_updated=last_updated,
                    earliest_ship=earliest_ship,
                    latest_ship=latest_ship,
                    earliest_delivery=earliest_delivery,
                    latest_delivery=latest_delivery,
                    service_level=rng.choice(_SERVICE_LEVELS),
                    is_prime=rng.random() < 0.4,
                    seller_order_id=f"SO-{_digits(rng, 8)}",
                    items=items,
                    ship_to=ship_to,
                    buyer_name=buyer_name,
                    buyer_email=f"{email_user}@{_PROFILES[country].email_domain}",
                    purchase_order_number=f"PO-{_digits(rng, 6)}" if business else None,
                    tax=tax,
                )
            )
        return orders


def _marketplace_for(country: str, marketplace_ids: Sequence[str]) -> Marketplace:
    for candidate in PREFERRED_MARKETPLACES[country]:
        if candidate in marketplace_ids:
            return MARKETPLACES[candidate]
    # Cross-border: the buyer orders from one of the seller's marketplaces and ships abroad.
    return MARKETPLACES[marketplace_ids[0]]


def _price(rng: random.Random, currency: str) -> Decimal:
    if currency == "JPY":
        return Decimal(rng.randrange(500, 20000, 10))
    return Decimal(rng.randrange(499, 19999)) / 100


def utc(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime (naive values are taken to be UTC)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
