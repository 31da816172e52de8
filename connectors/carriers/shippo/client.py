"""The Shippo client: shipment → rates → transaction (the label) → refund, and tracking, over Shippo's REST API
(version 2018-02-08, the document in ``connectors/platform_specs/shippo/``).

The ship-to goes out once, in ``POST /shipments`` (with ``validate: true``, so Shippo's address check runs
before any money is spent). ``POST /transactions`` buys; it is never retried, except after a 429 (Shippo
refused it whole), and it carries the vault's ``reference`` as the transaction's ``metadata``, so that
``GET /transactions?rate=`` finds a purchase whose answer was lost. The API token travels only in the
``Authorization`` header; URLs carry object ids only; nothing here logs a body. Label files are fetched from
the URL Shippo gives, without the token (they are served from Shippo's file storage, not the API).
Timeouts, retries, TLS and the mapping of HTTP failures to the carriers' errors are the shared
``connectors/carriers/http.py``.
"""

from __future__ import annotations

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
    PurchaseUncertain,
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

CARRIER = "shippo"
API_BASE = "https://api.goshippo.com"
API_VERSION = "2018-02-08"

#: Shippo's ``label_file_type`` per format the vault offers.
FILE_TYPES = {LabelFormat.PDF: "PDF_4x6", LabelFormat.ZPL: "ZPLII", LabelFormat.PNG: "PNG"}
_FORMATS = {v: k for k, v in FILE_TYPES.items()}
#: Transaction states in which the label was bought (and perhaps refunded since).
_BOUGHT = ("SUCCESS", "REFUNDED", "REFUNDPENDING", "REFUNDREJECTED")
_TRACKING = {
    "UNKNOWN": TrackingStatus.UNKNOWN,
    "PRE_TRANSIT": TrackingStatus.PRE_TRANSIT,
    "TRANSIT": TrackingStatus.IN_TRANSIT,
    "DELIVERED": TrackingStatus.DELIVERED,
    "RETURNED": TrackingStatus.RETURNED,
    "FAILURE": TrackingStatus.FAILURE,
}


@dataclass(frozen=True, slots=True)
class ShippoCredentials:
    """A Shippo API token (``shippo_live_…`` or ``shippo_test_…``); sealed at rest, never printed."""

    api_token: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, str]) -> ShippoCredentials:
        """From the dict sealed by :func:`vault.carrier_accounts.connect_carrier_account`."""
        token = secrets.get("api_token", "")
        if not token:
            raise CarrierAuthRefused("stored credentials lack api_token")
        return cls(token)


#: Timeouts and retries (the shared carrier policy, under the name the Shippo callers know).
ShippoPolicy = CarrierPolicy


