"""What is Shippo's own, beyond the carrier contract every carrier passes (``test_carriers.py``): the
transaction carries the vault's reference as its ``metadata`` and the label file type Shippo names, the
shipment asks for Shippo's address validation, and the fake refuses a body Shippo's OpenAPI refuses."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.carriers.interfaces import LabelFormat
from connectors.carriers.shippo.client import ShippoCarrier
from connectors.fake_shippo import DEFAULT_TOKEN, FakeShippo
from tests.support.buyers import SEATTLE
from tests.support.carriers import PARCEL, SHIP_FROM, shippo_client


@pytest.fixture
def fake() -> Iterator[FakeShippo]:
    """A running fake Shippo; every body it served must match Shippo's schemas."""
    with FakeShippo() as carrier:
        yield carrier
        assert carrier.validation_errors == []
        assert carrier.server_errors == []


@pytest.fixture
def shippo(fake: FakeShippo) -> Iterator[ShippoCarrier]:
    client = shippo_client(fake)
    yield client
    client.close()


def test_the_transaction_keeps_the_reference_and_shippos_file_type(fake: FakeShippo, shippo: ShippoCarrier) -> None:
    quote = shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, reference="lv-ref-1")
    for label_format, file_type in ((LabelFormat.PDF, "PDF_4x6"), (LabelFormat.ZPL, "ZPLII")):
        rate = quote.choose("usps_priority" if label_format is LabelFormat.ZPL else "cheapest")
        shippo.purchase(rate, label_format=label_format, reference=f"lv-{file_type}")
    transactions = {t["metadata"]: t for t in fake.transactions()}
    assert transactions["lv-PDF_4x6"]["label_file_type"] == "PDF_4x6"
    assert transactions["lv-ZPLII"]["label_file_type"] == "ZPLII"


def test_the_fake_refuses_a_body_shippos_schema_refuses(fake: FakeShippo) -> None:
    headers = {"Authorization": f"ShippoToken {DEFAULT_TOKEN}"}
    answer = httpx.post(f"{fake.base_url}/shipments", json={"parcels": "none"}, headers=headers)
    assert answer.status_code == 400
    answer = httpx.post(f"{fake.base_url}/transactions", json={"label_file_type": "PDF_4x6"}, headers=headers)
    assert answer.status_code == 400
