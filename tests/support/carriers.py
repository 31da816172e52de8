"""Carrier test data: the seller's ship-from address, a parcel, Shippo, EasyPost, Amazon Shipping and Amazon
Merchant Fulfillment clients and accounts on their fakes, and shipment requests."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from connectors.carriers.amazon_mfn import MerchantFulfillmentCarrier, MerchantFulfillmentCredentials
from connectors.carriers.amazon_shipping import AmazonShippingCarrier, AmazonShippingCredentials, AmazonShippingPolicy
from connectors.carriers.easypost.client import EasyPostCarrier, EasyPostCredentials
from connectors.carriers.http import CarrierPolicy
from connectors.carriers.interfaces import Carrier, LabelFormat, Parcel
from connectors.carriers.registry import AMAZON_MFN, AMAZON_SHIPPING, EASYPOST, SHIPPO
from connectors.carriers.shipments import CarrierFactory, ShipmentRequest
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials, ShippoPolicy
from connectors.fake_amazon import FakeAmazon
from connectors.fake_amazon_shipping import FakeAmazonShipping
from connectors.fake_easypost import DEFAULT_KEY, FakeEasyPost
from connectors.fake_shippo import DEFAULT_TOKEN, FakeShippo
from vault.carrier_accounts import connect_carrier_account
from vault.keys import KeyManager
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount, Order
from vault.records import LabelRecord, ShipFrom

#: The sample seller's warehouse, as a carrier account stores it.
SHIP_FROM_VALUES: dict[str, Any] = {
    "name": "Test Seller Dispatch",
    "company": "Test Seller Ltd",
    "street1": "215 Clayton St.",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94117",
    "country_code": "US",
    "phone": "+1 555 341 9393",
}
SHIP_FROM = ShipFrom(**SHIP_FROM_VALUES)
PARCEL = Parcel(weight_g=850, length_mm=300, width_mm=200, height_mm=120)
#: A quick policy for tests: a short read timeout (a lost purchase costs ``read_timeout``), fast retries.
FAST = ShippoPolicy(attempts=3, base_delay=0.01, max_delay=0.05, connect_timeout=2.0, read_timeout=1.0)


def shippo_client(fake: FakeShippo, policy: ShippoPolicy = FAST) -> ShippoCarrier:
    """A Shippo client with the fake's token, on the fake."""
    return ShippoCarrier(ShippoCredentials(DEFAULT_TOKEN), api_base=fake.base_url, policy=policy)


def easypost_client(fake: FakeEasyPost, policy: ShippoPolicy = FAST) -> EasyPostCarrier:
    """An EasyPost client with the fake's API key, on the fake."""
    return EasyPostCarrier(EasyPostCredentials(DEFAULT_KEY), api_base=fake.base_url, policy=policy)


def fast_carriers(policy: ShippoPolicy = FAST) -> CarrierFactory:
    """The carrier factory the domain tests use: the real client of the account's carrier on the account's
    endpoint (a fake), with a short read timeout so a lost answer costs a second, not thirty."""

    def build(account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        assert account.api_endpoint is not None, "test accounts point at a fake"
        if account.carrier == EASYPOST.code:
            credentials = EasyPostCredentials.from_secrets(secrets)
            return EasyPostCarrier(credentials, api_base=account.api_endpoint, policy=policy)
        if account.carrier == AMAZON_SHIPPING.code:
            amazon = AmazonShippingCredentials.from_secrets(secrets)
            return AmazonShippingCarrier(amazon, api_base=account.api_endpoint, policy=policy)
        if account.carrier == AMAZON_MFN.code:
            mfn = MerchantFulfillmentCredentials.from_secrets(secrets)
            return MerchantFulfillmentCarrier(mfn, api_base=account.api_endpoint, policy=policy)
        return ShippoCarrier(ShippoCredentials.from_secrets(secrets), api_base=account.api_endpoint, policy=policy)

    return build


def connect_fake_shippo(
    session: Session, keys: KeyManager, tenant_id: int, fake: FakeShippo, *, name: str = "Shippo"
) -> CarrierAccount:
    """A committed Shippo account of the tenant on the fake, with the fake's token."""
    account = connect_carrier_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        carrier="shippo",
        name=name,
        secrets={"api_token": DEFAULT_TOKEN},
        ship_from=SHIP_FROM_VALUES,
        test_mode=True,
        api_endpoint=fake.base_url,
        endpoints=EndpointPolicy(api=SHIPPO.api_hosts, overrides=frozenset({fake.base_url})),
        actor="test",
    )
    session.commit()
    return account


def connect_fake_easypost(
    session: Session, keys: KeyManager, tenant_id: int, fake: FakeEasyPost, *, name: str = "EasyPost"
) -> CarrierAccount:
    """A committed EasyPost account of the tenant on the fake, with the fake's API key."""
    account = connect_carrier_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        carrier=EASYPOST.code,
        name=name,
        secrets={"api_key": DEFAULT_KEY},
        ship_from=SHIP_FROM_VALUES,
        test_mode=True,
        api_endpoint=fake.base_url,
        endpoints=EndpointPolicy(api=EASYPOST.api_hosts, overrides=frozenset({fake.base_url})),
        actor="test",
    )
    session.commit()
    return account


