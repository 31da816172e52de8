"""The carrier contract (``connectors/carriers/interfaces.py``), run for every carrier against its fake (real
HTTP, the carrier's own schemas): a label is quoted, bought and printed in each format, tracked and voided;
the faults that cost money (a lost answer, a changed rate, a refused address, an outage, throttling) leave
every label bought once or not at all; no error or ``repr`` carries the address.

Each carrier is a :class:`Case`: how to start its fake and build its client, the service token it names, the
fake's operation names for the first call of a quote, for the purchase and for the credentials check, the
codes its address check gives, and how its ``find_purchase`` settles a purchase in doubt. Shippo and EasyPost
look the label up by the vault's reference and can answer "not bought"; Amazon Shipping has no such look-up,
so its ``find_purchase`` is the purchase's idempotent retry (the same ``x-amzn-IdempotencyKey``): it never
answers "not bought", it buys the label a lost request never delivered (once), and it is uncertain when the
quote has gone. The tests that end on ``find_purchase`` assert each carrier's documented way, and nothing else
differs. Carrier-specific behaviour is in ``test_shippo.py``, ``test_easypost.py`` and
``test_amazon_shipping.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pypdf
import pytest

from connectors.carriers.amazon_shipping import AmazonShippingCarrier, AmazonShippingCredentials
from connectors.carriers.easypost.client import EasyPostCarrier, EasyPostCredentials
from connectors.carriers.http import CarrierPolicy
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
from connectors.carriers.registry import CARRIERS
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials
from connectors.fake_amazon_shipping import FakeAmazonShipping, Seller
from connectors.fake_easypost import FakeEasyPost
from connectors.fake_shippo import FakeShippo
from tests.support.buyers import BERLIN, SEATTLE
from tests.support.carriers import FAST, PARCEL, SHIP_FROM, amazon_shipping_client, easypost_client, shippo_client
from tests.support.world import assert_no_pii


@dataclass(frozen=True)
class Case:
    """One carrier, as the shared tests drive it."""

    code: str
    fake: Callable[..., Any]
    client: Callable[[Any, CarrierPolicy], Carrier]
    wrong_client: Callable[[Any], Carrier]
    #: A service token the carrier's quotes carry (not the cheapest).
    service: str
    #: The fake's operation names: the first call of a quote, the purchase.
    quote_op: str
    buy_op: str
    #: The carrier's own codes when its address check refuses the fake's ship-to.
    reasons: tuple[str, ...]
    #: Labels bought per reference, from the fake's side: a double purchase shows as a 2.
    bought: Callable[[Any], collections.Counter[str]]
    #: The fake's operation that checks the account's credentials (refused once, never retried).
    auth_op: str = ""
    #: ``find_purchase`` is the purchase's idempotent retry (Amazon Shipping: no look-up exists), not a
    #: look-up: it never answers "not bought", and with a reference never sent it would buy.
    finds_by_retrying: bool = False

    @property
    def credentials_op(self) -> str:
        """The operation that refuses wrong credentials: ``auth_op``, else the quote's first call."""
        return self.auth_op or self.quote_op


def _wrong_amazon(fake: FakeAmazonShipping) -> AmazonShippingCarrier:
    wrong = Seller(fake.seller.client_id, "amzn1.oa2-cs.v1.wrong", fake.seller.refresh_token)
    return AmazonShippingCarrier(AmazonShippingCredentials.from_secrets(wrong.secrets()), api_base=fake.base_url)


CASES = (
    Case(
        code="shippo",
        fake=FakeShippo,
        client=shippo_client,
        wrong_client=lambda fake: ShippoCarrier(ShippoCredentials("shippo_test_wrong"), api_base=fake.base_url),
        service="usps_priority",
        quote_op="CreateShipment",
        buy_op="CreateTransaction",
        reasons=("Invalid City/State/Zip",),
        bought=lambda fake: fake.purchases_by_metadata(),
    ),
    Case(
        code="easypost",
        fake=FakeEasyPost,
        client=easypost_client,
        wrong_client=lambda fake: EasyPostCarrier(EasyPostCredentials("EZTKwrong"), api_base=fake.base_url),
        service="Priority",
        quote_op="CreateAddress",
        buy_op="BuyShipment",
        reasons=("E.ADDRESS.NOT_FOUND",),
        bought=lambda fake: fake.bought(),
    ),
    Case(
        code="amazonshipping",
        fake=FakeAmazonShipping,
        client=amazon_shipping_client,
        wrong_client=_wrong_amazon,
        service="SWA-US-2DAY",
        quote_op="getRates",
        buy_op="purchaseShipment",
        # Amazon's 400 names no reason of its own beyond its error code (its text can quote the address).
        reasons=("InvalidRequest",),
        bought=lambda fake: fake.purchases_by_key(),
        # The credentials are the LWA grant: Login with Amazon refuses them before any SP-API call.
        auth_op="lwaToken",
        finds_by_retrying=True,
    ),
)


