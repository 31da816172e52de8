"""The carriers' contract: what a carrier gives the vault when it buys a shipping label, and how it fails.

A carrier is the one party outside the vault that needs the buyer's address, and only to ship (purpose
``shipping-label``). The flow is the same for every carrier (Shippo, EasyPost, Amazon Shipping v2, Amazon
Merchant Fulfillment): :meth:`Carrier.quote` (the ship-to goes out here, once, if at all: Merchant Fulfillment
quotes an Amazon order by its id and sends none, and so does Amazon Shipping for an Amazon order Amazon has)
→ :meth:`Carrier.purchase` of one of the quoted rates → :meth:`Carrier.label` (the carrier's printed label,
as often as the reprint policy allows) → :meth:`Carrier.void` → :meth:`Carrier.tracking`. The warehouse gets
the label's bytes and the tracking number, never the structured address.

Money is at stake, so the contract says what a failure means for the purchase:

- :class:`CarrierUnavailable`, :class:`AddressRejected`, :class:`RateChanged`, :class:`NoMatchingRate`,
  :class:`CarrierAuthRefused`, :class:`CarrierBadResponse`: **nothing was bought**;
- :class:`PurchaseUncertain`: the purchase request went out and no answer came back (a timeout, a dropped
  connection, a 5xx): the carrier may have bought the label. The caller never buys again blindly: it asks
  :meth:`Carrier.find_purchase` with the same ``reference``, which the carrier keeps with the label.

Nothing a carrier logs or puts in an exception message carries PII, credentials or label URLs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from vault.records import LabelRecord
from vault.records import ShipFrom as ShipFrom  # re-exported: part of the carriers' contract


class CarrierError(Exception):
    """Root of every error a carrier client raises. Messages never carry PII, secrets or label URLs.

    ``code`` is a short machine word for the API's problem document and the audit event's outcome.
    """

    code = "carrier-error"
    #: For a failed :meth:`Carrier.quote`, the ship-to fields its requests carried, where the client knows
    #: (Amazon Shipping's Amazon order carries none); ``None``: unknown, and the flow audits every filled field
    #: as possibly sent.
    fields_sent: tuple[str, ...] | None = None


class CarrierAuthRefused(CarrierError):
    """The carrier refused the account's credentials (wrong, revoked, test key on a live account)."""

    code = "carrier-auth-refused"


class CarrierUnavailable(CarrierError):
    """The carrier kept failing (5xx, timeouts, throttling) through every retry before anything was bought."""

    code = "carrier-unavailable"


class CarrierBadResponse(CarrierError):
    """The carrier answered with something the client can't use (a 4xx it won't retry, bad JSON, a missing
    field). Nothing was bought."""

    code = "carrier-bad-response"


