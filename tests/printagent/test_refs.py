"""Scans as a packing station makes them: a label's barcode (the bare order id), a marketplace's order id
typed or scanned, or ``marketplace:order-id``; anything else is refused before a request is made."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printagent.refs import BadReference, OrderRef, parse_ref


@pytest.mark.parametrize(
    ("scan", "expected"),
    [
        ("503-1234567-1234567\r\n", OrderRef("amazon", "503-1234567-1234567")),  # a scanner's line ending
        ("  amazon:111-0000000-0000001 ", OrderRef("amazon", "111-0000000-0000001")),
        ("amazon/111-0000000-0000001", OrderRef("amazon", "111-0000000-0000001")),
        ("shopify:4501.2", OrderRef("shopify", "4501.2")),
    ],
)
def test_a_scan_is_read_as_an_order_reference(scan: str, expected: OrderRef) -> None:
    assert parse_ref(scan, "amazon") == expected


def test_the_reference_is_shown_and_requested_as_the_api_names_it() -> None:
    ref = parse_ref("503-1234567-1234567", "amazon")
    assert str(ref) == "amazon:503-1234567-1234567"
    assert ref.path == "/v1/labels/amazon/503-1234567-1234567"


@pytest.mark.parametrize("scan", ["", "   ", "Amazon:1", "amazon:", "amazon:../etc", "a b", "amazon:1?x=1", "-1"])
def test_anything_else_is_refused_without_repeating_it(scan: str) -> None:
    with pytest.raises(BadReference) as caught:
        parse_ref(scan, "amazon")
    assert scan.strip() == "" or scan.strip() not in str(caught.value)


@given(st.text(max_size=120))
def test_every_reference_accepted_is_one_the_label_api_accepts(scan: str) -> None:
    import re

    try:
        ref = parse_ref(scan, "amazon")
    except BadReference:
        return
    # app/api/request_checks.py's rule, restated: the agent never asks for what the API would refuse as malformed.
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,39}", ref.marketplace)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", ref.order_id)
