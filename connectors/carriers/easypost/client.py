"""The EasyPost client: address → shipment (its rates) → buy → label in the format asked → refund, and tracking,
over EasyPost's API v2 (the objects in ``connectors/platform_specs/easypost/``, derived from EasyPost's Go
client and checked against its docs responses).

The ship-to goes out once per quote, in ``POST /v2/addresses`` with ``verify_strict``, so EasyPost's address
verification refuses a bad address (HTTP 422 ``ADDRESS.VERIFY.FAILURE``, with a code per field error) before
any shipment exists; the shipment then names the verified address by its id. ``POST
/v2/shipments/{id}/buy`` buys; it is never retried, except after a 429 (EasyPost refused it whole).

EasyPost's buy takes only the rate (no metadata), so a lost purchase is found again by the shipment itself:
a rate belongs to exactly one shipment and a shipment is bought at most once, so the shipment whose
``selected_rate`` is the quoted rate, with a postage label and a tracking code, *is* the purchase. The vault's
``reference`` is kept on the shipment when the caller passes it to :meth:`EasyPostCarrier.quote`, and
:meth:`EasyPostCarrier.find_purchase` refuses a shipment that carries another one.

A label is bought in the format the shipment was created with (``options.label_format``: PNG, EasyPost's
own, unless the client is told otherwise), whatever format the caller asks the purchase for;
:meth:`EasyPostCarrier.label` asks EasyPost's label endpoint (``GET /v2/shipments/{id}/label?file_format=``),
which converts the bought label to PDF or ZPL (PNG is the bought file itself), and fetches the file
from the URL it gives, without the API key. The key travels only as HTTP Basic auth (the key as user name, as
EasyPost's docs do); URLs carry object ids only; nothing here logs a body. Timeouts, retries, TLS and the
mapping of HTTP failures are the shared ``connectors/carriers/http.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from connectors.carriers.fields import required_str, street_address, timestamp
from connectors.carriers.http import CarrierHttp, CarrierPolicy
from connectors.carriers.interfaces import (
    AddressRejected,
    CarrierAuthRefused,
    CarrierBadResponse,
    LabelDocument,
    LabelFormat,
    OrderContext,
    Parcel,
    Purchase,
    Quote,
    Rate,
    RateChanged,
    ShipFrom,
    Tracking,
    TrackingStatus,
    VoidRefused,
    VoidStatus,
)
from vault.records import LabelRecord

CARRIER = "easypost"
API_BASE = "https://api.easypost.com"

#: EasyPost's ``file_format`` (and ``options.label_format``) per format the vault offers.
FILE_FORMATS = {LabelFormat.PDF: "PDF", LabelFormat.ZPL: "ZPL", LabelFormat.PNG: "PNG"}
#: Where a PostageLabel keeps each format's file (``label_url`` is the format the label was bought in).
_URL_FIELDS = {LabelFormat.PDF: "label_pdf_url", LabelFormat.ZPL: "label_zpl_url", LabelFormat.PNG: "label_url"}
_FILE_TYPES = {"application/pdf": LabelFormat.PDF, "application/zpl": LabelFormat.ZPL, "image/png": LabelFormat.PNG}
_TRACKING = {
    "unknown": TrackingStatus.UNKNOWN,
    "pre_transit": TrackingStatus.PRE_TRANSIT,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.IN_TRANSIT,
    "available_for_pickup": TrackingStatus.IN_TRANSIT,
    "delivered": TrackingStatus.DELIVERED,
    "return_to_sender": TrackingStatus.RETURNED,
    "failure": TrackingStatus.FAILURE,
    "error": TrackingStatus.FAILURE,
    "cancelled": TrackingStatus.FAILURE,
}
_GRAMS_PER_OZ = Decimal("28.349523125")
_MM_PER_INCH = Decimal("25.4")

#: Timeouts and retries (the shared carrier policy).
EasyPostPolicy = CarrierPolicy


@dataclass(frozen=True, slots=True)
class EasyPostCredentials:
    """An EasyPost API key (``EZAK…`` production, ``EZTK…`` test); sealed at rest, never printed."""

    api_key: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> EasyPostCredentials:
        """From the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        key = secrets.get("api_key", "")
        if not key:
            raise CarrierAuthRefused("stored credentials lack api_key")
        return cls(key)