class AddressRejected(CarrierError):
    """The carrier's address validation refused the ship-to. ``reasons`` are the carrier's message codes
    (never the address or the carrier's text, which may quote it)."""

    code = "address-rejected"

    def __init__(self, message: str, *, reasons: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.reasons = tuple(reasons)


class RateChanged(CarrierError):
    """The quoted rate is gone or costs something else now; quote again. Nothing was bought."""

    code = "rate-changed"


class NoMatchingRate(CarrierError):
    """No quoted rate fits the service asked for (or none was quoted at all)."""

    code = "no-matching-rate"


class PurchaseUncertain(CarrierError):
    """The purchase went out and its answer was lost: the label may have been bought. Never buy again
    without :meth:`Carrier.find_purchase` first."""

    code = "purchase-uncertain"


class VoidRefused(CarrierError):
    """The carrier won't void the label (already used, too old, already refunded)."""

    code = "void-refused"


class LabelFormat(enum.StrEnum):
    """The label documents a warehouse may ask for: what its printer takes."""

    PDF = "pdf"
    ZPL = "zpl"
    PNG = "png"

    @property
    def media_type(self) -> str:
        """The HTTP media type of a label in this format."""
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {LabelFormat.PDF: "application/pdf", LabelFormat.ZPL: "application/zpl", LabelFormat.PNG: "image/png"}


class ServiceChoice(enum.StrEnum):
    """How to pick a rate among those quoted, unless a service is named."""

    CHEAPEST = "cheapest"
    FASTEST = "fastest"


@dataclass(frozen=True, slots=True)
class Parcel:
    """One parcel: weight in grams, dimensions in millimetres (each carrier converts to its own units)."""

    weight_g: int
    length_mm: int
    width_mm: int
    height_mm: int

    def __post_init__(self) -> None:
        for name in ("weight_g", "length_mm", "width_mm", "height_mm"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1_000_000:
                raise ValueError(f"{name} must be a whole number from 1 to 1000000")


@dataclass(frozen=True, slots=True)
class Rate:
    """One quoted price for one service. No PII: ids, the carrier's service token, money and days."""

    rate_id: str
    #: The carrier behind the rate as the aggregator names it ("USPS"), or the carrier itself.
    provider: str
    #: The carrier's service token ("usps_priority"): what a client names to ask for this service.
    service: str
    amount: Decimal
    currency: str
    estimated_days: int | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """The rates one carrier quoted for one ship-to and parcel, under the carrier's shipment id."""

    shipment_id: str
    rates: tuple[Rate, ...]
    #: The fields of the ship-to that went to the carrier (names, never values), for the audit event.
    fields_sent: tuple[str, ...]

    def choose(self, service: str) -> Rate:
        """The rate for ``service``: ``cheapest``, ``fastest`` (fewest days, then cheapest) or a service token.

        :class:`NoMatchingRate` when nothing fits.
        """
        if not self.rates:
            raise NoMatchingRate("the carrier quoted no rate for this parcel")
        if service == ServiceChoice.CHEAPEST:
            return min(self.rates, key=lambda r: (r.amount, r.estimated_days or 99, r.service))
        if service == ServiceChoice.FASTEST:
            return min(self.rates, key=lambda r: (r.estimated_days or 99, r.amount, r.service))
        for rate in sorted(self.rates, key=lambda r: r.amount):
            if rate.service == service:
                return rate
        raise NoMatchingRate("the carrier quoted no rate for the service asked for")


@dataclass(frozen=True, slots=True)
class Purchase:
    """A bought label: the carrier's id for it, the tracking number and what it cost."""

    purchase_id: str
    tracking_number: str
    rate: Rate
    label_format: LabelFormat
    bought_at: datetime
    #: Where the carrier serves the label: a bearer URL on some carriers, so it is never printed or logged.
    label_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LabelDocument:
    """The carrier's printed label. Its bytes show the buyer's address, so they are never in a ``repr``."""

    label_format: LabelFormat
    content: bytes = field(repr=False)

    @property
    def media_type(self) -> str:
        """The HTTP media type of the document."""
        return self.label_format.media_type


class VoidStatus(enum.StrEnum):
    """Where a void (refund) of a label stands at the carrier."""

    VOIDED = "voided"
    PENDING = "pending"


class TrackingStatus(enum.StrEnum):
    """A parcel's tracking state, normalised across carriers."""

    UNKNOWN = "unknown"
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    RETURNED = "returned"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class Tracking:
    """The parcel's latest tracking state (no location text: it can name the buyer's town)."""

    tracking_number: str
    status: TrackingStatus
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderContext:
    """The marketplace order a label is for (no PII): what a carrier tied to a marketplace needs (Amazon
    Shipping quotes an Amazon order as ``channelType: AMAZON`` with its order id; Merchant Fulfillment quotes
    only Amazon orders, by their id). Carriers that don't need it ignore it."""

    marketplace: str
    order_id: str


@runtime_checkable
class Carrier(Protocol):
    """One carrier account of one tenant: quote, buy, print, void and track labels.

    Contract (checked by the shared tests in ``tests/connectors/test_carriers.py`` for every carrier):

    - :meth:`quote` is the only call that sends the ship-to; it is safe to repeat (nothing is bought).
    - :meth:`purchase` buys at most once per call and keeps ``reference`` with the label, so that
      :meth:`find_purchase` can say afterwards whether a lost purchase happened.
    - Failures are :class:`CarrierError` subclasses with the meaning the module docstring gives them,
      raised after the client's own bounded retries (never of a purchase: a purchase is not retried).
    - No network call blocks longer than the client's configured timeouts.

    A carrier whose :meth:`find_purchase` reads a record that shows a label only once the carrier has finished
    buying it (Merchant Fulfillment: the order's status) declares ``settle_delay`` (a :class:`timedelta`): the
    shipment flow believes its ``None`` only that long after the last purchase attempt was sent
    (``connectors/carriers/shipments.py::_settled``).
    """

    #: The carrier's code as stored in ``CarrierAccount.carrier`` ("shippo").
    carrier: str

    def quote(
        self,
        *,
        ship_from: ShipFrom,
        ship_to: LabelRecord,
        parcel: Parcel,
        reference: str = "",
        order: OrderContext | None = None,
    ) -> Quote:
        """Rates for sending ``parcel`` from ``ship_from`` to ``ship_to``, for ``order`` when known;
        ``reference`` (no PII), the one the purchase will carry, is kept with the carrier's shipment where the
        carrier can't attach it to the purchase itself (EasyPost)."""
        ...

    def purchase(self, rate: Rate, *, label_format: LabelFormat, reference: str) -> Purchase:
        """Buy the label of ``rate`` in ``label_format``; ``reference`` (no PII) is kept with it."""
        ...

    def find_purchase(self, *, rate: Rate, reference: str) -> Purchase | None:
        """The label bought for ``rate`` under ``reference``, if the carrier bought one; else ``None``."""
        ...

    def label(self, purchase: Purchase) -> LabelDocument:
        """The purchased label again, in the format it was bought in."""
        ...

    def void(self, purchase: Purchase) -> VoidStatus:
        """Void (refund) the label; :class:`VoidRefused` when the carrier won't."""
        ...

    def tracking(self, purchase: Purchase) -> Tracking:
        """The parcel's tracking state."""
        ...

    def close(self) -> None:
        """Release network resources (idempotent)."""
        ...
