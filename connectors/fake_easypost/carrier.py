"""A fake EasyPost over real HTTP: addresses (with strict verification), shipments with rates, buying a rate,
the label endpoint that converts formats, refunds, trackers and the label files, every body it serves checked
against EasyPost's models (``schema.py``, derived from EasyPost's Go client), and the faults that cost money.

What it models of EasyPost's behaviour, beyond the models: ``POST /v2/addresses`` with ``verify_strict``
answers HTTP 422 ``ADDRESS.VERIFY.FAILURE`` with a code per field error (the docs' own response) when
verification fails; a shipment comes back with its rates; ``POST /v2/shipments/{id}/buy`` with a rate of that
shipment buys it once (a postage label in the shipment's ``options.label_format``, a tracking code, a
tracker, the selected rate); a rate the shipment no longer offers answers 422 ``SHIPMENT.MISSING_RATE``
(the code EasyPost gives, per its maintainers); ``GET /v2/shipments/{id}/label?file_format=`` adds the
converted file's URL; ``POST /v2/shipments/{id}/refund`` sets ``refund_status`` (``submitted``, as EasyPost
does for USPS); purchases are throttled by a token bucket (HTTP 429, nothing bought). Error codes EasyPost's
documents don't give (a second buy or refund, throttling, an outage) are the fake's own, in EasyPost's error
shape.

Faults a test injects (each for the next ``count`` calls):

- :meth:`FakeEasyPost.fail` – an outage: the status (503 by default) instead of an answer, nothing done;
- :meth:`FakeEasyPost.lose_purchase` – the label is bought, then the answer is held for ``seconds`` (longer
  than the client waits), as when a connection drops after the carrier charged;
- :meth:`FakeEasyPost.reprice` – at the next purchase the shipment's rates are regenerated at another price
  (new ids), so buying a quoted rate fails;
- :meth:`FakeEasyPost.reject_address` – the next addresses fail verification;
- :meth:`FakeEasyPost.refuse_refund` – the next refunds come back ``rejected``.

The fake logs nothing per request (it holds buyers' addresses, as a carrier does).
"""

from __future__ import annotations

import base64
import collections
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from werkzeug.wrappers import Request, Response

from connectors.fake_amazon.limits import TokenBucket
from connectors.fake_shippo import labels
from connectors.fakeserver import FaultQueue, ServedFake, client_went_away

from .schema import schema_errors

#: The fake's API key (EasyPost's test keys start ``EZTK``).
DEFAULT_KEY = "EZTK0fakeeasypost00000000000000000000000000000000001"

#: The services the fake quotes: (service, days, base price, price per oz).
SERVICES: tuple[tuple[str, int, Decimal, Decimal], ...] = (
    ("GroundAdvantage", 5, Decimal("4.90"), Decimal("0.09")),
    ("Priority", 2, Decimal("8.25"), Decimal("0.13")),
    ("Express", 1, Decimal("26.50"), Decimal("0.23")),
)
#: label_format / file_format → (label_file_type, the file's extension, the URL field, its renderer).
_FORMATS: dict[str, tuple[str, str, str, Callable[..., bytes]]] = {
    "PNG": ("image/png", "png", "label_url", labels.png_label),
    "PDF": ("application/pdf", "pdf", "label_pdf_url", labels.pdf_label),
    "ZPL": ("application/zpl", "zpl", "label_zpl_url", labels.zpl_label),
}
_CARRIER_ACCOUNT = "ca_fakeeasypostusps000000000000001"


@dataclass
class _Shipment:
    id: str
    to_address: dict[str, Any] = field(repr=False)
    from_address: dict[str, Any] = field(repr=False)
    parcel: dict[str, Any]
    label_format: str
    reference: str | None
    created: str
    rate_ids: list[str] = field(default_factory=list)
    selected: str | None = None
    tracking_code: str | None = None
    bought_at: str | None = None
    formats: set[str] = field(default_factory=set)
    refund_status: str | None = None
    tracker_id: str | None = None
    label_id: str | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _oid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> tuple[int, Any, str]:
    return status, {"error": {"code": code, "message": message, "errors": errors or []}}, "ErrorResponse"


