"""Address layout: the destination country's order, local script big-to-small for JP/CN/KR."""

from __future__ import annotations

import dataclasses

import pytest

from render.address import clean_field, layout_address, phone_line
from render.interfaces import ReturnAddress
from render.pdf import PdfRenderer
from render.zpl import ZplRenderer
from tests.support.buyers import BERLIN, LONDON, PARIS, SEATTLE, SEOUL, SHANGHAI, TOKYO
from tests.support.render import document
from vault.records import LabelRecord


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (TOKYO, ["〒150-0001", "東京都", "渋谷区", "神宮前1-2-3", "ハイツ原宿101", "山田 太郎", "JAPAN"]),
        (SHANGHAI, ["200120", "上海市浦东新区", "世纪大道100号环球金融中心", "王小明", "CHINA"]),
        (SEOUL, ["서울특별시 강남구", "테헤란로 152", "김민수", "06236", "SOUTH KOREA"]),
        (
            SEATTLE,
            ["Jane Doe", "Acme Corp", "410 Terry Ave N", "Suite 200", "SEATTLE, WA 98109", "UNITED STATES"],
        ),
        (LONDON, ["John Smith", "10 Downing Street", "LONDON", "SW1A 2AA", "UNITED KINGDOM"]),
        (BERLIN, ["Erika Mustermann", "Heidestraße 17", "51147 KÖLN", "GERMANY"]),
        (PARIS, ["Exemple SARL", "Marie Dupont", "8 rue de Rivoli", "75004 PARIS", "FRANCE"]),
    ],
    ids=["JP", "CN", "KR", "US", "GB", "DE", "FR"],
)
def test_layout_follows_the_destination_countrys_order(record: LabelRecord, expected: list[str]) -> None:
    assert layout_address(record) == expected


def test_romanised_japanese_address_is_laid_out_in_latin_order() -> None:
    record = LabelRecord(
        name="Taro Yamada",
        address_line1="1-2-3 Jingumae",
        city="Shibuya-ku",
        state_or_region="Tokyo",
        postal_code="150-0001",
        country_code="JP",
    )
    assert layout_address(record) == [
        "Taro Yamada",
        "1-2-3 Jingumae",
        "Shibuya-ku, TOKYO",
        "150-0001",
        "JAPAN",
    ]


def test_empty_fields_leave_no_dangling_separators() -> None:
    record = dataclasses.replace(SEATTLE, state_or_region=None, company=None, address_line2=None)
    assert layout_address(record) == ["Jane Doe", "410 Terry Ave N", "SEATTLE 98109", "UNITED STATES"]
    no_postcode = dataclasses.replace(TOKYO, postal_code=None)
    assert layout_address(no_postcode)[0] == "東京都"  # no orphaned 〒


def test_buyer_line_breaks_and_controls_cannot_add_lines() -> None:
    record = dataclasses.replace(SEATTLE, name="Jane\nDoe\r\n\x00\x1b[2J", address_line2="Suite\t200\u2028B")
    lines = layout_address(record)
    assert lines[0] == "Jane Doe [2J"
    assert "Suite 200 B" in lines
    assert all("\n" not in line and "\x1b" not in line for line in lines)


def test_unknown_country_still_lays_out_everything() -> None:
    record = dataclasses.replace(LONDON, country_code="QZ")
    assert layout_address(record) == ["John Smith", "10 Downing Street", "London", "SW1A 2AA", "QZ"]


def test_clean_field() -> None:
    assert clean_field(None) == ""
    assert clean_field("  a \n\n b  ") == "a b"
    assert clean_field("東京都\u3000渋谷区") == "東京都\u3000渋谷区"  # ideographic space is written, keep it


