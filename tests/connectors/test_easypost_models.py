"""EasyPost's models in the product: the schema derived from the Go client's structs is the committed one, and
every response in EasyPost's own docs validates against it, while a wrong type or an unknown field does not."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors.fake_easypost.schema import document, schema_errors

ROOT = Path(__file__).resolve().parents[2]
RESPONSES = ROOT / "connectors" / "platform_specs" / "easypost" / "docs-responses"
#: The object each docs response is (the rest are a Shipment or an Address by their folder).
OBJECTS = {
    "shipments/shipments-list.json": "ListShipmentsResult",
    "rates/rates-retrieve.json": "Rate",
    "rates/rates-regenerate.json": "getShipmentRatesResponse",
    "addresses/addresses-verify.json": "AddressVerifyResponse",
    "addresses/addresses-verify-strict-param.json": "ErrorResponse",
    "addresses/addresses-create-and-verify.json": "ErrorResponse",
}
GOLDEN = sorted(str(p.relative_to(RESPONSES)) for p in RESPONSES.rglob("*.json"))


def _object(name: str) -> str:
    return OBJECTS.get(name, "Shipment" if name.startswith("shipments/") else "Address")


def _load(name: str) -> Any:
    return json.loads((RESPONSES / name).read_text(encoding="utf-8"))


def test_the_committed_schema_is_the_scripts_output() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "easypost_schema.py"), "--check"], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("name", GOLDEN)
def test_every_docs_response_validates(name: str) -> None:
    assert schema_errors(_object(name), _load(name)) == []


def test_the_docs_responses_cover_what_the_product_reads() -> None:
    assert len(GOLDEN) >= 14
    bought = _load("shipments/shipments-buy.json")
    assert bought["postage_label"]["label_url"] and bought["tracker"]["status"] and bought["selected_rate"]["id"]


def test_a_wrong_type_an_unknown_field_and_a_wrong_nested_object_fail() -> None:
    shipment = _load("shipments/shipments-buy.json")
    wrong = copy.deepcopy(shipment)
    wrong["rates"][0]["delivery_days"] = "two"
    assert schema_errors("Shipment", wrong) != []
    unknown = copy.deepcopy(shipment)
    unknown["postage_label"]["label_gif_url"] = "x"
    assert schema_errors("Shipment", unknown) != []
    nested = copy.deepcopy(shipment)
    nested["tracker"]["status"] = 3
    assert schema_errors("Shipment", nested) != []
    assert any("fails" in e for e in schema_errors("Shipment", nested))


def test_every_go_struct_became_a_definition_with_its_json_names() -> None:
    defs = document()["$defs"]
    assert {"Shipment", "Rate", "PostageLabel", "Address", "Parcel", "ShipmentOptions", "Tracker"} <= set(defs)
    assert "label_zpl_url" in defs["PostageLabel"]["properties"]
    assert defs["CustomsItem"]["properties"]["value"]["type"] == ["string", "null"]  # tagged ,string
    assert set(defs["ListAddressResult"]["properties"]) == {"addresses", "has_more"}  # the embedded struct


def test_an_error_body_needs_its_code_and_message() -> None:
    assert schema_errors("ErrorResponse", {"error": {"message": "no code"}}) != []
    assert schema_errors("ErrorResponse", {"error": {"code": "NOT_FOUND", "message": "x", "errors": []}}) == []
