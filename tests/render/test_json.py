"""JSON labels: released fields, the printed layout, one object or a list."""

from __future__ import annotations

import dataclasses
import json

from render.jsonlabel import JsonRenderer, label_json
from tests.support.buyers import SEATTLE, TOKYO
from tests.support.render import ORDER_REF, document


def test_single_label_is_an_object_with_layout_and_released_fields_only() -> None:
    released = dataclasses.replace(SEATTLE, phone=None)  # the client's profile withheld the phone
    body = json.loads(JsonRenderer().render([document(released)]))
    assert body["order_ref"] == ORDER_REF
    assert body["marketplace"] == "amazon"
    assert body["printed_at"] == "2025-03-04T05:06:00+00:00"
    assert body["ship_to"]["name"] == "Jane Doe"
    assert "phone" not in body["ship_to"]
    assert body["address_lines"][-2:] == ["SEATTLE, WA 98109", "UNITED STATES"]
    assert body["return_address"]["lines"] == ["Bldg 5, 88 Keji Rd", "Nanshan, Shenzhen 518057"]


def test_several_labels_are_a_list_and_text_stays_as_written() -> None:
    payload = JsonRenderer().render([document(TOKYO), document(SEATTLE, return_address=None)])
    assert "東京都".encode() in payload  # UTF-8, not \\u escapes
    body = json.loads(payload)
    assert [label["ship_to"]["country_code"] for label in body["labels"]] == ["JP", "US"]
    assert body["labels"][1]["return_address"] is None


def test_label_json_is_what_the_renderer_emits() -> None:
    doc = document(TOKYO)
    assert json.loads(JsonRenderer().render([doc])) == label_json(doc)
