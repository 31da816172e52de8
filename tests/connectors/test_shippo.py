"""The Shippo client against the fake Shippo (real HTTP, Shippo's own schemas): a label is quoted, bought,
printed, tracked and voided; the faults that cost money (a lost answer, a changed rate, a refused address,
an outage) leave every label bought once or not at all, and no error or log line carries the address."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import pypdf
import pytest

from connectors.carriers.interfaces import (
    AddressRejected,
    Carrier,
    CarrierAuthRefused,
    CarrierUnavailable,
    LabelFormat,
    NoMatchingRate,
    PurchaseUncertain,
    RateChanged,
    TrackingStatus,
    VoidRefused,
    VoidStatus,
)
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials
from connectors.fake_shippo import FakeShippo
from tests.support.buyers import BERLIN, SEATTLE
from tests.support.carriers import FAST, PARCEL, SHIP_FROM, shippo_client
from tests.support.world import assert_no_pii


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


def test_the_client_keeps_the_carrier_contract(shippo: ShippoCarrier) -> None:
    assert isinstance(shippo, Carrier)


def test_a_label_is_quoted_bought_printed_tracked_and_voided(fake: FakeShippo, shippo: ShippoCarrier) -> None:
    quote = shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    assert {r.service for r in quote.rates} == {"usps_ground_advantage", "usps_priority", "usps_priority_express"}
    assert "name" in quote.fields_sent and "address_line1" in quote.fields_sent and "phone" in quote.fields_sent
    cheapest, fastest = quote.choose("cheapest"), quote.choose("fastest")
    assert cheapest.amount == min(r.amount for r in quote.rates) and fastest.estimated_days == 1
    assert quote.choose("usps_priority").service == "usps_priority"

    bought = shippo.purchase(cheapest, label_format=LabelFormat.PDF, reference="lv-ref-1")
    assert bought.tracking_number and bought.rate == cheapest and bought.label_format is LabelFormat.PDF
    assert fake.purchases_by_metadata() == {"lv-ref-1": 1}

    label = shippo.label(bought)
    text = pypdf.PdfReader(io.BytesIO(label.content)).pages[0].extract_text()
    assert bought.tracking_number in text and SEATTLE.name in text  # the carrier's label for this buyer
    assert label.media_type == "application/pdf"
    assert shippo.tracking(bought).status is TrackingStatus.PRE_TRANSIT
    assert shippo.void(bought) is VoidStatus.VOIDED
    with pytest.raises(VoidRefused):
        shippo.void(bought)


def test_nothing_printable_of_a_purchase_shows_the_address_or_the_label_url(shippo: ShippoCarrier) -> None:
    quote = shippo.quote(ship_from=SHIP_FROM, ship_to=BERLIN, parcel=PARCEL)
    bought = shippo.purchase(quote.choose("cheapest"), label_format=LabelFormat.ZPL, reference="lv-ref-2")
    label = shippo.label(bought)
    assert label.content.startswith(b"^XA") and bought.tracking_number.encode() in label.content
    for value in (quote, bought, label):
        assert_no_pii(repr(value), "a repr")
        assert "_labels" not in repr(value)
    assert "Test Seller" not in repr(SHIP_FROM)


def test_a_purchase_whose_answer_was_lost_is_found_again_by_its_reference(
    fake: FakeShippo, shippo: ShippoCarrier
) -> None:
    rate = shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL).choose("cheapest")
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    with pytest.raises(PurchaseUncertain):
        shippo.purchase(rate, label_format=LabelFormat.PNG, reference="lv-ref-3")
    assert fake.purchases_by_metadata() == {"lv-ref-3": 1}  # the carrier did buy it
    found = shippo.find_purchase(rate=rate, reference="lv-ref-3")
    assert found is not None and found.label_format is LabelFormat.PNG
    assert shippo.label(found).content.startswith(b"\x89PNG")
    assert shippo.find_purchase(rate=rate, reference="another") is None


def test_a_rate_withdrawn_between_quote_and_purchase_buys_nothing(fake: FakeShippo, shippo: ShippoCarrier) -> None:
    quote = shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    fake.reprice()
    with pytest.raises(RateChanged):
        shippo.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-ref-4")
    assert fake.purchases_by_metadata() == {}
    assert shippo.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-4") is None


def test_an_address_the_carrier_refuses_is_named_by_its_codes_only(fake: FakeShippo, shippo: ShippoCarrier) -> None:
    fake.reject_address()
    with pytest.raises(AddressRejected) as refused:
        shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    assert refused.value.reasons == ("Invalid City/State/Zip",)
    assert_no_pii(str(refused.value), "an error message")


def test_an_outage_is_retried_then_reported_with_nothing_bought(fake: FakeShippo, shippo: ShippoCarrier) -> None:
    fake.fail(status=503, count=FAST.attempts, operation="CreateShipment")
    with pytest.raises(CarrierUnavailable, match="HTTP 503"):
        shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    fake.fail(status=503, count=FAST.attempts - 1, operation="CreateShipment")
    quote = shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)  # recovered within the retries
    fake.fail(status=503, operation="CreateTransaction")
    with pytest.raises(PurchaseUncertain):  # a 5xx to a purchase is never taken as "nothing bought"
        shippo.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-ref-5")
    assert shippo.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-5") is None
    assert fake.purchases_by_metadata() == {}


def test_a_throttled_purchase_is_retried_and_bought_once() -> None:
    with FakeShippo(purchase_rate=5, purchase_burst=1) as fake:
        client = shippo_client(fake, dataclasses.replace(FAST, attempts=6, base_delay=0.05, purchase_rate=50))
        quote = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
        client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="a")
        client.purchase(quote.choose("fastest"), label_format=LabelFormat.PDF, reference="b")  # waits for a token
        client.purchase(quote.choose("usps_priority"), label_format=LabelFormat.PDF, reference="c")
        assert fake.throttled >= 1 and fake.purchases_by_metadata() == {"a": 1, "b": 1, "c": 1}
        client.close()


def test_a_wrong_token_is_refused_without_retrying(fake: FakeShippo) -> None:
    client = ShippoCarrier(ShippoCredentials("shippo_test_wrong"), api_base=fake.base_url, policy=FAST)
    with pytest.raises(CarrierAuthRefused):
        client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    assert fake.calls["CreateShipment"] == 1
    client.close()


def test_a_service_no_rate_offers_is_a_clear_error(shippo: ShippoCarrier) -> None:
    quote = shippo.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    with pytest.raises(NoMatchingRate, match="no rate for the service"):
        quote.choose("fedex_overnight")


def test_the_fake_refuses_a_body_shippos_schema_refuses(fake: FakeShippo) -> None:
    import httpx

    from connectors.fake_shippo import DEFAULT_TOKEN

    headers = {"Authorization": f"ShippoToken {DEFAULT_TOKEN}"}
    answer = httpx.post(f"{fake.base_url}/shipments", json={"parcels": "none"}, headers=headers)
    assert answer.status_code == 400
    answer = httpx.post(f"{fake.base_url}/transactions", json={"label_file_type": "PDF_4x6"}, headers=headers)
    assert answer.status_code == 400