class EasyPostCarrier:
    """One EasyPost account (its API key), as a :class:`~connectors.carriers.interfaces.Carrier`."""

    carrier = CARRIER

    def __init__(
        self,
        credentials: EasyPostCredentials,
        *,
        api_base: str = API_BASE,
        policy: CarrierPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        label_format: LabelFormat = LabelFormat.PNG,
    ) -> None:
        self.policy = policy or CarrierPolicy()
        self._label_format = label_format
        self._http = CarrierHttp(
            base_url=api_base, headers={}, policy=self.policy, transport=transport, auth=(credentials.api_key, "")
        )
        #: rate id → its shipment id, for the rates this client quoted (others are looked up).
        self._shipments: dict[str, str] = {}

    # --- the contract ---------------------------------------------------------------------------------------

    def quote(
        self,
        *,
        ship_from: ShipFrom,
        ship_to: LabelRecord,
        parcel: Parcel,
        reference: str = "",
        order: OrderContext | None = None,
    ) -> Quote:
        to, sent = _address_to(ship_to)
        address = self._http.call(
            "POST",
            "/v2/addresses",
            "verify the ship-to",
            json={"address": to, "verify_strict": True},
            refuse=_address_refusal,
        )
        delivery = (address.get("verifications") or {}).get("delivery") or {}
        if delivery.get("success") is False:  # verified but not strictly: refuse it the same way
            raise AddressRejected("the carrier's address verification refused the ship-to", reasons=_codes(delivery))
        shipment: dict[str, Any] = {
            "to_address": {"id": required_str(address, "id")},
            "from_address": street_address(ship_from),
            "parcel": {
                "length": _up(parcel.length_mm, _MM_PER_INCH),
                "width": _up(parcel.width_mm, _MM_PER_INCH),
                "height": _up(parcel.height_mm, _MM_PER_INCH),
                "weight": _up(parcel.weight_g, _GRAMS_PER_OZ),
            },
            "options": {"label_format": FILE_FORMATS[self._label_format]},
        }
        if reference:
            shipment["reference"] = reference
        created = self._http.call("POST", "/v2/shipments", "create a shipment", json={"shipment": shipment})
        shipment_id = required_str(created, "id")
        rates = tuple(_rate(r) for r in created.get("rates") or [] if isinstance(r, dict))
        for rate in rates:
            self._shipments[rate.rate_id] = shipment_id
        return Quote(shipment_id=shipment_id, rates=rates, fields_sent=sent)

    def purchase(self, rate: Rate, *, label_format: LabelFormat, reference: str) -> Purchase:
        shipment_id = self._shipment_of(rate)
        bought = self._http.purchase(
            "POST",
            f"/v2/shipments/{shipment_id}/buy",
            "buy the label",
            json={"rate": {"id": rate.rate_id}},
            refuse=_purchase_refusal,
        )
        purchase = self._purchase(bought, rate, label_format)
        if purchase is None:
            raise CarrierBadResponse("the carrier's answer to the purchase shows no label for the rate")
        return purchase

    def find_purchase(self, *, rate: Rate, reference: str) -> Purchase | None:
        shipment_id = self._shipment_of(rate)
        shipment = self._http.call("GET", f"/v2/shipments/{shipment_id}", "look up a purchase")
        if shipment.get("reference") and shipment.get("reference") != reference:
            return None
        label = shipment.get("postage_label") or {}
        label_format = _FILE_TYPES.get(str(label.get("label_file_type")), self._label_format)
        return self._purchase(shipment, rate, label_format)

    def label(self, purchase: Purchase) -> LabelDocument:
        path = f"/v2/shipments/{purchase.purchase_id}"
        if purchase.label_format is LabelFormat.PNG:  # the bought file itself, when bought as PNG
            shipment = self._http.call("GET", path, "fetch the label")
        else:
            params = {"file_format": FILE_FORMATS[purchase.label_format]}
            shipment = self._http.call("GET", path + "/label", "convert the label", params=params)
        label = shipment.get("postage_label") or {}
        url = label.get(_URL_FIELDS[purchase.label_format])
        if _FILE_TYPES.get(str(label.get("label_file_type"))) is purchase.label_format:
            url = label.get("label_url") or url
        elif purchase.label_format is LabelFormat.PNG:
            url = None  # label_url is the bought format's file: PNG only when bought as PNG
        return LabelDocument(purchase.label_format, self._http.file(url, "fetch the label"))

    def void(self, purchase: Purchase) -> VoidStatus:
        try:
            shipment = self._http.call("POST", f"/v2/shipments/{purchase.purchase_id}/refund", "void the label")
        except CarrierBadResponse as exc:
            raise VoidRefused("the carrier refused to void the label") from exc
        status = shipment.get("refund_status")
        if status == "refunded":
            return VoidStatus.VOIDED
        if status == "submitted":
            return VoidStatus.PENDING
        raise VoidRefused("the carrier refused to void the label")

    def tracking(self, purchase: Purchase) -> Tracking:
        shipment = self._http.call("GET", f"/v2/shipments/{purchase.purchase_id}", "track the parcel")
        tracker = shipment.get("tracker") or {}
        status = _TRACKING.get(str(tracker.get("status") or "unknown"), TrackingStatus.UNKNOWN)
        return Tracking(purchase.tracking_number, status, timestamp(tracker.get("updated_at")))

    def close(self) -> None:
        self._http.close()

    # --- helpers --------------------------------------------------------------------------------------------

    def _shipment_of(self, rate: Rate) -> str:
        known = self._shipments.get(rate.rate_id)
        if known is not None:
            return known
        found = self._http.call("GET", f"/v2/rates/{rate.rate_id}", "look up the rate", refuse=_rate_refusal)
        shipment_id = required_str(found, "shipment_id")
        self._shipments[rate.rate_id] = shipment_id
        return shipment_id

    def _purchase(self, shipment: dict[str, Any], rate: Rate, label_format: LabelFormat) -> Purchase | None:
        """The purchase ``shipment`` shows for ``rate``, or ``None`` if it isn't bought at that rate."""
        label = shipment.get("postage_label") or {}
        selected = shipment.get("selected_rate") or {}
        tracking = shipment.get("tracking_code")
        if not label or not tracking or selected.get("id") != rate.rate_id:
            return None
        return Purchase(
            purchase_id=required_str(shipment, "id"),
            tracking_number=str(tracking),
            rate=rate,
            label_format=label_format,
            bought_at=timestamp(label.get("label_date")) or timestamp(label.get("created_at")) or datetime.now(UTC),
            label_url=label.get(_URL_FIELDS[label_format]) or None,
        )