class ShippoCarrier:
    """One Shippo account (its API token), as a :class:`~connectors.carriers.interfaces.Carrier`."""

    carrier = CARRIER

    def __init__(
        self,
        credentials: ShippoCredentials,
        *,
        api_base: str = API_BASE,
        policy: ShippoPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.policy = policy or ShippoPolicy()
        self._http = CarrierHttp(
            base_url=api_base,
            headers={"Authorization": f"ShippoToken {credentials.api_token}", "SHIPPO-API-VERSION": API_VERSION},
            policy=self.policy,
            transport=transport,
        )

    @property
    def purchase_rate(self) -> float | None:
        """The purchases per second this client paces itself to (``None``: unpaced); a wave is sized by it."""
        return self.policy.purchase_rate

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
        body = {
            "address_from": street_address(ship_from),
            "address_to": to,
            "parcels": [
                {
                    "length": _decimal(parcel.length_mm, 10),
                    "width": _decimal(parcel.width_mm, 10),
                    "height": _decimal(parcel.height_mm, 10),
                    "distance_unit": "cm",
                    "weight": str(parcel.weight_g),
                    "mass_unit": "g",
                }
            ],
            "async": False,
        }
        if reference:
            body["metadata"] = reference  # the purchase carries it too; this only labels the shipment
        shipment = self._call("POST", "/shipments", "create a shipment", json=body)
        validation = (shipment.get("address_to") or {}).get("validation_results") or {}
        if validation.get("is_valid") is False:
            codes = [str(m.get("code", "")) for m in validation.get("messages") or [] if isinstance(m, dict)]
            raise AddressRejected("the carrier's address validation refused the ship-to", reasons=codes)
        rates = tuple(_rate(r) for r in shipment.get("rates") or [] if isinstance(r, dict))
        return Quote(shipment_id=required_str(shipment, "object_id"), rates=rates, fields_sent=sent)

    def purchase(self, rate: Rate, *, label_format: LabelFormat, reference: str) -> Purchase:
        body: dict[str, Any] = {"rate": rate.rate_id, "label_file_type": FILE_TYPES[label_format], "async": False}
        body["metadata"] = reference
        transaction = self._http.purchase("POST", "/transactions", "buy the label", json=body)
        return self._settle(rate, label_format, transaction)

    def find_purchase(self, *, rate: Rate, reference: str) -> Purchase | None:
        page = 1
        while True:
            params = {"rate": rate.rate_id, "page": page, "results": 100}
            found = self._call("GET", "/transactions", "look up a purchase", params=params)
            for transaction in found.get("results") or []:
                if (
                    isinstance(transaction, dict)
                    and transaction.get("metadata") == reference
                    and transaction.get("status") in _BOUGHT
                ):
                    return self._purchase(transaction, rate)
            if not found.get("next"):
                return None
            page += 1

    def label(self, purchase: Purchase) -> LabelDocument:
        transaction = self._call("GET", f"/transactions/{purchase.purchase_id}", "fetch the label")
        return LabelDocument(purchase.label_format, self._http.file(transaction.get("label_url"), "fetch the label"))

    def void(self, purchase: Purchase) -> VoidStatus:
        try:
            refund = self._call(
                "POST", "/refunds", "void the label", json={"transaction": purchase.purchase_id, "async": False}
            )
        except CarrierBadResponse as exc:
            raise VoidRefused("the carrier refused to void the label") from exc
        status = refund.get("status")
        if status == "SUCCESS":
            return VoidStatus.VOIDED
        if status in ("QUEUED", "PENDING"):
            return VoidStatus.PENDING
        raise VoidRefused("the carrier refused to void the label")

    def tracking(self, purchase: Purchase) -> Tracking:
        provider = purchase.rate.provider.lower() or "usps"
        track = self._call("GET", f"/tracks/{provider}/{purchase.tracking_number}", "track the parcel")
        status = (track.get("tracking_status") or {}).get("status", "UNKNOWN")
        updated = timestamp((track.get("tracking_status") or {}).get("status_date"))
        return Tracking(purchase.tracking_number, _TRACKING.get(str(status), TrackingStatus.UNKNOWN), updated)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        return self._http.call(method, path, what, **kwargs)

    def _settle(self, rate: Rate, label_format: LabelFormat, transaction: dict[str, Any]) -> Purchase:
        status = transaction.get("status")
        if status == "SUCCESS":
            return self._purchase(transaction, rate)
        codes = {str(m.get("code", "")) for m in transaction.get("messages") or [] if isinstance(m, dict)}
        if any("rate" in code for code in codes):
            raise RateChanged("the quoted rate is no longer offered")
        if any("address" in code for code in codes):
            raise AddressRejected("the carrier refused the ship-to at purchase", reasons=sorted(codes))
        if status in ("QUEUED", "WAITING"):  # asked for synchronously; treat as lost and reconcile
            raise PurchaseUncertain("the carrier has not finished the purchase")
        raise CarrierBadResponse(f"the carrier did not buy the label (status {status})")

    def _purchase(self, transaction: dict[str, Any], rate: Rate) -> Purchase:
        file_type = transaction.get("label_file_type")
        label_format = _FORMATS.get(str(file_type))
        if label_format is None:
            raise CarrierBadResponse("the carrier's label is in a format the vault does not offer")
        return Purchase(
            purchase_id=required_str(transaction, "object_id"),
            tracking_number=required_str(transaction, "tracking_number"),
            rate=rate,
            label_format=label_format,
            bought_at=timestamp(transaction.get("object_created")) or datetime.now(UTC),
            label_url=transaction.get("label_url") or None,
        )


#: What each field Shippo takes is filled from, in the label record's words (for the audit's ``fields_sent``).
_TO_FIELDS = (
    ("name", "name"),
    ("company", "company"),
    ("street1", "address_line1"),
    ("street2", "address_line2"),
    ("street3", "address_line3"),
    ("city", "city"),
    ("state", "state_or_region"),
    ("zip", "postal_code"),
    ("country", "country_code"),
    ("phone", "phone"),
)


def _address_to(record: LabelRecord) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Shippo's ``address_to`` and the label record's fields it was made of (no e-mail: the vault keeps none)."""
    out: dict[str, Any] = {}
    sent: list[str] = []
    for theirs, ours in _TO_FIELDS:
        value = getattr(record, ours)
        if value:
            out[theirs] = value
            sent.append(ours)
    out["validate"] = True
    return out, tuple(sent)


def _rate(raw: dict[str, Any]) -> Rate:
    level = raw.get("servicelevel") or {}
    try:
        amount = Decimal(str(raw.get("amount")))
    except InvalidOperation:
        raise CarrierBadResponse("the carrier quoted a rate without a price") from None
    days = raw.get("estimated_days")
    return Rate(
        rate_id=required_str(raw, "object_id"),
        provider=str(raw.get("provider") or ""),
        service=str(level.get("token") or ""),
        amount=amount,
        currency=str(raw.get("currency") or ""),
        estimated_days=days if isinstance(days, int) else None,
    )


def _decimal(value: int, divisor: int) -> str:
    return str(Decimal(value) / divisor)
