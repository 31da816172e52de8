"""The carriers labelvault buys labels from, each declared once: its code, its name, the credentials it takes,
its own API hosts, the per-account options its client honours, and how to build a client for a stored account.

The CLI, the dashboard and the shipment API ask this registry and name no carrier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.carriers.amazon_mfn.client import LIVE_HOSTS as AMAZON_MFN_HOSTS
from connectors.carriers.amazon_mfn.client import (
    REGION_CODES,
    MerchantFulfillmentCarrier,
    MerchantFulfillmentCredentials,
    MerchantFulfillmentPolicy,
)
from connectors.carriers.amazon_shipping.client import (
    BUSINESSES,
    AmazonShippingCarrier,
    AmazonShippingCredentials,
    AmazonShippingPolicy,
)
from connectors.carriers.amazon_shipping.client import LIVE_HOSTS as AMAZON_SHIPPING_HOSTS
from connectors.carriers.easypost.client import API_BASE as EASYPOST_API
from connectors.carriers.easypost.client import EasyPostCarrier, EasyPostCredentials
from connectors.carriers.http import CarrierPolicy
from connectors.carriers.interfaces import Carrier
from connectors.carriers.shippo.client import API_BASE as SHIPPO_API
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials
from vault.errors import AccountSetupError, CarrierSetupError
from vault.marketplace_accounts import EndpointPolicy
from vault.models import CarrierAccount

#: What a stored option value is: a flag or one of a few numbers (never free text, never a secret).
OptionValue = bool | int
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_MAX_SHOWN = 40


class CarrierOptionError(CarrierSetupError):
    """An option a carrier doesn't take, or a value it doesn't accept: names the option and what it takes,
    never the value given (``option`` is ``None`` for a name that isn't the carrier's)."""

    def __init__(self, message: str, *, carrier: str, option: str | None, expected: str = "") -> None:
        super().__init__(message)
        self.carrier = carrier
        self.option = option
        self.expected = expected


@dataclass(frozen=True, slots=True)
class CarrierOption:
    """One per-account option of a carrier: the field of its client's policy it sets, its type and default,
    and what it does (a short description, no PII)."""

    name: str
    kind: Literal["bool", "int"]
    default: OptionValue
    description: str
    #: The values an ``int`` option may take (Amazon's 203 or 300 dpi).
    values: tuple[int, ...] = ()

    def expected(self) -> str:
        """What the option takes, in words: ``true or false``, ``203 or 300``."""
        if self.kind == "bool":
            return "true or false"
        return " or ".join(str(v) for v in self.values)

    def parse(self, raw: object, *, carrier: str) -> OptionValue:
        """``raw`` (from the CLI's ``NAME=VALUE``, a form or the stored JSON) as the option's value;
        :class:`CarrierOptionError` names the option and what it takes, never ``raw``."""
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
        else:
            value: int | None = None
            if isinstance(raw, int) and not isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and raw.strip().isdigit():
                value = int(raw.strip())
            if value is not None and value in self.values:
                return value
        raise CarrierOptionError(
            f"the {carrier} option {self.name} takes {self.expected()}",
            carrier=carrier,
            option=self.name,
            expected=self.expected(),
        )


@dataclass(frozen=True, slots=True)
class CarrierPlatform:
    """One carrier: what an operator configures for an account, and the factory of its client."""

    code: str
    name: str
    #: The credential names an account stores (sealed), in the order the CLI and the dashboard ask for them.
    credentials: tuple[str, ...]
    #: The carrier's own API base URLs; any other endpoint must be an operator-allowed origin.
    api_hosts: frozenset[str]
    #: Builds a client from the account's opened credentials, its API base URL and the policy its options make.
    build: Callable[[Mapping[str, str], str, CarrierPolicy | None], Carrier]
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
    #: The options an account may set (``CarrierAccount.options``), each a field of the client's policy.
    options: tuple[CarrierOption, ...] = ()
    #: The client's policy from the shared one (timeouts, retries): where the options are applied.
    policy_of: Callable[[CarrierPolicy | None], CarrierPolicy] | None = None

    def option(self, name: str) -> CarrierOption:
        """The option called ``name``; :class:`CarrierOptionError` names the ones there are."""
        for option in self.options:
            if option.name == name:
                return option
        shown = name if len(name) <= _MAX_SHOWN else name[:_MAX_SHOWN] + "…"
        takes = ", ".join(o.name for o in self.options) or "none"
        message = f"{self.name} has no option {shown!r} (its options: {takes})"
        raise CarrierOptionError(message, carrier=self.name, option=None, expected=takes)

    def parse_options(self, raw: Mapping[str, object]) -> dict[str, OptionValue]:
        """``raw`` checked against the options the carrier declares, each value as its type (only the ones
        given); :class:`CarrierOptionError` for the first unknown name or bad value."""
        return {name: self.option(name).parse(value, carrier=self.name) for name, value in raw.items()}

    def effective_options(self, stored: Mapping[str, object]) -> dict[str, OptionValue]:
        """Every option's value for an account: its stored one, else the default. A stored name the carrier
        no longer takes is ignored (what it set has no field any more)."""
        known = {o.name for o in self.options}
        values = {o.name: o.default for o in self.options}
        return values | self.parse_options({k: v for k, v in stored.items() if k in known})

    def policy(self, stored: Mapping[str, object], base: CarrierPolicy | None = None) -> CarrierPolicy | None:
        """The client's policy for an account whose options are ``stored``: ``base`` (timeouts, retries) with
        the options applied; ``base`` itself for a carrier that takes none."""
        if self.policy_of is None:
            return base
        return dataclasses.replace(self.policy_of(base), **self.effective_options(stored))


def _shippo(secrets: Mapping[str, str], api_base: str, policy: CarrierPolicy | None) -> Carrier:
    return ShippoCarrier(ShippoCredentials.from_secrets(secrets), api_base=api_base, policy=policy)


SHIPPO = CarrierPlatform(
    code="shippo",
    name="Shippo",
    credentials=("api_token",),
    api_hosts=frozenset({SHIPPO_API}),
    build=_shippo,
)


def _easypost(secrets: Mapping[str, str], api_base: str, policy: CarrierPolicy | None) -> Carrier:
    return EasyPostCarrier(EasyPostCredentials.from_secrets(secrets), api_base=api_base, policy=policy)


EASYPOST = CarrierPlatform(
    code="easypost",
    name="EasyPost",
    credentials=("api_key",),
    api_hosts=frozenset({EASYPOST_API}),
    build=_easypost,
)


def _amazon_shipping(secrets: Mapping[str, str], api_base: str, policy: CarrierPolicy | None) -> Carrier:
    return AmazonShippingCarrier(AmazonShippingCredentials.from_secrets(secrets), api_base=api_base, policy=policy)


#: The label resolution Amazon offers for ZPL and PNG labels.
_DPI = (203, 300)


AMAZON_SHIPPING = CarrierPlatform(
    code="amazonshipping",
    name="Amazon Shipping",
    # The selling partner's LWA app and refresh token, and its Amazon Shipping business (AmazonShipping_US).
    credentials=("client_id", "client_secret", "refresh_token", "business_id"),
    # SP-API's live regional hosts; the client moves to the business's region (a sandbox host is an override).
    api_hosts=AMAZON_SHIPPING_HOSTS,
    build=_amazon_shipping,
    choices={"business_id": (tuple(BUSINESSES), "AmazonShipping_US")},
    options=(
        CarrierOption(
            "ship_to_from_order",
            "bool",
            True,
            "An Amazon order is quoted without the buyer's address: Amazon takes the order's own. Off sends the "
            "address for every order.",
        ),
        CarrierOption(
            "one_click",
            "bool",
            False,
            "Buy an Amazon order quoted without the address with oneClickShipment (one call no expired quote can "
            "refuse). Amazon takes no idempotency key for it: a lost answer stays unsettled for the seller.",
        ),
        CarrierOption("dpi", "int", 203, "Resolution of ZPL and PNG labels, in dots per inch.", _DPI),
    ),
    policy_of=AmazonShippingPolicy.of,
)


def _amazon_mfn(secrets: Mapping[str, str], api_base: str, policy: CarrierPolicy | None) -> Carrier:
    return MerchantFulfillmentCarrier(
        MerchantFulfillmentCredentials.from_secrets(secrets), api_base=api_base, policy=policy
    )


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
    options=(CarrierOption("dpi", "int", 203, "Resolution of ZPL labels, in dots per inch (ZPL203 or ZPL300).", _DPI),),
    policy_of=MerchantFulfillmentPolicy.of,
)

#: Every carrier, by code.
CARRIERS: dict[str, CarrierPlatform] = {p.code: p for p in (SHIPPO, EASYPOST, AMAZON_SHIPPING, AMAZON_MFN)}


def carrier_platform(code: str) -> CarrierPlatform:
    """The carrier called ``code``; :class:`KeyError` names the ones there are."""
    try:
        return CARRIERS[code]
    except KeyError:
        raise KeyError(f"no carrier {code!r}: labelvault knows {', '.join(sorted(CARRIERS))}") from None


def carrier_factory(
    overrides: frozenset[str] = frozenset(), policy: CarrierPolicy | None = None
) -> Callable[[CarrierAccount, dict[str, str]], Carrier]:
    """Builds the client of a stored carrier account, its endpoint checked again at every use against the
    carrier's own hosts and the operator's ``overrides`` (an account stored under an override the operator
    has since withdrawn gets :class:`~vault.errors.CarrierSetupError`, and no credentials are sent), with the
    account's options applied to ``policy`` (the shared timeouts and retries; the carrier's defaults if
    ``None``)."""

    def build(account: CarrierAccount, secrets: dict[str, str]) -> Carrier:
        platform = carrier_platform(account.carrier)
        endpoints = EndpointPolicy(api=platform.api_hosts, overrides=overrides, api_name=f"{platform.name} API")
        try:
            endpoint = endpoints.check(account.api_endpoint, endpoints.api_name, endpoints.api)
        except AccountSetupError as exc:
            raise CarrierSetupError(str(exc)) from None
        client_policy = platform.policy(account.options or {}, policy)
        return platform.build(secrets, endpoint or min(platform.api_hosts), client_policy)

    return build


def describe_options(platform: CarrierPlatform, stored: Mapping[str, Any]) -> str:
    """``one_click=false ship_to_from_order=true dpi=203``: every option's value, for listings."""
    values = platform.effective_options(stored)
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items())