def ship_request(order: Order, **overrides: Any) -> ShipmentRequest:
    """A request to ship ``order`` in the sample parcel, cheapest service, as a PDF label."""
    values: dict[str, Any] = {
        "marketplace": order.marketplace,
        "order_id": order.external_order_id,
        "parcel": PARCEL,
        "service": "cheapest",
        "label_format": LabelFormat.PDF,
        **overrides,
    }
    return ShipmentRequest(**values)


# --- Amazon Shipping ----------------------------------------------------------------------------------------

#: The Amazon Shipping client's quick test policy: :data:`FAST` with Amazon's default print options.
FAST_AMAZON = AmazonShippingPolicy.of(FAST)


def amazon_address(record: LabelRecord) -> dict[str, Any]:
    """An order's ship-to as Amazon keeps it (its ``Address``): what the fake Amazon Shipping is told it has for
    an Amazon order (:meth:`FakeAmazonShipping.know_orders`)."""
    out = {
        "name": record.name,
        "companyName": record.company,
        "addressLine1": record.address_line1,
        "addressLine2": record.address_line2,
        "city": record.city,
        "stateOrRegion": record.state_or_region or "",
        "postalCode": record.postal_code or "",
        "countryCode": record.country_code,
    }
    return {k: v for k, v in out.items() if v is not None}


def amazon_shipping_client(fake: FakeAmazonShipping, policy: CarrierPolicy = FAST_AMAZON) -> AmazonShippingCarrier:
    """An Amazon Shipping client with the fake seller's LWA grant, on the fake (its LWA too)."""
    credentials = AmazonShippingCredentials.from_secrets(fake.seller.secrets())
    return AmazonShippingCarrier(credentials, api_base=fake.base_url, policy=policy)


def fast_amazon_carriers(policy: CarrierPolicy = FAST_AMAZON) -> CarrierFactory:
    """The carrier factory for Amazon Shipping accounts on the fake, with a short read timeout."""

    def build(account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        assert account.api_endpoint is not None, "test accounts point at a fake"
        credentials = AmazonShippingCredentials.from_secrets(secrets)
        return AmazonShippingCarrier(credentials, api_base=account.api_endpoint, policy=policy)

    return build


def connect_fake_amazon_shipping(
    session: Session, keys: KeyManager, tenant_id: int, fake: FakeAmazonShipping, *, name: str = "Amazon Shipping"
) -> CarrierAccount:
    """A committed Amazon Shipping account of the tenant on the fake, with the fake seller's LWA grant."""
    account = connect_carrier_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        carrier=AMAZON_SHIPPING.code,
        name=name,
        secrets=fake.seller.secrets(),
        ship_from=SHIP_FROM_VALUES,
        test_mode=True,
        api_endpoint=fake.base_url,
        endpoints=EndpointPolicy(api=AMAZON_SHIPPING.api_hosts, overrides=frozenset({fake.base_url})),
        actor="test",
    )
    session.commit()
    return account


# --- Amazon Merchant Fulfillment ----------------------------------------------------------------------------


def mfn_secrets(fake: FakeAmazon) -> dict[str, str]:
    """The credentials a Merchant Fulfillment account stores for the fake marketplace's default seller."""
    seller = fake.seller()
    return {"client_id": seller.client_id, "client_secret": seller.client_secret,
            "refresh_token": seller.refresh_token, "region": "na"}  # fmt: skip


def mfn_client(fake: FakeAmazon, policy: CarrierPolicy = FAST) -> MerchantFulfillmentCarrier:
    """A Merchant Fulfillment client with the fake seller's LWA grant, on the fake marketplace (its LWA too)."""
    credentials = MerchantFulfillmentCredentials.from_secrets(mfn_secrets(fake))
    return MerchantFulfillmentCarrier(credentials, api_base=fake.base_url, policy=policy)


def connect_fake_amazon_mfn(
    session: Session, keys: KeyManager, tenant_id: int, fake: FakeAmazon, *, name: str = "Amazon MFN"
) -> CarrierAccount:
    """A committed Merchant Fulfillment account of the tenant on the fake marketplace."""
    account = connect_carrier_account(
        session,
        keys=keys,
        tenant_id=tenant_id,
        carrier=AMAZON_MFN.code,
        name=name,
        secrets=mfn_secrets(fake),
        ship_from={**SHIP_FROM_VALUES, "email": "dispatch@seller.example"},
        test_mode=True,
        api_endpoint=fake.base_url,
        endpoints=EndpointPolicy(api=AMAZON_MFN.api_hosts, overrides=frozenset({fake.base_url})),
        actor="test",
    )
    session.commit()
    return account
