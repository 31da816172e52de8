"""What is Amazon Shipping v2's own, against the fake Amazon Shipping (real HTTP, Amazon's own model): its
services, units, channel and business header, the document specification and dpi of each format, a lost
purchase Amazon cannot settle (never answered "not bought"), a quote expired by time, Amazon's text never
passed on, a refused cancel, a purchase throttled past the retries, the LWA grant (one access token for a
wave), the region's host, the registry's client, and Amazon's static sandbox (Shipping v2 and Merchant
Fulfillment v0) replayed through the fake. The shared carrier contract (a label quoted, bought, printed,
tracked and voided; a lost answer, a withdrawn rate, a refused address, an outage, throttling, wrong
credentials) runs for Amazon Shipping in ``test_carriers.py``."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from connectors.carriers.amazon_shipping import AmazonShippingCarrier, AmazonShippingCredentials
from connectors.carriers.amazon_shipping.client import LIVE_HOSTS, AmazonShippingPolicy, lwa_url_for, region_base
from connectors.carriers.interfaces import (
    AddressRejected,
    CarrierAuthRefused,
    CarrierUnavailable,
    LabelFormat,
    OrderContext,
    PurchaseUncertain,
    RateChanged,
    TrackingStatus,
    VoidRefused,
    VoidStatus,
)
from connectors.carriers.registry import carrier_factory
from connectors.fake_amazon.models import SHIPPING_APIS, all_examples, operations, schema_errors
from connectors.fake_amazon_shipping import FakeAmazonShipping, Seller
from tests.support.buyers import BERLIN, SEATTLE
from tests.support.carriers import FAST_AMAZON, PARCEL, SHIP_FROM, amazon_shipping_client
from tests.support.world import assert_no_pii
from vault.models import CarrierAccount

AMAZON_ORDER = OrderContext("amazon", "112-0000000-0000001")


@pytest.fixture
def fake() -> Iterator[FakeAmazonShipping]:
    """A running fake Amazon Shipping; every body it served must match Amazon's model."""
    with FakeAmazonShipping() as carrier:
        yield carrier
        assert carrier.validation_errors == []
        assert carrier.server_errors == []


@pytest.fixture
def amazon(fake: FakeAmazonShipping) -> Iterator[AmazonShippingCarrier]:
    client = amazon_shipping_client(fake)
    yield client
    client.close()


def test_amazon_quotes_its_own_services_and_a_cancelled_pickup_tracks_as_failed(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    quote = amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=AMAZON_ORDER)
    assert {r.service for r in quote.rates} == {"SWA-US-GROUND", "SWA-US-2DAY", "UPS_NEXT_DAY_AIR"}
    cheapest = quote.choose("cheapest")
    assert cheapest.service == "SWA-US-GROUND" and cheapest.currency == "USD"
    bought = amazon.purchase(cheapest, label_format=LabelFormat.PDF, reference="lv-ref-1")
    assert bought.tracking_number.startswith("TBA")
    assert bought.purchase_id == fake.shipments()[0]["shipment_id"] + "|1"  # shipment and package
    assert amazon.void(bought) is VoidStatus.VOIDED
    assert amazon.tracking(bought).status is TrackingStatus.FAILURE  # the pickup is cancelled


def test_the_request_is_in_amazons_units_channel_and_business(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=AMAZON_ORDER)
    sent = fake.last_requests["getRates"]
    package = sent["body"]["packages"][0]
    assert package["dimensions"] == {"length": 30.0, "width": 20.0, "height": 12.0, "unit": "CENTIMETER"}
    assert package["weight"] == {"value": 850, "unit": "GRAM"}
    assert sent["body"]["channelDetails"] == {
        "channelType": "AMAZON",
        "amazonOrderDetails": {"orderId": AMAZON_ORDER.order_id},
    }
    assert sent["headers"]["X-Amzn-Shipping-Business-Id"] == "AmazonShipping_US"
    for order in (None, OrderContext("shopify", "1001")):
        amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL, order=order)
        assert fake.last_requests["getRates"]["body"]["channelDetails"] == {"channelType": "EXTERNAL"}


@pytest.mark.parametrize(
    ("label_format", "dpi"), [(LabelFormat.PDF, None), (LabelFormat.ZPL, 203), (LabelFormat.PNG, 203)]
)
def test_each_format_is_bought_and_printed_as_asked(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier, label_format: LabelFormat, dpi: int | None
) -> None:
    rate = amazon.quote(ship_from=SHIP_FROM, ship_to=BERLIN, parcel=PARCEL).choose("fastest")
    bought = amazon.purchase(rate, label_format=label_format, reference=f"lv-{label_format}")
    spec = fake.last_requests["purchaseShipment"]["body"]["requestedDocumentSpecification"]
    assert spec["format"] == label_format.name and spec.get("dpi") == dpi
    assert spec["size"] == {"width": 4.0, "length": 6.0, "unit": "INCH"} and spec["requestedDocumentTypes"] == ["LABEL"]
    label = amazon.label(bought)
    assert label.label_format is label_format
    if label_format is LabelFormat.ZPL:
        assert label.content.startswith(b"^XA") and bought.tracking_number.encode() in label.content
    elif label_format is LabelFormat.PNG:
        assert Image.open(io.BytesIO(label.content)).size == (812, 1218)
    else:
        assert label.content.startswith(b"%PDF")
    for value in (rate, bought, label):
        assert_no_pii(repr(value), "a repr")