#: The countries Amazon's marketplaces ship to (at least), each with a region and a city in that region.
MARKETPLACE_COUNTRIES = {
    "US": ("WA", "Seattle"), "CA": ("ON", "Toronto"), "MX": ("CDMX", "Ciudad de México"),
    "BR": ("SP", "São Paulo"), "GB": ("", "London"), "DE": ("", "Köln"), "FR": ("", "Paris"),
    "IT": ("MI", "Milano"), "ES": ("Madrid", "Alcalá de Henares"), "NL": ("", "Amsterdam"),
    "SE": ("", "Stockholm"), "PL": ("", "Kraków"), "BE": ("", "Bruxelles"), "IE": ("Co. Dublin", "Dublin"),
    "TR": ("İstanbul", "Kadıköy"), "AE": ("Dubai", "Dubai"), "SA": ("", "الرياض"), "EG": ("القاهرة", "المعادي"),
    "IN": ("Maharashtra", "Mumbai"), "JP": ("東京都", "渋谷区"), "AU": ("NSW", "Sydney"), "SG": ("", "Singapore"),
    "CN": ("广东省", "深圳市"), "KR": ("경기도", "성남시"), "HK": ("九龍", "旺角"), "MO": ("", "澳門"),
    "TW": ("臺北市", "中正區"), "AT": ("", "Graz"), "CH": ("", "Zürich"),
}  # fmt: skip
#: City-states and regions whose capital has the region's name: the city must survive the layout.
CITY_IS_REGION = [
    ("DE", "Berlin"), ("DE", "Hamburg"), ("DE", "Bremen"), ("AT", "Wien"), ("CH", "Basel"), ("SG", "Singapore"),
    ("HK", "Hong Kong"), ("MO", "Macau"), ("AE", "Dubai"), ("AE", "Abu Dhabi"), ("SA", "Riyadh"),
    ("JP", "Tokyo"), ("CN", "上海市"), ("CN", "北京市"), ("CN", "天津市"), ("CN", "重庆市"), ("KR", "서울특별시"),
    ("US", "New York"), ("MX", "Ciudad de México"), ("IN", "Delhi"), ("EG", "Cairo"), ("TW", "臺北市"),
]  # fmt: skip


def fold(text: str) -> str:
    """Case-free text as the post's capitals print it (Turkish ı upper-cases to I)."""
    return text.upper().casefold()


@pytest.mark.parametrize("country", MARKETPLACE_COUNTRIES)
def test_every_marketplace_country_prints_city_street_name_and_country(country: str) -> None:
    state, city = MARKETPLACE_COUNTRIES[country]
    record = LabelRecord(
        name="Test Buyer", address_line1="1 Test Street", city=city, state_or_region=state or None,
        postal_code="12345", country_code=country,
    )  # fmt: skip
    lines = layout_address(record)
    text = fold("\n".join(lines))
    for value in ("Test Buyer", "1 Test Street", city):
        assert fold(value) in text, (country, value)
    assert lines[-1].isupper() and lines[-1] not in lines[:-1]


@pytest.mark.parametrize(("country", "city"), CITY_IS_REGION, ids=[f"{c}-{n}" for c, n in CITY_IS_REGION])
def test_a_city_named_like_its_region_is_kept(country: str, city: str) -> None:
    record = LabelRecord(
        name="Test Buyer", address_line1="1 Test Street", city=city, state_or_region=city, postal_code="12345",
        country_code=country,
    )  # fmt: skip
    lines = layout_address(record)
    assert fold(city) in fold("\n".join(lines))
    # Written at most twice (city and region), never lost, and never twice on one line in China's order.
    if country == "CN":
        assert not any(line.count(city) > 1 for line in lines)


OSAKA_SELLER = ReturnAddress("株式会社サンプル", ("大阪府大阪市北区梅田1-1",), "JP")


@pytest.mark.parametrize(
    ("record", "origin", "printed"),
    [
        (dataclasses.replace(TOKYO, phone="03-1234-5678"), "JP", "TEL 03-1234-5678"),  # JP -> JP
        (dataclasses.replace(TOKYO, phone="03-1234-5678"), "jp", "TEL 03-1234-5678"),
        (dataclasses.replace(TOKYO, phone="03-1234-5678"), "CN", ""),  # cross-border: the carrier doesn't ask
        (dataclasses.replace(TOKYO, phone="03-1234-5678"), None, ""),  # origin unknown: not domestic
        (TOKYO, "JP", ""),  # the client's profile withheld the phone
        (SEATTLE, "US", ""),  # US domestic carriers don't print it
    ],
)
def test_the_phone_is_printed_on_japanese_domestic_labels_only(
    record: LabelRecord, origin: str | None, printed: str
) -> None:
    assert phone_line(record, origin) == printed


def test_japanese_domestic_pdf_and_zpl_labels_carry_the_phone_after_the_address() -> None:
    tokyo = dataclasses.replace(TOKYO, phone="03-1234-5678")
    pypdf = pytest.importorskip("pypdf")
    import io

    domestic = document(tokyo, return_address=OSAKA_SELLER)
    pdf_text = pypdf.PdfReader(io.BytesIO(PdfRenderer().render([domestic]))).pages[0].extract_text()
    assert "TEL 03-1234-5678" in pdf_text.splitlines()
    assert "TEL 03-1234-5678" in ZplRenderer().render([domestic]).decode()
    cross_border = document(tokyo)  # the samples' seller ships from China
    assert "03-1234-5678" not in ZplRenderer().render([cross_border]).decode()
