"""Sample buyers: invented people at real address shapes, defined once for the tests and the benchmarks.

They sit beside the fake marketplace because they are the same kind of thing — buyer data that is safe to
ship — and because ``bench/`` and the tests both need them without either importing the other. (The fake
marketplace itself generates its buyers from a seed in ``connectors/fake_amazon/data.py``; the demo uses
those.) Every string here is PII as far as the code is concerned: tests look for these names, streets and
phones in logs, error bodies and the audit chain, and fail if they find one.
"""

from __future__ import annotations

from vault.records import LabelRecord


def sample_label(i: int = 0, country: str = "JP") -> LabelRecord:
    """The ``i``-th numbered buyer: a Tokyo resident (``"JP"``) or a Seattle business (any other country).

    Name, building floor (JP) or street number (US) and phone carry ``i``, so each order's label differs.
    """
    if country == "JP":
        return LabelRecord(
            name=f"山田 太郎{i}",
            address_line1="千代田区千代田1-1",
            address_line2=f"皇居外苑ビル{i}階",
            city="千代田区",
            state_or_region="東京都",
            postal_code="100-0001",
            country_code="JP",
            phone=f"+81 3-1234-{i:04d}",
        )
    return LabelRecord(
        name=f"Jane Buyer{i}",
        company="Acme Widgets Ltd",
        address_line1=f"{i} Pike Street",
        address_line2="Suite 400",
        address_line3="Building C",
        city="Seattle",
        state_or_region="WA",
        postal_code="98101",
        country_code="US",
        phone=f"+1 206-555-{i:04d} ext. 12",
        address_type="Commercial",
    )


#: Two buyers whose names, streets, company and phone occur nowhere else, so any of them found in a log
#: line, an error body or a metric is a leak and nothing else.
MARKED_BUYERS = (
    LabelRecord(
        name="試験 花子",
        address_line1="試験町1-2-3",
        address_line2="テストビル4階",
        city="千代田区",
        state_or_region="東京都",
        postal_code="100-0001",
        country_code="JP",
        phone="+81 90-5555-0123",
    ),
    LabelRecord(
        name="Quentin Zebulon Testbuyer",
        company="Zebulon Widgets",
        address_line1="4417 Marigold Testbuyer Lane",
        city="Seattle",
        state_or_region="WA",
        postal_code="98101",
        country_code="US",
        phone="+1 206-555-0199",
    ),
)

# One buyer per address convention the renderers lay out (script, order of lines, postal code position).
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