@pytest.mark.parametrize(
    ("label_format", "dpi"), [(LabelFormat.ZPL, 300), (LabelFormat.PNG, 300), (LabelFormat.ZPL, 203)]
)
def test_a_label_is_drawn_for_the_printers_resolution(
    fake: FakeAmazonShipping, label_format: LabelFormat, dpi: int
) -> None:
    client = amazon_shipping_client(fake, dataclasses.replace(AmazonShippingPolicy.of(FAST_AMAZON), dpi=dpi))
    try:
        rate = client.quote(ship_from=SHIP_FROM, ship_to=BERLIN, parcel=PARCEL).choose("fastest")
        bought = client.purchase(rate, label_format=label_format, reference=f"lv-dpi-{label_format}-{dpi}")
        spec = fake.last_requests["purchaseShipment"]["body"]["requestedDocumentSpecification"]
        assert spec["dpi"] == dpi
        label = client.label(bought)
        if label_format is LabelFormat.ZPL:  # 4 x 6 in of that printer's dots
            assert f"^PW{4 * dpi}^LL{6 * dpi}".encode() in label.content
        else:
            image = Image.open(io.BytesIO(label.content))
            assert image.size == (4 * dpi, 6 * dpi) and round(image.info["dpi"][0]) == dpi
    finally:
        client.close()


def test_a_lost_purchase_amazon_cannot_settle_stays_uncertain_never_not_bought(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    rate = amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL).choose("cheapest")
    fake.expire_quotes()
    with pytest.raises(PurchaseUncertain):
        amazon.find_purchase(rate=rate, reference="lv-ref-6")
    fake.fail(status=503, count=1, operation="purchaseShipment")
    with pytest.raises(PurchaseUncertain):
        amazon.find_purchase(rate=rate, reference="lv-ref-6")
    assert fake.purchases_by_key() == {}


def test_the_quote_expires_by_time_too() -> None:
    with FakeAmazonShipping(request_token_ttl=0.0) as fake:
        client = amazon_shipping_client(fake)
        rate = client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL).choose("cheapest")
        with pytest.raises(RateChanged):
            client.purchase(rate, label_format=LabelFormat.PDF, reference="late")
        client.close()
        assert fake.purchases_by_key() == {} and fake.validation_errors == []


def test_an_address_amazon_refuses_is_named_by_its_code_only(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    fake.reject_address()
    with pytest.raises(AddressRejected) as refused:
        amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    assert refused.value.reasons == ("InvalidRequest",)
    assert_no_pii(str(refused.value), "an error message")
    assert "postal" not in str(refused.value)  # Amazon's text is read, never passed on


def test_a_cancel_amazon_refuses_is_void_refused(fake: FakeAmazonShipping, amazon: AmazonShippingCarrier) -> None:
    rate = amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL).choose("cheapest")
    bought = amazon.purchase(rate, label_format=LabelFormat.PDF, reference="lv-ref-7")
    fake.refuse_cancel()
    with pytest.raises(VoidRefused):
        amazon.void(bought)
    assert amazon.void(bought) is VoidStatus.VOIDED  # the refusal was Amazon's, once


def test_a_purchase_amazon_keeps_throttling_is_refused_with_nothing_bought(
    fake: FakeAmazonShipping, amazon: AmazonShippingCarrier
) -> None:
    # A 429 refuses the request whole, so it is sent again (the contract's throttled wave); past the
    # policy's attempts the purchase is CarrierUnavailable, never uncertain.
    quote = amazon.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    fake.fail(status=429, count=FAST_AMAZON.attempts, operation="purchaseShipment")
    with pytest.raises(CarrierUnavailable, match="throttling"):
        amazon.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-ref-8")
    assert fake.purchases_by_key() == {} and fake.calls["purchaseShipment"] == FAST_AMAZON.attempts


def test_wrong_credentials_are_refused(fake: FakeAmazonShipping) -> None:
    wrong = Seller(client_id=fake.seller.client_id, client_secret="wrong", refresh_token=fake.seller.refresh_token)
    client = AmazonShippingCarrier(
        AmazonShippingCredentials.from_secrets(wrong.secrets()), api_base=fake.base_url, policy=FAST_AMAZON
    )
    with pytest.raises(CarrierAuthRefused) as refused:
        client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
    assert "wrong" not in str(refused.value)
    assert fake.calls["getRates"] == 0
    client.close()
    with pytest.raises(CarrierAuthRefused, match="lack"):
        AmazonShippingCredentials.from_secrets({"client_id": "x"})
    with pytest.raises(CarrierAuthRefused, match="business"):
        AmazonShippingCredentials.from_secrets({**fake.seller.secrets(), "business_id": "AmazonShipping_XX"})


