"""A carrier account's options (``CarrierAccount.options``, declared per carrier in the registry): checked with
an error that names the option and never the value, stored, and applied to the client the registry's factory
builds for the account. An Amazon Shipping account with ``one_click`` on buys with ``oneClickShipment``; one
with ``ship_to_from_order`` off sends the ship-to and records it as shared; a change reaches the next purchase
through the carrier pool. Against the fake Amazon Shipping over real HTTP, the shipment flow on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from connectors.carriers.amazon_mfn import MerchantFulfillmentCarrier
from connectors.carriers.amazon_shipping import AmazonShippingCarrier, AmazonShippingPolicy
from connectors.carriers.pool import CarrierPool
from connectors.carriers.registry import (
    AMAZON_MFN,
    AMAZON_SHIPPING,
    CARRIERS,
    EASYPOST,
    SHIPPO,
    CarrierOptionError,
    carrier_factory,
    describe_options,
)
from connectors.fake_amazon_shipping import FakeAmazonShipping
from connectors.samples import sample_label
from tests.support.carriers import FAST, SHIP_FROM_VALUES, amazon_address
from tests.support.shipments import audit_events, buy
from tests.support.vault import make_account, make_orders
from vault.carrier_accounts import connect_carrier_account, set_carrier_account_options
from vault.errors import CarrierSetupError
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount, Order, Tenant

pytestmark = pytest.mark.usefixtures("no_pii_in_logs")

SECRETISH = "Atzr|IwEB-looks-like-a-secret"


# --- the registry -------------------------------------------------------------------------------------------


def test_each_carrier_declares_the_options_its_client_honours() -> None:
    assert [o.name for o in AMAZON_SHIPPING.options] == ["ship_to_from_order", "one_click", "dpi"]
    assert [o.name for o in AMAZON_MFN.options] == ["dpi"]
    assert SHIPPO.options == () and EASYPOST.options == ()  # their clients have no print option to set
    defaults = AmazonShippingPolicy()
    for platform in CARRIERS.values():
        for option in platform.options:
            assert option.description and len(option.description) < 300
            assert platform.policy_of is not None
            assert getattr(platform.policy_of(None), option.name) == option.default  # a field of the policy
    assert AMAZON_SHIPPING.effective_options({}) == {
        "ship_to_from_order": defaults.ship_to_from_order,
        "one_click": defaults.one_click,
        "dpi": defaults.dpi,
    }
    assert describe_options(AMAZON_SHIPPING, {"one_click": True}) == "ship_to_from_order=true one_click=true dpi=203"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"one_click": "true", "dpi": "300"}, {"one_click": True, "dpi": 300}),
        ({"ship_to_from_order": "off"}, {"ship_to_from_order": False}),
        ({"one_click": False, "dpi": 203}, {"one_click": False, "dpi": 203}),
    ],
)
def test_option_values_are_parsed_to_their_type(raw: dict[str, object], expected: dict[str, object]) -> None:
    assert AMAZON_SHIPPING.parse_options(raw) == expected


@pytest.mark.parametrize(
    ("code", "raw", "message"),
    [
        ("amazonshipping", {"one_click": SECRETISH}, "the Amazon Shipping option one_click takes true or false"),
        ("amazonshipping", {"dpi": "600"}, "the Amazon Shipping option dpi takes 203 or 300"),
        ("amazonshipping", {"dpi": True}, "the Amazon Shipping option dpi takes 203 or 300"),
        ("amazonshipping", {"label_size": "4x6"}, "Amazon Shipping has no option 'label_size' (its options: "),
        ("shippo", {"dpi": "300"}, "Shippo has no option 'dpi' (its options: none)"),
        (
            "amazonmfn",
            {"one_click": "true"},
            "Amazon Merchant Fulfillment has no option 'one_click' (its options: dpi)",
        ),
    ],
)
def test_a_bad_option_is_a_clear_error_naming_it_never_its_value(
    code: str, raw: dict[str, object], message: str
) -> None:
    with pytest.raises(CarrierOptionError) as refused:
        CARRIERS[code].parse_options(raw)
    assert str(refused.value).startswith(message)
    assert SECRETISH not in str(refused.value) and isinstance(refused.value, CarrierSetupError)


def test_the_factory_applies_the_accounts_options_to_the_clients_policy() -> None:
    build = carrier_factory(frozenset({"http://127.0.0.1:1"}), policy=FAST)
    amazon = CarrierAccount(id=1, tenant_id=1, carrier="amazonshipping", name="A", api_endpoint="http://127.0.0.1:1")
    amazon.options = {"one_click": True, "dpi": 300, "gone_option": 1}  # a name no longer declared is ignored
    secrets = {"client_id": "c", "client_secret": "s", "refresh_token": "r", "business_id": "AmazonShipping_US"}
    client = build(amazon, secrets)
    try:
        assert isinstance(client, AmazonShippingCarrier)
        assert client.policy.one_click and client.policy.dpi == 300 and client.policy.ship_to_from_order
        assert client.policy.read_timeout == FAST.read_timeout  # the shared policy's timeouts kept
    finally:
        client.close()
    mfn = CarrierAccount(id=2, tenant_id=1, carrier="amazonmfn", name="M", api_endpoint="http://127.0.0.1:1")
    mfn.options = {"dpi": 300}
    mfn_client = build(mfn, {**secrets, "region": "na"})
    try:
        assert isinstance(mfn_client, MerchantFulfillmentCarrier) and mfn_client.policy.dpi == 300
    finally:
        mfn_client.close()
    amazon.options = {"dpi": 600}  # a stored value the carrier doesn't accept: refused, nothing built
    with pytest.raises(CarrierSetupError, match="dpi takes 203 or 300"):
        build(amazon, secrets)


# --- the shipment flow, both databases ----------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAmazonShipping]:
    with FakeAmazonShipping() as carrier:
        yield carrier
        assert carrier.validation_errors == [] and carrier.server_errors == []


@pytest.fixture
def orders(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazonShipping) -> list[Order]:
    """Three Amazon orders in the vault, whose addresses Amazon has too."""
    made = make_orders(session, keys, make_account(session, tenant), 3)
    session.commit()
    fake.know_orders({o.external_order_id: amazon_address(sample_label(i)) for i, o in enumerate(made)})
    return made


def _connect(session: Session, keys: KeyManager, tenant: Tenant, fake: FakeAmazonShipping, **raw: str) -> int:
    account = connect_carrier_account(
        session,
        keys=keys,
        tenant_id=tenant.id,
        carrier=AMAZON_SHIPPING.code,
        name="Amazon Shipping",
        secrets=fake.seller.secrets(),
        ship_from=SHIP_FROM_VALUES,
        test_mode=True,
        api_endpoint=fake.base_url,
        endpoints=EndpointPolicy(api=AMAZON_SHIPPING.api_hosts, overrides=frozenset({fake.base_url})),
        options=AMAZON_SHIPPING.parse_options(raw),
        actor="test",
    )
    session.commit()
    return account.id


def test_an_account_with_one_click_buys_with_one_click_shipment_and_a_change_reaches_the_next_purchase(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    account_id = _connect(session, keys, tenant, fake, one_click="true")
    session.expire_all()
    assert session.get_one(CarrierAccount, account_id).options == {"one_click": True}  # as stored, reloaded
    pool = CarrierPool(carrier_factory(frozenset({fake.base_url}), policy=FAST))
    try:
        first = buy(session, keys, orders[0], "k1", carriers=lambda: pool)
        assert first.status == "bought" and first.fields_sent == []
        assert fake.calls["oneClickShipment"] == 1 and fake.calls["purchaseShipment"] == 0
        account = session.get_one(CarrierAccount, account_id)
        changed = set_carrier_account_options(session, account=account, options={"one_click": False}, actor="test")
        session.commit()
        assert changed == {"one_click": False}
        [event] = audit_events(session, tenant, "carrier.options")
        assert event.details == {"carrier_account_id": account_id, "carrier": "amazonshipping", "options": changed}
        second = buy(session, keys, orders[1], "k2", carriers=lambda: pool)
        assert second.status == "bought"
        assert fake.calls["oneClickShipment"] == 1 and fake.calls["purchaseShipment"] == 1  # the new option
        assert pool.built == 2  # the options changed: a new client, the old one retired
        assert set_carrier_account_options(session, account=account, options={"one_click": False}, actor="t") == {}
        session.commit()
        assert len(audit_events(session, tenant, "carrier.options")) == 1  # nothing changed, nothing audited
    finally:
        pool.close()


def test_an_account_sending_the_ship_to_for_amazon_orders_records_it_as_shared(
    session: Session, keys: KeyManager, tenant: Tenant, orders: list[Order], fake: FakeAmazonShipping
) -> None:
    _connect(session, keys, tenant, fake, ship_to_from_order="false")
    pool = CarrierPool(carrier_factory(frozenset({fake.base_url}), policy=FAST))
    try:
        shipment = buy(session, keys, orders[0], carriers=lambda: pool)
    finally:
        pool.close()
    assert shipment.status == "bought" and "address_line1" in (shipment.fields_sent or [])
    [event] = audit_events(session, tenant, "shipment.purchase")
    assert "name" in event.details["fields_sent"]
    assert [op for op, text in fake.requests if '"shipTo"' in text] == ["getRates"]
    [connected] = audit_events(session, tenant, "carrier.connect")
    assert connected.details["options"] == {"ship_to_from_order": False}


def test_a_stored_option_is_flags_and_numbers_only(session: Session, keys: KeyManager, tenant: Tenant) -> None:
    with pytest.raises(CarrierSetupError, match="not a flag or a number"):
        connect_carrier_account(
            session, keys=keys, tenant_id=tenant.id, carrier="amazonshipping", name="X",
            secrets={"client_id": "a"}, ship_from=SHIP_FROM_VALUES, options={"note": "free text"},  # type: ignore[dict-item]
            actor="test",
        )  # fmt: skip
    assert audit_events(session, tenant, "carrier.connect") == []  # refused before anything was stored
