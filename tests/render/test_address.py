"""Address layout: the destination country's order, local script big-to-small for JP/CN/KR."""

from __future__ import annotations

import dataclasses

import pytest

from render.address import clean_field, layout_address
from tests.support.buyers import BERLIN, LONDON, PARIS, SEATTLE, SEOUL, SHANGHAI, TOKYO
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