def test_the_host_follows_the_business_region() -> None:
    assert region_base("https://sellingpartnerapi-eu.amazon.com", "AmazonShipping_US") == (
        "https://sellingpartnerapi-na.amazon.com"
    )
    assert region_base("https://sellingpartnerapi-na.amazon.com", "AmazonShipping_JP").endswith("-fe.amazon.com")
    assert region_base("https://sandbox.sellingpartnerapi-na.amazon.com", "AmazonShipping_UK") == (
        "https://sandbox.sellingpartnerapi-eu.amazon.com"
    )
    assert region_base("http://127.0.0.1:9999/", "AmazonShipping_UK") == "http://127.0.0.1:9999"
    assert lwa_url_for("https://sellingpartnerapi-na.amazon.com") == "https://api.amazon.com/auth/o2/token"
    assert lwa_url_for("http://127.0.0.1:9999") == "http://127.0.0.1:9999/auth/o2/token"
    assert min(LIVE_HOSTS).startswith("https://sellingpartnerapi-")  # the registry's default is a live host


def test_the_registry_builds_the_client_for_a_stored_account(fake: FakeAmazonShipping) -> None:
    account = CarrierAccount(carrier="amazonshipping", api_endpoint=fake.base_url)
    client = carrier_factory(frozenset({fake.base_url}))(account, fake.seller.secrets())
    try:
        assert isinstance(client, AmazonShippingCarrier)
        assert client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL).rates
    finally:
        client.close()


def test_the_fake_refuses_a_body_amazons_model_refuses(fake: FakeAmazonShipping, amazon: AmazonShippingCarrier) -> None:
    token = amazon._auth()
    answer = httpx.post(f"{fake.base_url}/shipping/v2/shipments/rates", json={"packages": "none"}, headers=token)
    assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == "InvalidRequest"
    answer = httpx.post(f"{fake.base_url}/shipping/v2/shipments/rates", json={}, headers={"x-amz-access-token": "x"})
    assert answer.status_code == 403


# --- Amazon's static sandbox --------------------------------------------------------------------------------


def _sandbox_request(example: Any) -> tuple[str, str, dict[str, str], Any]:
    op = operations()[example.operation]
    path_params = {p.name: "TEST_CASE_400" for p in op.parameters if p.location == "path"}
    query: dict[str, str] = {}
    body = None
    for name, value in example.parameters.items():
        spec = op.parameter(name)
        if spec is not None and spec.location == "path":
            path_params[name] = value
        elif spec is not None and spec.location == "query":
            query[name] = ",".join(value) if isinstance(value, list) else str(value)
        else:
            body = value
    path = op.path
    for name, value in path_params.items():
        path = path.replace("{" + name + "}", value)
    return op.method, path, query, body


def test_amazons_sandbox_cases_replay_through_the_fake() -> None:
    examples = all_examples(SHIPPING_APIS)
    assert {operations()[e.operation].api for e in examples} == {"mfn", "shippingV2"}
    with FakeAmazonShipping(sandbox=True, speedup=1000) as fake:  # MFN allows 1 call a second
        client = amazon_shipping_client(fake)
        headers = client._auth()
        client.close()
        with httpx.Client(base_url=fake.base_url, timeout=5) as http:
            for example in examples:
                method, path, query, body = _sandbox_request(example)
                response = http.request(method, path, params=query, json=body, headers=headers)
                if schema_errors(example.operation, example.status, example.response):
                    # Amazon's two MFN cases with "" in an enum: the fake never serves a body its model refuses
                    assert response.status_code == 500, (example.operation, example.index)
                    continue
                assert response.status_code == example.status, (example.operation, example.index, response.text)
                assert response.json() == example.response, (example.operation, example.index)
            unmatched = http.get("/mfn/v0/shipments/NO_SUCH_CASE", headers=headers)
            assert unmatched.status_code == 400
        assert fake.validation_errors and all(e.endswith("fails enum") for e in fake.validation_errors)
        assert fake.server_errors == []


def test_clients_of_one_grant_share_one_access_token(fake: FakeAmazonShipping) -> None:
    # The shipment flow builds a client per purchase: a wave must not exchange the refresh token per label.
    for _ in range(3):
        client = amazon_shipping_client(fake)
        client.quote(ship_from=SHIP_FROM, ship_to=SEATTLE, parcel=PARCEL)
        client.close()
    assert fake.calls["lwaToken"] == 1