def _error(body: Any) -> tuple[str, list[str]]:
    """EasyPost's error code and its field errors' codes (never their messages: they may quote the address)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", []
    fields = error.get("errors")
    codes = _codes({"errors": fields}) if isinstance(fields, list) else []
    return str(error.get("code") or ""), codes


def _address_refusal(response: httpx.Response, body: Any) -> None:
    code, codes = _error(body)
    if code.startswith("ADDRESS."):
        raise AddressRejected("the carrier's address verification refused the ship-to", reasons=codes or [code])


def _purchase_refusal(response: httpx.Response, body: Any) -> None:
    code, codes = _error(body)
    if "RATE" in code:
        raise RateChanged("the quoted rate is no longer offered")
    if code.startswith("ADDRESS."):
        raise AddressRejected("the carrier refused the ship-to at purchase", reasons=codes or [code])


def _rate_refusal(response: httpx.Response, body: Any) -> None:
    if response.status_code == 404:
        raise RateChanged("the quoted rate is no longer known to the carrier")


def _codes(verification: dict[str, Any]) -> list[str]:
    return [str(e.get("code")) for e in verification.get("errors") or [] if isinstance(e, dict) and e.get("code")]


#: What each field EasyPost takes is filled from, in the label record's words (for the audit's ``fields_sent``).
_TO_FIELDS = (
    ("name", ("name",)),
    ("company", ("company",)),
    ("street1", ("address_line1",)),
    ("street2", ("address_line2", "address_line3")),
    ("city", ("city",)),
    ("state", ("state_or_region",)),
    ("zip", ("postal_code",)),
    ("country", ("country_code",)),
    ("phone", ("phone",)),
)


def _address_to(record: LabelRecord) -> tuple[dict[str, Any], tuple[str, ...]]:
    """EasyPost's Address of the ship-to and the label record's fields it was made of (no e-mail: the vault
    keeps none). EasyPost has two street lines: a third goes on the second."""
    out: dict[str, Any] = {}
    sent: list[str] = []
    for theirs, ours in _TO_FIELDS:
        values = [(name, getattr(record, name)) for name in ours]
        filled = [(name, value) for name, value in values if value]
        if filled:
            out[theirs] = ", ".join(value for _, value in filled)
            sent.extend(name for name, _ in filled)
    return out, tuple(sent)


def _rate(raw: dict[str, Any]) -> Rate:
    try:
        amount = Decimal(str(raw.get("rate")))
    except InvalidOperation:
        raise CarrierBadResponse("the carrier quoted a rate without a price") from None
    days = raw.get("delivery_days")
    if not isinstance(days, int):
        days = raw.get("est_delivery_days")
    return Rate(
        rate_id=required_str(raw, "id"),
        provider=str(raw.get("carrier") or ""),
        service=str(raw.get("service") or ""),
        amount=amount,
        currency=str(raw.get("currency") or ""),
        estimated_days=days if isinstance(days, int) else None,
    )


def _up(value: int, per_unit: Decimal) -> float:
    """``value`` in EasyPost's unit (inches, ounces), rounded up to a tenth so the carrier never sees less."""
    return math.ceil(Decimal(value) / per_unit * 10) / 10
