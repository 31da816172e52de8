"""Sample label documents for the renderer tests (fictitious people, real address shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

from render.interfaces import LabelDocument, ReturnAddress
from vault.records import LabelRecord

PRINTED_AT = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
ORDER_REF = "503-1234567-7654321"

TOKYO = LabelRecord(
    name="山田 太郎",
    address_line1="神宮前1-2-3",
    address_line2="ハイツ原宿101",
    city="渋谷区",
    state_or_region="東京都",
    postal_code="150-0001",
    country_code="JP",
)
SHANGHAI = LabelRecord(
    name="王小明",
    address_line1="世纪大道100号环球金融中心",
    city="上海市",
    district_or_county="浦东新区",
    state_or_region="上海市",
    postal_code="200120",
    country_code="CN",
)
SEOUL = LabelRecord(
    name="김민수",
    address_line1="테헤란로 152",
    city="강남구",
    state_or_region="서울특별시",
    postal_code="06236",
    country_code="KR",
)
SEATTLE = LabelRecord(
    name="Jane Doe",
    company="Acme Corp",
    address_line1="410 Terry Ave N",
    address_line2="Suite 200",
    city="Seattle",
    state_or_region="WA",
    postal_code="98109",
    country_code="US",
    phone="+1 206 555 0100",
)
LONDON = LabelRecord(
    name="John Smith",
    address_line1="10 Downing Street",
    city="London",
    postal_code="SW1A 2AA",
    country_code="GB",
)
BERLIN = LabelRecord(
    name="Erika Mustermann",
    address_line1="Heidestraße 17",
    city="Köln",
    postal_code="51147",
    country_code="DE",
)
PARIS = LabelRecord(
    name="Marie Dupont",
    company="Exemple SARL",
    address_line1="8 rue de Rivoli",
    city="Paris",
    postal_code="75004",
    country_code="FR",
)
MOSCOW = LabelRecord(
    name="Иван Петров",
    address_line1="ул. Тверская, д. 7, кв. 12",
    city="Москва",
    postal_code="125009",
    country_code="RU",
)
ATHENS = LabelRecord(
    name="Γιώργος Παπαδόπουλος",
    address_line1="Οδός Ερμού 25",
    city="Αθήνα",
    postal_code="105 63",
    country_code="GR",
)

RETURN_ADDRESS = ReturnAddress(
    name="Shenzhen Bright Trading Co.",
    lines=("Bldg 5, 88 Keji Rd", "Nanshan, Shenzhen 518057"),
    country_code="CN",
)


def document(ship_to: LabelRecord = SEATTLE, *, order_ref: str = ORDER_REF, **changes: object) -> LabelDocument:
    """A label document for ``ship_to`` with the sample order, time and return address."""
    values: dict[str, object] = {
        "order_ref": order_ref,
        "marketplace": "amazon",
        "ship_to": ship_to,
        "printed_at": PRINTED_AT,
        "return_address": RETURN_ADDRESS,
    }
    values.update(changes)
    return LabelDocument(**values)  # type: ignore[arg-type]