class FakeEasyPost(ServedFake):
    """EasyPost's API v2 for one EasyPost account (API key :data:`DEFAULT_KEY`), on ``base_url``.

    ``latency`` is added to every API answer (the carrier's own time, which the benchmark subtracts);
    ``purchase_rate`` and ``purchase_burst`` are the token bucket of ``POST /v2/shipments/{id}/buy``.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        latency: float = 0.0,
        purchase_rate: float = 20.0,
        purchase_burst: int = 20,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        super().__init__(host=host, port=port)
        self.purchases = TokenBucket(purchase_rate, purchase_burst)
        self._lock = threading.RLock()
        self._addresses: dict[str, dict[str, Any]] = {}
        self._shipments: dict[str, _Shipment] = {}
        self._rates: dict[str, dict[str, Any]] = {}
        self.faults = FaultQueue()
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled = 0
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-easypost"
    wildcard_as_loopback = False
    # base_url (ServedFake's) is the API base URL (EasyPost's ``https://api.easypost.com``; the paths carry ``/v2``).

    # --- faults and inspection ------------------------------------------------------------------------------

    def fail(self, *, status: int = 503, count: int = 1, operation: str | None = None) -> None:
        """Answer the next ``count`` calls (of ``operation``, e.g. ``"BuyShipment"``) with ``status``."""
        self.faults.add("fail", count, operation, status=status)

    def lose_purchase(self, *, seconds: float, count: int = 1) -> None:
        """Buy the next ``count`` labels, then hold each answer ``seconds`` before sending it."""
        self.faults.add("lose", count, "BuyShipment", seconds=seconds)

    def reprice(self, *, count: int = 1) -> None:
        """At the next ``count`` purchases, regenerate the shipment's rates at another price first."""
        self.faults.add("reprice", count, "BuyShipment")

    def reject_address(self, *, count: int = 1) -> None:
        """The next ``count`` addresses fail verification."""
        self.faults.add("address", count, "CreateAddress")

    def refuse_refund(self, *, count: int = 1) -> None:
        """The next ``count`` refunds come back ``rejected``."""
        self.faults.add("refund", count, "RefundShipment")

    def bought(self) -> collections.Counter[str]:
        """How many labels were bought per shipment reference (the shipment id when it has none): a shipment is
        bought at most once, so a double purchase shows as two shipments under one reference."""
        with self._lock:
            return collections.Counter(s.reference or s.id for s in self._shipments.values() if s.selected)

    def shipments(self) -> list[dict[str, Any]]:
        """Every shipment as the API would serve it."""
        with self._lock:
            return [self._shipment_json(s) for s in self._shipments.values()]

    # --- WSGI -----------------------------------------------------------------------------------------------

    _ROUTES: ClassVar[tuple[tuple[str, re.Pattern[str], str], ...]] = (
        ("POST", re.compile(r"/v2/addresses"), "CreateAddress"),
        ("POST", re.compile(r"/v2/shipments"), "CreateShipment"),
        ("GET", re.compile(r"/v2/shipments/(?P<id>shp_\w+)"), "GetShipment"),
        ("POST", re.compile(r"/v2/shipments/(?P<id>shp_\w+)/buy"), "BuyShipment"),
        ("GET", re.compile(r"/v2/shipments/(?P<id>shp_\w+)/label"), "GetShipmentLabel"),
        ("POST", re.compile(r"/v2/shipments/(?P<id>shp_\w+)/refund"), "RefundShipment"),
        ("GET", re.compile(r"/v2/rates/(?P<id>rate_\w+)"), "GetRate"),
    )
    _LABEL_FILE = re.compile(r"/_files/postage_label/(?P<id>shp_\w+)\.(?P<ext>pdf|zpl|png)")
    #: The request body each operation takes (the Go client's request structs).
    _REQUESTS: ClassVar[dict[str, str]] = {
        "CreateAddress": "createAddressRequest",
        "CreateShipment": "createShipmentRequest",
        "BuyShipment": "buyShipmentRequest",
    }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # a fake bug: answer 500, record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _json(*_error(500, "INTERNAL_SERVER_ERROR", "internal error")[:2])
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        found = self._LABEL_FILE.fullmatch(request.path)
        if found and request.method == "GET":
            return self._label_file(found["id"], found["ext"])
        for method, pattern, operation in self._ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return self._api(operation, request, match.groupdict())
        return _json(*_error(404, "NOT_FOUND", "The requested resource could not be found.")[:2])

    def _api(self, operation: str, request: Request, path: dict[str, str]) -> Response:
        with self._lock:
            self.calls[operation] += 1
        if self.latency:
            self._stopping.wait(self.latency)
        fault = self.faults.take(operation, "fail")
        if fault is not None:
            return _json(*_error(fault.status, "SERVICE_UNAVAILABLE", "The service is unavailable.")[:2])
        if not self._authorised(request.headers.get("Authorization", "")):
            return _json(*_error(401, "APIKEY.INACTIVE", "This api key is no longer active.")[:2])
        body: dict[str, Any] | None = None
        if operation in self._REQUESTS:
            raw = request.get_json(silent=True)
            if not isinstance(raw, dict) or schema_errors(self._REQUESTS[operation], raw):
                status, answer, schema = _error(422, "PARAMETER.INVALID", "The request body is not valid.")
                return self._send(operation, status, answer, schema)
            body = raw
        handler = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        status, answer, schema = handler(body, request, path)
        response = self._send(operation, status, answer, schema)
        if operation == "BuyShipment" and status == 200:
            lost = self.faults.take(operation, "lose")
            if lost is not None:
                self._stopping.wait(lost.seconds)
        return response

    def _send(self, operation: str, status: int, body: Any, schema: str) -> Response:
        problems = schema_errors(schema, body)
        if problems:
            with self._lock:
                self.validation_errors.extend(f"{operation}: {p}" for p in problems)
            return _json(*_error(500, "INTERNAL_SERVER_ERROR", "internal error")[:2])
        return _json(status, body)

    def _authorised(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, _password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return user == self.api_key

    # --- addresses ------------------------------------------------------------------------------------------

    def _create_address(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        given = body.get("address") or {}
        verify = "verify" in body or "verify_strict" in body
        strict = "verify_strict" in body
        deliverable = all(given.get(k) for k in ("street1", "city", "country"))
        if self.faults.take("CreateAddress", "address") is not None:
            deliverable = False
        field_errors = [] if deliverable else [_field_error()]
        if verify and strict and not deliverable:
            return _error(422, "ADDRESS.VERIFY.FAILURE", "Unable to verify address.", field_errors)
        now = _now()
        address = _address_json(given, _oid("adr"), now)
        if verify:
            address["verifications"] = {
                "zip4": {"success": deliverable, "errors": field_errors, "details": None},
                "delivery": {
                    "success": deliverable,
                    "errors": field_errors,
                    "details": {"latitude": 33.8436, "longitude": -118.39177, "time_zone": "America/Los_Angeles"}
                    if deliverable
                    else None,
                },
            }
        with self._lock:
            self._addresses[address["id"]] = address
        return 201, address, "Address"

    def _address_of(self, given: Any) -> dict[str, Any] | None:
        if not isinstance(given, dict):
            return None
        if given.get("id"):
            with self._lock:
                return self._addresses.get(str(given["id"]))
        address = _address_json(given, _oid("adr"), _now())
        with self._lock:
            self._addresses[address["id"]] = address
        return address

    # --- shipments and rates --------------------------------------------------------------------------------

    def _create_shipment(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        given = body.get("shipment") or {}
        to, origin = self._address_of(given.get("to_address")), self._address_of(given.get("from_address"))
        parcel = given.get("parcel")
        if to is None or origin is None or not isinstance(parcel, dict) or not parcel.get("weight"):
            return _error(422, "SHIPMENT.INVALID_PARAMS", "Missing required data to get rates.")
        label_format = str((given.get("options") or {}).get("label_format") or "PNG").upper()
        if label_format not in _FORMATS:
            return _error(422, "SHIPMENT.INVALID_PARAMS", "label_format is not offered by this carrier account.")
        now = _now()
        shipment = _Shipment(
            id=_oid("shp"),
            to_address=to,
            from_address=origin,
            parcel={
                "id": _oid("prcl"),
                "object": "Parcel",
                "created_at": now,
                "updated_at": now,
                "length": parcel.get("length"),
                "width": parcel.get("width"),
                "height": parcel.get("height"),
                "predefined_package": None,
                "weight": parcel.get("weight"),
                "mode": "test",
            },
            label_format=label_format,
            reference=str(given["reference"]) if given.get("reference") else None,
            created=now,
        )
        with self._lock:
            self._quote(shipment, Decimal(0))
            self._shipments[shipment.id] = shipment
            return 201, self._shipment_json(shipment), "Shipment"

    def _quote(self, shipment: _Shipment, surcharge: Decimal) -> None:
        ounces = Decimal(str(shipment.parcel["weight"]))
        now = _now()
        shipment.rate_ids = []
        for service, days, base, per_oz in SERVICES:
            amount = (base + per_oz * ounces + surcharge).quantize(Decimal("0.01"))
            rate_id = _oid("rate")
            self._rates[rate_id] = {
                "id": rate_id,
                "object": "Rate",
                "created_at": now,
                "updated_at": now,
                "mode": "test",
                "service": service,
                "carrier": "USPS",
                "rate": str(amount),
                "currency": "USD",
                "retail_rate": str((amount * Decimal("1.2")).quantize(Decimal("0.01"))),
                "retail_currency": "USD",
                "list_rate": str(amount),
                "list_currency": "USD",
                "billing_type": "easypost",
                "delivery_days": days,
                "delivery_date": None,
                "delivery_date_guaranteed": False,
                "est_delivery_days": days,
                "shipment_id": shipment.id,
                "carrier_account_id": _CARRIER_ACCOUNT,
            }
            shipment.rate_ids.append(rate_id)

    def _shipment_json(self, s: _Shipment) -> dict[str, Any]:
        bought = s.selected is not None
        return {
            "id": s.id,
            "object": "Shipment",
            "created_at": s.created,
            "updated_at": s.bought_at or s.created,
            "is_return": False,
            "messages": [],
            "mode": "test",
            "options": {
                "label_format": s.label_format,
                "currency": "USD",
                "payment": {"type": "SENDER"},
                "date_advance": 0,
            },
            "reference": s.reference,
            "status": "unknown",
            "tracking_code": s.tracking_code,
            "batch_id": None,
            "batch_status": None,
            "batch_message": None,
            "customs_info": None,
            "from_address": s.from_address,
            "insurance": None,
            "order_id": None,
            "parcel": s.parcel,
            "postage_label": self._label_json(s) if bought else None,
            "rates": [self._rates[r] for r in s.rate_ids],
            "refund_status": s.refund_status,
            "scan_form": None,
            "selected_rate": self._rates[s.selected] if s.selected else None,
            "tracker": self._tracker_json(s) if bought else None,
            "to_address": s.to_address,
            "usps_zone": 4,
            "return_address": s.from_address,
            "buyer_address": s.to_address,
            "forms": [],
            "fees": [
                {
                    "object": "Fee",
                    "type": "PostageFee",
                    "amount": str(Decimal(self._rates[s.selected]["rate"]).quantize(Decimal("0.00001"))),
                    "charged": True,
                    "refunded": s.refund_status == "refunded",
                }
            ]
            if s.selected
            else [],
        }

    def _label_json(self, s: _Shipment) -> dict[str, Any]:
        file_type, ext, _, _ = _FORMATS[s.label_format]
        urls = {"label_url": f"{self.base_url}/_files/postage_label/{s.id}.{ext}"}
        for fmt in s.formats | {s.label_format}:
            _, other, url_field, _ = _FORMATS[fmt]
            if url_field != "label_url":
                urls[url_field] = f"{self.base_url}/_files/postage_label/{s.id}.{other}"
        return {
            "object": "PostageLabel",
            "id": s.label_id,
            "created_at": s.bought_at,
            "updated_at": s.bought_at,
            "date_advance": 0,
            "integrated_form": "none",
            "label_date": s.bought_at,
            "label_resolution": 300,
            "label_size": "4x6",
            "label_type": "default",
            "label_file_type": file_type,
            "label_url": urls["label_url"],
            "label_pdf_url": urls.get("label_pdf_url"),
            "label_zpl_url": urls.get("label_zpl_url"),
            "label_epl2_url": None,
            "label_file": None,
        }

    def _tracker_json(self, s: _Shipment) -> dict[str, Any]:
        return {
            "id": s.tracker_id,
            "object": "Tracker",
            "mode": "test",
            "tracking_code": s.tracking_code,
            "status": "cancelled" if s.refund_status == "refunded" else "pre_transit",
            "status_detail": "status_update",
            "created_at": s.bought_at,
            "updated_at": s.bought_at,
            "signed_by": None,
            "weight": None,
            "est_delivery_date": None,
            "shipment_id": s.id,
            "carrier": "USPS",
            "tracking_details": [],
            "fees": [],
            "carrier_detail": None,
            "public_url": f"https://track.easypost.com/{s.tracker_id}",
        }

    def _get_shipment(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        with self._lock:
            shipment = self._shipments.get(path["id"])
            if shipment is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            return 200, self._shipment_json(shipment), "Shipment"

    def _get_rate(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        with self._lock:
            rate = self._rates.get(path["id"])
            if rate is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            return 200, rate, "Rate"

    def _buy_shipment(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        if not self.purchases.take():
            with self._lock:
                self.throttled += 1
            return _error(429, "RATE_LIMITED", "Too many requests; slow down.")
        rate_id = str((body.get("rate") or {}).get("id") or "")
        with self._lock:
            shipment = self._shipments.get(path["id"])
            if shipment is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            if shipment.selected is not None:
                return _error(422, "SHIPMENT.POSTAGE.EXISTS", "The shipment has already been purchased.")
            if self.faults.take("BuyShipment", "reprice") is not None:
                self._quote(shipment, Decimal("0.85"))
            if rate_id not in shipment.rate_ids:
                return _error(
                    422,
                    "SHIPMENT.MISSING_RATE",
                    "A valid rate must be supplied in order to purchase a shipment.",
                )
            now = _now()
            shipment.selected = rate_id
            shipment.bought_at = now
            shipment.tracking_code = "9434" + str(uuid.uuid4().int)[:18]
            shipment.tracker_id = _oid("trk")
            shipment.label_id = _oid("pl")
            return 200, self._shipment_json(shipment), "Shipment"

    def _get_shipment_label(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        file_format = str(request.args.get("file_format", "")).upper()
        with self._lock:
            shipment = self._shipments.get(path["id"])
            if shipment is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            if shipment.selected is None:
                return _error(422, "SHIPMENT.POSTAGE.NOT_FOUND", "The shipment has no postage label.")
            if file_format not in _FORMATS:
                return _error(422, "SHIPMENT.LABEL.INVALID_FORMAT", "file_format must be PDF, ZPL or PNG.")
            shipment.formats.add(file_format)
            return 200, self._shipment_json(shipment), "Shipment"

    def _refund_shipment(self, body: Any, request: Request, path: dict[str, str]) -> tuple[int, Any, str]:
        with self._lock:
            shipment = self._shipments.get(path["id"])
            if shipment is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            if shipment.selected is None or shipment.refund_status in ("submitted", "refunded"):
                return _error(422, "SHIPMENT.REFUND.UNAVAILABLE", "The shipment cannot be refunded.")
            if self.faults.take("RefundShipment", "refund") is not None:
                shipment.refund_status = "rejected"
            else:
                shipment.refund_status = "submitted"
            return 200, self._shipment_json(shipment), "Shipment"

    def _label_file(self, shipment_id: str, ext: str) -> Response:
        fmt = {"png": "PNG", "pdf": "PDF", "zpl": "ZPL"}[ext]
        with self._lock:
            s = self._shipments.get(shipment_id)
            if s is None or s.selected is None or fmt not in s.formats | {s.label_format}:
                return _json(404, {"error": {"code": "NOT_FOUND", "message": "Not found.", "errors": []}})
            rate = self._rates[s.selected]
            to = dict(s.to_address)
        lines = [str(to.get(k)) for k in ("name", "company", "street1", "street2") if to.get(k)] + [
            " ".join(str(to.get(k)) for k in ("city", "state", "zip") if to.get(k)),
            str(to.get("country") or ""),
        ]
        file_type, _, _, render = _FORMATS[fmt]
        service = f"{rate['carrier']} {rate['service']}".upper()
        return Response(render(service=service, tracking=s.tracking_code, lines=lines), status=200, mimetype=file_type)


_ADDRESS_FIELDS = ("name", "company", "street1", "street2", "city", "state", "zip", "country", "phone", "email")


def _address_json(given: dict[str, Any], address_id: str, now: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": address_id, "object": "Address", "created_at": now, "updated_at": now}
    for key in _ADDRESS_FIELDS:
        value = given.get(key)
        out[key] = str(value) if value else None
    out.update(
        {
            "mode": "test",
            "carrier_facility": None,
            "residential": None,
            "federal_tax_id": None,
            "state_tax_id": None,
            "verifications": {},
        }
    )
    return out


def _field_error() -> dict[str, Any]:
    return {"code": "E.ADDRESS.NOT_FOUND", "field": "address", "message": "Address not found", "suggestion": None}


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
