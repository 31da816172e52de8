"""Masked buyer data: no two characters that stood together in a name, street or phone stand together in the
output (vault/masking.py states the rule)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vault.masking import MASK, mask_name, mask_phone, mask_postal, mask_street, masked_summary
from vault.records import LabelRecord

#: Any text: letters of every script, digits, punctuation, the mask character itself, spaces of all kinds.
TEXT = st.text(min_size=0, max_size=60)
PHONE = st.text(alphabet="+0123456789 -()x.", max_size=24)


def windows(text: str) -> set[str]:
    """Every pair of neighbouring characters of ``text`` that could reveal something: neither is whitespace
    (spaces separate words in the output too) nor the mask character (in the output it is always the mask)."""
    return {
        text[i : i + 2]
        for i in range(len(text) - 1)
        if not (text[i].isspace() or text[i + 1].isspace()) and MASK not in text[i : i + 2]
    }


def leaked(original: str, masked: str) -> set[str]:
    return {w for w in windows(original) if w in masked}


@given(TEXT)
def test_no_two_neighbouring_characters_of_a_name_survive(name: str) -> None:
    assert not leaked(name, mask_name(name))


@given(TEXT)
def test_no_two_neighbouring_characters_of_a_street_survive(street: str) -> None:
    assert not leaked(street, mask_street(street))


@given(PHONE | TEXT)
def test_no_two_neighbouring_characters_of_a_phone_survive(phone: str) -> None:
    assert not leaked(phone, mask_phone(phone))


@given(name=TEXT.filter(str.strip), street=TEXT.filter(str.strip), phone=PHONE, postal=st.text(max_size=12))
def test_the_summary_shows_no_sequence_of_name_street_or_phone(name: str, street: str, phone: str, postal: str) -> None:
    record = LabelRecord(
        name=name, address_line1=street, city="Tokyo", country_code="JP", postal_code=postal or None, phone=phone
    )
    summary = masked_summary(record)
    # What the summary shows on purpose (the postal district and the country) may of course match by chance.
    shown = f"{mask_postal(postal)} JP"
    for original in (name, street, phone):
        assert not {w for w in leaked(original, summary) if w not in shown}


def test_the_documented_examples() -> None:
    assert mask_name("John Smith") == "J*** S****"
    assert mask_name("試験 花子") == "試* 花*"
    assert mask_name("A") == "A*"
    assert mask_postal("150-0002") == "150-****"
    assert mask_postal("SW1A 1AA") == "SW1A ***"
    assert mask_postal("98101") == "981**"
    assert mask_phone("+81 90-5555-0123") == "*" * 15 + "3"
    record = LabelRecord(
        name="John Smith",
        address_line1="1-2-3 Jingumae",
        city="Shibuya",
        country_code="JP",
        postal_code="150-0002",
        phone="+81 3 5555 0123",
    )
    assert masked_summary(record) == "J*** S****, 150-**** JP"
    assert repr(record).count("Smith") == 0