#: Registered carriers these tests can't drive, and where their contract is asserted instead. Amazon Merchant
#: Fulfillment quotes an Amazon order by its id and never takes a ship-to, while every test here quotes a
#: ship-to for no order; the same points (formats, lost answer, outage, credentials, reprs) are asserted there
#: for an Amazon order. No other carrier may be left out.
ELSEWHERE = {"amazonmfn": "tests/connectors/test_amazon_mfn.py"}


def test_every_registered_carrier_runs_the_contract() -> None:
    codes = {case.code for case in CASES}
    assert codes | set(ELSEWHERE) == set(CARRIERS) and not codes & set(ELSEWHERE)


@pytest.fixture(params=CASES, ids=[c.code for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture
def fake(case: Case) -> Iterator[Any]:
    """A running fake of the carrier; every body it served must match the carrier's schemas."""
    with case.fake() as carrier:
        yield carrier
        assert carrier.validation_errors == []
        assert carrier.server_errors == []


@pytest.fixture
def client(case: Case, fake: Any) -> Iterator[Carrier]:
    built = case.client(fake, FAST)
    yield built
    built.close()


def _quote(client: Carrier, reference: str, ship_to: Any = SEATTLE) -> Any:
    return client.quote(ship_from=SHIP_FROM, ship_to=ship_to, parcel=PARCEL, reference=reference)


def test_the_client_keeps_the_carrier_contract(client: Carrier, case: Case) -> None:
    assert isinstance(client, Carrier) and client.carrier == case.code


def test_a_label_is_quoted_bought_printed_tracked_and_voided(case: Case, fake: Any, client: Carrier) -> None:
    quote = _quote(client, "lv-ref-1")
    assert len(quote.rates) >= 3 and quote.shipment_id
    assert {"name", "address_line1", "city", "postal_code", "country_code"} <= set(quote.fields_sent)
    cheapest, fastest = quote.choose("cheapest"), quote.choose("fastest")
    assert cheapest.amount == min(r.amount for r in quote.rates) and fastest.estimated_days == 1
    assert quote.choose(case.service).service == case.service

    bought = client.purchase(cheapest, label_format=LabelFormat.PDF, reference="lv-ref-1")
    assert bought.tracking_number and bought.rate == cheapest and bought.label_format is LabelFormat.PDF
    assert case.bought(fake) == {"lv-ref-1": 1}

    label = client.label(bought)
    text = pypdf.PdfReader(io.BytesIO(label.content)).pages[0].extract_text()
    assert bought.tracking_number in text and SEATTLE.name in text  # the carrier's label for this buyer
    assert label.media_type == "application/pdf"
    assert client.label(bought).content == label.content  # the same label again
    assert client.tracking(bought).status is TrackingStatus.PRE_TRANSIT
    assert client.void(bought) in (VoidStatus.VOIDED, VoidStatus.PENDING)
    with pytest.raises(VoidRefused):
        client.void(bought)


@pytest.mark.parametrize(
    ("label_format", "magic"), [(LabelFormat.ZPL, b"^XA"), (LabelFormat.PNG, b"\x89PNG"), (LabelFormat.PDF, b"%PDF")]
)
def test_the_label_comes_in_the_format_bought(
    client: Carrier, case: Case, fake: Any, label_format: LabelFormat, magic: bytes
) -> None:
    quote = _quote(client, f"lv-fmt-{label_format}")
    bought = client.purchase(quote.choose(case.service), label_format=label_format, reference=f"lv-fmt-{label_format}")
    label = client.label(bought)
    assert label.label_format is label_format and label.content.startswith(magic)
    assert label.media_type == label_format.media_type
    if label_format is LabelFormat.ZPL:
        assert bought.tracking_number.encode() in label.content


def test_nothing_printable_of_a_purchase_shows_the_address_or_the_label_url(client: Carrier) -> None:
    quote = _quote(client, "lv-ref-2", BERLIN)
    bought = client.purchase(quote.choose("cheapest"), label_format=LabelFormat.ZPL, reference="lv-ref-2")
    label = client.label(bought)
    for value in (quote, bought, label):
        assert_no_pii(repr(value), "a repr")
        assert "_labels" not in repr(value) and "_files" not in repr(value)


def test_a_purchase_whose_answer_was_lost_is_found_again_and_never_bought_twice(
    case: Case, fake: Any, client: Carrier
) -> None:
    rate = _quote(client, "lv-ref-3").choose("cheapest")
    fake.lose_purchase(seconds=FAST.read_timeout + 1)
    with pytest.raises(PurchaseUncertain):
        client.purchase(rate, label_format=LabelFormat.PNG, reference="lv-ref-3")
    assert case.bought(fake) == {"lv-ref-3": 1}  # the carrier did buy it
    again = case.client(fake, FAST)  # a fresh client, as after a crash
    found = again.find_purchase(rate=rate, reference="lv-ref-3")
    assert found is not None and found.tracking_number
    assert again.label(dataclasses.replace(found, label_format=LabelFormat.PNG)).content.startswith(b"\x89PNG")
    if case.finds_by_retrying:  # asked again, the retry is recognised again
        twice = again.find_purchase(rate=rate, reference="lv-ref-3")
        assert twice is not None and twice.purchase_id == found.purchase_id
        assert twice.tracking_number == found.tracking_number
    else:  # a look-up finds nothing under a reference never bought
        assert again.find_purchase(rate=rate, reference="another") is None
    again.close()
    assert case.bought(fake) == {"lv-ref-3": 1}


def test_a_rate_withdrawn_between_quote_and_purchase_buys_nothing(case: Case, fake: Any, client: Carrier) -> None:
    quote = _quote(client, "lv-ref-4")
    fake.reprice()
    with pytest.raises(RateChanged):
        client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-ref-4")
    assert case.bought(fake) == {}
    if case.finds_by_retrying:  # the retry meets the same withdrawn rate: uncertain, never "not bought"
        with pytest.raises(PurchaseUncertain):
            client.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-4")
        assert case.bought(fake) == {}
    else:
        assert client.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-4") is None
    requote = _quote(client, "lv-ref-4")  # quoting again gets the new price, which can be bought
    assert client.purchase(requote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-ref-4")
    assert case.bought(fake) == {"lv-ref-4": 1}


def test_an_address_the_carrier_refuses_is_named_by_its_codes_only(case: Case, fake: Any, client: Carrier) -> None:
    fake.reject_address()
    with pytest.raises(AddressRejected) as refused:
        _quote(client, "lv-ref-6")
    assert refused.value.reasons == case.reasons
    assert_no_pii(str(refused.value), "an error message")
    assert case.bought(fake) == {}


def test_an_outage_is_retried_then_reported_with_nothing_bought(case: Case, fake: Any, client: Carrier) -> None:
    fake.fail(status=503, count=FAST.attempts, operation=case.quote_op)
    with pytest.raises(CarrierUnavailable, match="HTTP 503"):
        _quote(client, "lv-ref-5")
    fake.fail(status=503, count=FAST.attempts - 1, operation=case.quote_op)
    quote = _quote(client, "lv-ref-5")  # recovered within the retries
    fake.fail(status=503, operation=case.buy_op)
    with pytest.raises(PurchaseUncertain):  # a 5xx to a purchase is never taken as "nothing bought"
        client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference="lv-ref-5")
    assert case.bought(fake) == {}
    if case.finds_by_retrying:  # the retry is the one purchase the lost request never made, asked twice
        first = client.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-5")
        again = client.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-5")
        assert first is not None and again is not None and first.purchase_id == again.purchase_id
        assert case.bought(fake) == {"lv-ref-5": 1}
    else:
        assert client.find_purchase(rate=quote.choose("cheapest"), reference="lv-ref-5") is None
        assert case.bought(fake) == {}


def test_a_throttled_purchase_is_retried_and_bought_once(case: Case) -> None:
    with case.fake(purchase_rate=5, purchase_burst=1) as fake:
        client = case.client(fake, dataclasses.replace(FAST, attempts=6, base_delay=0.05, purchase_rate=50))
        for reference in ("a", "b", "c"):
            quote = _quote(client, reference)
            client.purchase(quote.choose("cheapest"), label_format=LabelFormat.PDF, reference=reference)
        assert fake.throttled >= 1 and case.bought(fake) == {"a": 1, "b": 1, "c": 1}
        client.close()


def test_wrong_credentials_are_refused_without_retrying(case: Case, fake: Any) -> None:
    client = case.wrong_client(fake)
    with pytest.raises(CarrierAuthRefused):
        _quote(client, "lv-ref-7")
    assert fake.calls[case.credentials_op] == 1
    if case.credentials_op != case.quote_op:  # refused before the quote: the address never went out
        assert fake.calls[case.quote_op] == 0
    client.close()


def test_a_service_no_rate_offers_is_a_clear_error(client: Carrier) -> None:
    quote = _quote(client, "lv-ref-8")
    with pytest.raises(NoMatchingRate, match="no rate for the service"):
        quote.choose("fedex_overnight")
