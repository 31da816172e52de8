"""What is EasyPost's own, beyond the carrier contract every carrier passes (``test_carriers.py``): the key
goes as Basic auth; the ship-to goes once, to EasyPost's strict address verification, and the shipment names
the verified address by id; the parcel is in ounces and inches, rounded up; the reference stays on the
shipment; a label is bought once in the shipment's format and converted on request; a refund EasyPost
rejects is :class:`VoidRefused`; and the fake refuses a body EasyPost's models refuse."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.carriers.easypost.client import EasyPostCarrier, EasyPostCredentials
from connectors.carriers.interfaces import CarrierBadResponse, LabelFormat, Parcel, TrackingStatus, VoidRefused
from connectors.fake_easypost import DEFAULT_KEY, FakeEasyPost
from tests.support.buyers import SEATTLE
from tests.support.carriers import FAST, PARCEL, SHIP_FROM, easypost_client


@pytest.fixture
def fake() -> Iterator[FakeEasyPost]:
    """A running fake EasyPost; every body it served must match EasyPost's models."""
    with FakeEasyPost() as carrier:
        yield carrier
        assert carrier.validation_errors == []
        assert carrier.server_errors == []


@pytest.fixture
def easypost(fake: FakeEasyPost) -> Iterator[EasyPostCarrier]:
    client = easypost_client(fake)
    yield client
    client.close()


class _Recorder(httpx.BaseTransport):
    """The real network under the client, recording each request's method, path and body (the test reads the
    bodies it made itself)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_the_address_goes_once_to_strict_verification_and_the_parcel_in_ounces_and_inches(fake: FakeEasyPost) -> None:
    recorder = _Recorder()
    client = EasyPostCarrier(EasyPostCredentials(DEFAULT_KEY), api_base=fake.base_url, policy=FAST, transport=recorder)
    client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=Parcel(850, 300, 200, 121), reference="lv-1")
    address, shipment = recorder.requests[:2]
    assert (address.method, address.url.path) == ("POST", "/v2/addresses")
    assert address.headers["Authorization"] == "Basic " + base64.b64encode(f"{DEFAULT_KEY}:".encode()).decode()
    sent: dict[str, Any] = httpx.Response(200, content=address.content).json()
    assert sent["verify_strict"] is True and sent["address"]["name"] == SEATTLE.name
    body: dict[str, Any] = httpx.Response(200, content=shipment.content).json()["shipment"]
    assert set(body["to_address"]) == {"id"}  # the verified address, by id: the ship-to went out once
    assert body["parcel"] == {"length": 11.9, "width": 7.9, "height": 4.8, "weight": 30.0}  # rounded up
    assert body["options"] == {"label_format": "PNG"} and body["reference"] == "lv-1"
    assert all(r.url.query == b"" for r in recorder.requests)  # nothing in a URL but ids
    client.close()


def test_the_reference_stays_on_the_shipment_and_a_label_is_converted_on_request(
    fake: FakeEasyPost, easypost: EasyPostCarrier
) -> None:
    quote = easypost.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, reference="lv-2")
    bought = easypost.purchase(quote.choose("Priority"), label_format=LabelFormat.ZPL, reference="lv-2")
    (shipment,) = fake.shipments()
    assert shipment["reference"] == "lv-2" and shipment["selected_rate"]["service"] == "Priority"
    assert shipment["postage_label"]["label_file_type"] == "image/png"  # bought in the shipment's format
    assert shipment["postage_label"]["label_zpl_url"] is None
    assert easypost.label(bought).content.startswith(b"^XA")
    assert fake.calls["GetShipmentLabel"] == 1
    assert fake.shipments()[0]["postage_label"]["label_zpl_url"]  # EasyPost converted it
    assert easypost.tracking(bought).status is TrackingStatus.PRE_TRANSIT
    found = easypost.find_purchase(rate=bought.rate, reference="lv-2")
    assert found is not None and found.purchase_id == bought.purchase_id and found.label_format is LabelFormat.PNG


def test_a_second_buy_of_the_same_shipment_buys_nothing(fake: FakeEasyPost, easypost: EasyPostCarrier) -> None:
    quote = easypost.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, reference="lv-3")
    easypost.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-3")
    with pytest.raises(CarrierBadResponse, match="HTTP 422"):
        easypost.purchase(quote.choose("fastest"), label_format=LabelFormat.PDF, reference="lv-3")
    assert fake.bought() == {"lv-3": 1}


def test_a_refund_easypost_rejects_is_void_refused(fake: FakeEasyPost, easypost: EasyPostCarrier) -> None:
    quote = easypost.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, reference="lv-4")
    bought = easypost.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-4")
    fake.refuse_refund()
    with pytest.raises(VoidRefused):
        easypost.void(bought)
    assert fake.shipments()[0]["refund_status"] == "rejected"


def test_the_fake_refuses_a_body_easyposts_models_refuse(fake: FakeEasyPost) -> None:
    auth = (DEFAULT_KEY, "")
    answer = httpx.post(f"{fake.base_url}/v2/shipments", json={"shipment": {"parcel": "none"}}, auth=auth)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "PARAMETER.INVALID"
    answer = httpx.post(f"{fake.base_url}/v2/addresses", json={"address": {"zip": 94117}}, auth=auth)
    assert answer.status_code == 422
    assert httpx.get(f"{fake.base_url}/v2/rates/rate_x", auth=auth).status_code == 404
