"""The carriers labelvault buys labels from, each declared once: its code, its name, the credentials it takes,
its own API hosts, and how to build a client for a stored account.

The CLI, the dashboard and the shipment API ask this registry and name no carrier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from connectors.carriers.amazon_mfn.client import LIVE_HOSTS as AMAZON_MFN_HOSTS
from connectors.carriers.amazon_mfn.client import (
    REGION_CODES,
    MerchantFulfillmentCarrier,
    MerchantFulfillmentCredentials,
)
from connectors.carriers.amazon_shipping.client import BUSINESSES, AmazonShippingCarrier, AmazonShippingCredentials
from connectors.carriers.amazon_shipping.client import LIVE_HOSTS as AMAZON_SHIPPING_HOSTS
from connectors.carriers.easypost.client import API_BASE as EASYPOST_API
from connectors.carriers.easypost.client import EasyPostCarrier, EasyPostCredentials
from connectors.carriers.interfaces import Carrier
from connectors.carriers.shippo.client import API_BASE as SHIPPO_API
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials
from vault.errors import AccountSetupError, CarrierSetupError
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount


@dataclass(frozen=True, slots=True)
class CarrierPlatform:
    """One carrier: what an operator configures for an account, and the factory of its client."""

    code: str
    name: str
    #: The credential names an account stores (sealed), in the order the CLI and the dashboard ask for them.
    credentials: tuple[str, ...]
    #: The carrier's own API base URLs; any other endpoint must be an operator-allowed origin.
    api_hosts: frozenset[str]
    #: Builds a client from the account's opened credentials and its API base URL.
    build: Callable[[Mapping[str, str], str], Carrier]
    #: Credentials that are a choice among known values, not a secret (Amazon Shipping's business), with the
    #: values and the default: the CLI takes them as an option rather than at a hidden prompt.
    choices: Mapping[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    #: The carrier tells the marketplace the order shipped by itself (Amazon Merchant Fulfillment): labelvault
    #: queues no shipment confirmation for its labels (connectors/confirmations.py).
    marks_order_shipped: bool = False
    #: The carrier's quote may take the buyer's address (Amazon Shipping's only for an order Amazon doesn't have;
    #: its quote, or its failed quote's ``CarrierError.fields_sent``, says what went). Amazon Merchant
    #: Fulfillment's never does (Amazon has it): the purchase flow then never names the label record's fields as
    #: shared, not even for a failed quote.
    sends_ship_to: bool = True


def _shippo(secrets: Mapping[str, str], api_base: str) -> Carrier:
    return ShippoCarrier(ShippoCredentials.from_secrets(secrets), api_base=api_base)


SHIPPO = CarrierPlatform(
    code="shippo",
    name="Shippo",
    credentials=("api_token",),
    api_hosts=frozenset({SHIPPO_API}),
    build=_shippo,
)


def _easypost(secrets: Mapping[str, str], api_base: str) -> Carrier:
    return EasyPostCarrier(EasyPostCredentials.from_secrets(secrets), api_base=api_base)


EASYPOST = CarrierPlatform(
    code="easypost",
    name="EasyPost",
    credentials=("api_key",),
    api_hosts=frozenset({EASYPOST_API}),
    build=_easypost,
)


def _amazon_shipping(secrets: Mapping[str, str], api_base: str) -> Carrier:
    return AmazonShippingCarrier(AmazonShippingCredentials.from_secrets(secrets), api_base=api_base)


AMAZON_SHIPPING = CarrierPlatform(
    code="amazonshipping",
    name="Amazon Shipping",
    # The selling partner's LWA app and refresh token, and its Amazon Shipping business (AmazonShipping_US).
    credentials=("client_id", "client_secret", "refresh_token", "business_id"),
    # SP-API's live regional hosts; the client moves to the business's region (a sandbox host is an override).
    api_hosts=AMAZON_SHIPPING_HOSTS,
    build=_amazon_shipping,
    choices={"business_id": (tuple(BUSINESSES), "AmazonShipping_US")},
)


def _amazon_mfn(secrets: Mapping[str, str], api_base: str) -> Carrier:
    return MerchantFulfillmentCarrier(MerchantFulfillmentCredentials.from_secrets(secrets), api_base=api_base)


AMAZON_MFN = CarrierPlatform(
    code="amazonmfn",
    name="Amazon Merchant Fulfillment",
    # The selling partner's LWA app and refresh token (the grant its Amazon orders sync with may be reused), and
    # the SP-API region its marketplaces are in.
    credentials=("client_id", "client_secret", "refresh_token", "region"),
    api_hosts=AMAZON_MFN_HOSTS,
    build=_amazon_mfn,
    choices={"region": (REGION_CODES, "na")},
    # Amazon marks the order shipped when the label is bought: no shipment confirmation is queued.
    marks_order_shipped=True,
    sends_ship_to=False,
)

#: Every carrier, by code.
CARRIERS: dict[str, CarrierPlatform] = {p.code: p for p in (SHIPPO, EASYPOST, AMAZON_SHIPPING, AMAZON_MFN)}


def carrier_platform(code: str) -> CarrierPlatform:
    """The carrier called ``code``; :class:`KeyError` names the ones there are."""
    try:
        return CARRIERS[code]
    except KeyError:
        raise KeyError(f"no carrier {code!r}: labelvault knows {', '.join(sorted(CARRIERS))}") from None


def carrier_factory(overrides: frozenset[str] = frozenset()) -> Callable[[CarrierAccount, dict[str, str]], Carrier]:
    """Builds the client of a stored carrier account, its endpoint checked again at every use against the
    carrier's own hosts and the operator's ``overrides`` (an account stored under an override the operator
    has since withdrawn gets :class:`~vault.errors.CarrierSetupError`, and no credentials are sent)."""

    def build(account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        platform = carrier_platform(account.carrier)
        policy = EndpointPolicy(api=platform.api_hosts, overrides=overrides, api_name=f"{platform.name} API")
        try:
            endpoint = policy.check(account.api_endpoint, policy.api_name, policy.api)
        except AccountSetupError as exc:
            raise CarrierSetupError(str(exc)) from None
        return platform.build(secrets, endpoint or min(platform.api_hosts))

    return build
