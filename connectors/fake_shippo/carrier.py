"""A fake Shippo over real HTTP: shipments with rates, transactions (labels), refunds, tracking and the label
files, every body checked against Shippo's OpenAPI schemas (``schema.py``), and the faults that cost money.

What it models of Shippo's behaviour, beyond the schemas: a shipment created with ``async: false`` comes back
with its rates; buying a rate (``POST /transactions``) makes a transaction that keeps the caller's
``metadata``, and ``GET /transactions?rate=`` finds it again (how a lost purchase is reconciled); a rate that
is no longer offered answers a transaction with ``status: ERROR`` and a message; an address Shippo's validator
refuses comes back with ``validation_results.is_valid: false`` and no rates; purchases are throttled by a
token bucket (HTTP 429, nothing bought).

Faults a test injects (each for the next ``count`` calls):

- :meth:`FakeShippo.fail` – an outage: the status (503 by default) instead of an answer, nothing done;
- :meth:`FakeShippo.lose_purchase` – the label is bought, then the answer is held for ``seconds`` (longer
  than the client waits), as when a connection drops after the carrier charged;
- :meth:`FakeShippo.reprice` – the rates quoted so far are withdrawn and the shipment's rates re-quoted at
  another price, so buying a quoted rate fails;
- :meth:`FakeShippo.reject_address` – the next shipments' ship-to fails address validation.

The fake logs nothing per request (it holds buyers' addresses, as a carrier does).
"""

from __future__ import annotations

import collections
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from werkzeug.wrappers import Request, Response

from connectors.fake_amazon.limits import TokenBucket
from connectors.fakeserver import FaultQueue, ServedFake, client_went_away

from . import labels
from .schema import schema_errors

#: The fake's API token (Shippo's test tokens start ``shippo_test_``).
DEFAULT_TOKEN = "shippo_test_0f4ce1abe1va017fa4e0000000000000000fake01"  # noqa: S105 - the fake's own
API_VERSION = "2018-02-08"

#: The services the fake quotes: (token, name, days, base price, price per 100 g).
SERVICES: tuple[tuple[str, str, int, Decimal, Decimal], ...] = (
    ("usps_ground_advantage", "Ground Advantage", 5, Decimal("4.75"), Decimal("0.30")),
    ("usps_priority", "Priority Mail", 2, Decimal("8.10"), Decimal("0.45")),
    ("usps_priority_express", "Priority Mail Express", 1, Decimal("26.35"), Decimal("0.80")),
)
_FILE_TYPES = {
    "PDF_4x6": ("pdf", labels.pdf_label),
    "ZPLII": ("zpl", labels.zpl_label),
    "PNG": ("png", labels.png_label),
}


@dataclass
class _Shipment:
    object_id: str
    request: dict[str, Any] = field(repr=False)
    rate_ids: list[str]
    valid: bool
    created: str


@dataclass
class _Transaction:
    object_id: str
    rate_id: str
    metadata: str
    tracking_number: str
    file_type: str
    created: str
    status: str = "SUCCESS"
    refunds: list[str] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _oid() -> str:
    return uuid.uuid4().hex


class FakeShippo(ServedFake):
    """Shippo's API for one Shippo account (token :data:`DEFAULT_TOKEN`), on ``base_url``.

    ``latency`` is added to every API answer (the carrier's own time, which the benchmark subtracts);
    ``purchase_rate`` and ``purchase_burst`` are the token bucket of ``POST /transactions``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        latency: float = 0.0,
        purchase_rate: float = 20.0,
        purchase_burst: int = 20,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.latency = latency
        super().__init__(host=host, port=port)
        self.purchases = TokenBucket(purchase_rate, purchase_burst)
        self._lock = threading.RLock()
        self._shipments: dict[str, _Shipment] = {}
        self._rates: dict[str, dict[str, Any]] = {}
        self._withdrawn: set[str] = set()
        self._transactions: dict[str, _Transaction] = {}
        self.faults = FaultQueue()
        self.calls: collections.Counter[str] = collections.Counter()
        self.throttled = 0
        self.validation_errors: list[str] = []
        self.server_errors: list[str] = []

    # --- lifecycle ------------------------------------------------------------------------------------------

    thread_name = "fake-shippo"
    wildcard_as_loopback = False
    # base_url (ServedFake's) is the API base URL (Shippo's ``https://api.goshippo.com``).

    # --- faults and inspection ------------------------------------------------------------------------------

    def fail(self, *, status: int = 503, count: int = 1, operation: str | None = None) -> None:
        """Answer the next ``count`` calls (of ``operation``, e.g. ``"CreateTransaction"``) with ``status``."""
        self.faults.add("fail", count, operation, status=status)

    def lose_purchase(self, *, seconds: float, count: int = 1) -> None:
        """Buy the next ``count`` labels, then hold each answer ``seconds`` before sending it."""
        self.faults.add("lose", count, "CreateTransaction", seconds=seconds)

    def reprice(self, *, count: int = 1) -> None:
        """At the next ``count`` purchases, withdraw every rate quoted so far and re-quote at another price."""
        self.faults.add("reprice", count, "CreateTransaction")

    def reject_address(self, *, count: int = 1) -> None:
        """The next ``count`` shipments' ship-to fails Shippo's address validation."""
        self.faults.add("address", count, "CreateShipment")

    def purchases_by_metadata(self) -> collections.Counter[str]:
        """How many labels were bought (not refunded or not) under each ``metadata``: a double purchase is 2."""
        with self._lock:
            return collections.Counter(t.metadata for t in self._transactions.values() if t.status != "ERROR")

    def transactions(self) -> list[dict[str, Any]]:
        """Every transaction as the API would serve it."""
        with self._lock:
            return [self._transaction_json(t) for t in self._transactions.values()]

    # --- WSGI -----------------------------------------------------------------------------------------------

    _ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
        ("POST", re.compile(r"/shipments/?"), "CreateShipment"),
        ("GET", re.compile(r"/shipments/(?P<id>\w+)"), "GetShipment"),
        ("GET", re.compile(r"/rates/(?P<id>\w+)"), "GetRate"),
        ("POST", re.compile(r"/transactions/?"), "CreateTransaction"),
        ("GET", re.compile(r"/transactions/?"), "ListTransactions"),
        ("GET", re.compile(r"/transactions/(?P<id>\w+)"), "GetTransaction"),
        ("POST", re.compile(r"/refunds/?"), "CreateRefund"),
        ("GET", re.compile(r"/tracks/(?P<carrier>\w+)/(?P<tracking>\w+)"), "GetTrack"),
    )
    _LABEL_FILE = re.compile(r"/_labels/(?P<id>\w+)\.(?P<ext>pdf|zpl|png)")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # a fake bug: answer 500, record the type only (no PII)
            if not client_went_away(exc):
                with self._lock:
                    self.server_errors.append(f"{request.method} {request.path}: {type(exc).__name__}")
            response = _json(500, {"detail": "internal error"})
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        found = self._LABEL_FILE.fullmatch(request.path)
        if found and request.method == "GET":
            return self._label_file(found["id"], found["ext"])
        for method, pattern, operation in self._ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return self._api(operation, request, match.groupdict())
        return _json(404, {"detail": "Not found."})

    def _api(self, operation: str, request: Request, path: dict[str, str]) -> Response:
        with self._lock:
            self.calls[operation] += 1
        if self.latency:
            self._stopping.wait(self.latency)
        fault = self.faults.take(operation, "fail")
        if fault is not None:
            return _json(fault.status, {"detail": "Service unavailable"})
        if request.headers.get("Authorization") != f"ShippoToken {self.token}":
            return _json(401, {"detail": "Invalid token."})
        handler = getattr(self, "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        status, body, schema = handler(request, path)
        if schema is not None:
            problems = schema_errors(schema, body)
            if problems:
                with self._lock:
                    self.validation_errors.extend(problems)
                return _json(500, {"detail": "internal error"})
        response = _json(status, body)
        if operation == "CreateTransaction":
            lost = self.faults.take(operation, "lose") if status == 201 else None
            if lost is not None:
                self._stopping.wait(lost.seconds)
        return response

    def _body(self, request: Request, schema: str | None) -> dict[str, Any] | None:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return None
        if schema is not None and schema_errors(schema, body):
            return None
        return body

    # --- shipments and rates --------------------------------------------------------------------------------

    def _create_shipment(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        body = self._body(request, "ShipmentCreateRequest")
        if (
            body is None
            or not isinstance(body.get("address_to"), dict)
            or not isinstance(body.get("address_from"), dict)
        ):
            return 400, {"detail": "address_to, address_from and parcels are required objects"}, "BadRequest"
        to = body["address_to"]
        valid = all(to.get(k) for k in ("name", "street1", "city", "country"))
        if self.faults.take("CreateShipment", "address") is not None:
            valid = False
        now = _now()
        shipment = _Shipment(_oid(), body, [], valid, now)
        with self._lock:
            self._shipments[shipment.object_id] = shipment
            if valid:
                self._quote(shipment, Decimal(0))
        return 201, self._shipment_json(shipment), "Shipment"

    def _quote(self, shipment: _Shipment, surcharge: Decimal) -> None:
        parcels = shipment.request.get("parcels") or []
        grams = sum(_grams(p) for p in parcels if isinstance(p, dict))
        now = _now()
        shipment.rate_ids = []
        for token, name, days, base, per_100g in SERVICES:
            amount = (base + per_100g * (Decimal(grams) / 100) + surcharge).quantize(Decimal("0.01"))
            rate_id = _oid()
            rate: dict[str, Any] = {
                "object_id": rate_id,
                "object_created": now,
                "object_owner": "seller@fake-shippo.example",
                "shipment": shipment.object_id,
                "amount": str(amount),
                "amount_local": str(amount),
                "currency": "USD",
                "currency_local": "USD",
                "provider": "USPS",
                "provider_image_75": "https://cdn2.goshippo.com/providers/75/USPS.png",
                "provider_image_200": "https://cdn2.goshippo.com/providers/200/USPS.png",
                "servicelevel": {"name": name, "token": token, "terms": ""},
                "estimated_days": days,
                "duration_terms": f"Delivery in {days} business days",
                "attributes": [],
                "carrier_account": "fakeshippousps0000000000000000001",
                "messages": [],
                "test": True,
                "zone": "5",
            }
            self._rates[rate_id] = rate
            shipment.rate_ids.append(rate_id)
        cheapest = min(shipment.rate_ids, key=lambda r: Decimal(self._rates[r]["amount"]))
        fastest = min(shipment.rate_ids, key=lambda r: self._rates[r]["estimated_days"])
        self._rates[cheapest]["attributes"].append("CHEAPEST")
        self._rates[fastest]["attributes"].append("FASTEST")

    def _shipment_json(self, shipment: _Shipment) -> dict[str, Any]:
        req = shipment.request
        to = dict(req["address_to"])
        to.pop("validate", None)
        to |= {
            "object_id": _oid(),
            "is_complete": shipment.valid,
            "validation_results": {
                "is_valid": shipment.valid,
                "messages": []
                if shipment.valid
                else [
                    {
                        "code": "Invalid City/State/Zip",
                        "source": "USPS",
                        "type": "address_error",
                        "text": "The city, state and ZIP code do not match.",
                    }
                ],
            },
        }
        origin = dict(req["address_from"])
        origin.pop("validate", None)
        return {
            "object_id": shipment.object_id,
            "object_created": shipment.created,
            "object_updated": shipment.created,
            "object_owner": "seller@fake-shippo.example",
            "status": "SUCCESS",
            "address_from": origin,
            "address_to": to,
            "parcels": [
                {
                    **p,
                    "object_id": _oid(),
                    "object_state": "VALID",
                    "object_created": shipment.created,
                    "object_updated": shipment.created,
                    "object_owner": "seller@fake-shippo.example",
                }
                for p in req.get("parcels", [])
                if isinstance(p, dict)
            ],
            "rates": [self._rates[r] for r in shipment.rate_ids if r not in self._withdrawn],
            "carrier_accounts": [],
            "messages": []
            if shipment.valid
            else [{"source": "USPS", "code": "address_invalid", "text": "The recipient address is not valid."}],
            "metadata": str(req.get("metadata") or ""),
            "test": True,
        }

    def _get_shipment(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        with self._lock:
            shipment = self._shipments.get(path["id"])
            if shipment is None:
                return 404, {"detail": "Not found."}, None
            return 200, self._shipment_json(shipment), "Shipment"

    def _get_rate(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        with self._lock:
            rate = self._rates.get(path["id"])
            if rate is None or path["id"] in self._withdrawn:
                return 404, {"detail": "Not found."}, None
            return 200, rate, "Rate"

    # --- transactions (labels) ------------------------------------------------------------------------------

    def _create_transaction(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        body = self._body(request, "TransactionCreateRequest")
        if body is None:
            return 400, {"detail": "rate is required"}, "BadRequest"
        if not self.purchases.take():
            with self._lock:
                self.throttled += 1
            return 429, {"detail": "Request was throttled."}, None
        file_type = body.get("label_file_type") or "PDF_4x6"
        if file_type not in _FILE_TYPES:
            return 400, {"detail": f"label_file_type {file_type} is not offered by this carrier account"}, "BadRequest"
        with self._lock:
            rate_id = str(body["rate"])
            if rate_id not in self._rates:
                return 400, {"detail": "Rate not found."}, "BadRequest"
            if self.faults.take("CreateTransaction", "reprice") is not None:
                shipment = self._shipments[self._rates[rate_id]["shipment"]]
                self._withdrawn.update(shipment.rate_ids)
                self._quote(shipment, Decimal("0.85"))
            transaction = _Transaction(
                object_id=_oid(),
                rate_id=rate_id,
                metadata=str(body.get("metadata") or ""),
                tracking_number="9400" + str(uuid.uuid4().int)[:18],
                file_type=file_type,
                created=_now(),
            )
            if rate_id in self._withdrawn:
                transaction.status = "ERROR"
                transaction.tracking_number = ""
            self._transactions[transaction.object_id] = transaction
            return 201, self._transaction_json(transaction), "Transaction"

    def _transaction_json(self, t: _Transaction) -> dict[str, Any]:
        ok = t.status != "ERROR"
        ext = _FILE_TYPES[t.file_type][0]
        return {
            "object_id": t.object_id,
            "object_created": t.created,
            "object_updated": t.created,
            "object_owner": "seller@fake-shippo.example",
            "object_state": "VALID" if ok else "INVALID",
            "status": t.status,
            "rate": t.rate_id,
            "metadata": t.metadata,
            "label_file_type": t.file_type,
            "label_url": f"{self.base_url}/_labels/{t.object_id}.{ext}" if ok else "",
            "tracking_number": t.tracking_number,
            "tracking_status": "PRE_TRANSIT" if ok else "UNKNOWN",
            "tracking_url_provider": (
                f"https://tools.usps.com/go/TrackConfirmAction?tLabels={t.tracking_number}" if ok else ""
            ),
            "messages": []
            if ok
            else [
                {"source": "Shippo", "code": "rate_expired", "text": "The rate is no longer available; get new rates."}
            ],
            "test": True,
        }

    def _get_transaction(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        with self._lock:
            transaction = self._transactions.get(path["id"])
            if transaction is None:
                return 404, {"detail": "Not found."}, None
            return 200, self._transaction_json(transaction), "Transaction"

    def _list_transactions(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        rate = request.args.get("rate")
        status = request.args.get("object_status")
        try:
            page = max(1, int(request.args.get("page", "1")))
            size = min(100, max(1, int(request.args.get("results", "25"))))
        except ValueError:
            return 400, {"detail": "page and results are numbers"}, "BadRequest"
        with self._lock:
            found = [
                t
                for t in self._transactions.values()
                if (rate is None or t.rate_id == rate) and (status is None or t.status == status)
            ]
            chunk = found[(page - 1) * size : page * size]
            body: dict[str, Any] = {"results": [self._transaction_json(t) for t in chunk]}
        if page * size < len(found):
            body["next"] = f"{self.base_url}/transactions?page={page + 1}&results={size}"
        if page > 1:
            body["previous"] = f"{self.base_url}/transactions?page={page - 1}&results={size}"
        return 200, body, "TransactionPaginatedList"

    def _label_file(self, transaction_id: str, ext: str) -> Response:
        with self._lock:
            t = self._transactions.get(transaction_id)
            if t is None or t.status == "ERROR" or _FILE_TYPES[t.file_type][0] != ext:
                return _json(404, {"detail": "Not found."})
            rate = self._rates[t.rate_id]
            request = self._shipments[rate["shipment"]].request
        to = request["address_to"]
        lines = [str(to.get(k)) for k in ("name", "company", "street1", "street2", "street3") if to.get(k)] + [
            " ".join(str(to.get(k)) for k in ("city", "state", "zip") if to.get(k)),
            str(to.get("country", "")),
        ]
        service = f"{rate['provider']} {rate['servicelevel']['name']}".upper()
        render = _FILE_TYPES[t.file_type][1]
        media = {"pdf": "application/pdf", "zpl": "application/zpl", "png": "image/png"}[ext]
        return Response(render(service=service, tracking=t.tracking_number, lines=lines), status=200, mimetype=media)

    # --- refunds and tracking -------------------------------------------------------------------------------

    def _create_refund(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        body = self._body(request, "RefundRequestBody")
        if body is None:
            return 400, {"detail": "transaction is required"}, "BadRequest"
        with self._lock:
            t = self._transactions.get(str(body["transaction"]))
            if t is None:
                return 400, {"detail": "Transaction not found."}, "BadRequest"
            if t.status in ("REFUNDED", "ERROR"):
                return 400, {"detail": "This transaction cannot be refunded."}, "BadRequest"
            t.status = "REFUNDED"
            refund_id = _oid()
            refund = {
                "object_id": refund_id,
                "object_created": _now(),
                "object_updated": _now(),
                "object_owner": "seller@fake-shippo.example",
                "status": "SUCCESS",
                "transaction": t.object_id,
                "test": True,
            }
            t.refunds.append(refund_id)
        return 201, refund, "Refund"

    def _get_track(self, request: Request, path: dict[str, str]) -> tuple[int, Any, str | None]:
        with self._lock:
            t = next((t for t in self._transactions.values() if t.tracking_number == path["tracking"]), None)
        now = _now()
        status = "PRE_TRANSIT" if t is not None and t.status != "REFUNDED" else "UNKNOWN"
        return (
            200,
            {
                "carrier": path["carrier"],
                "tracking_number": path["tracking"],
                "tracking_status": {
                    "object_created": now,
                    "object_updated": now,
                    "object_id": _oid(),
                    "status": status,
                    "status_details": "The carrier has been told about the parcel." if t else "Unknown.",
                    "status_date": now,
                },
                "tracking_history": [],
                "messages": [],
                "metadata": "",
            },
            "Track",
        )


def _grams(parcel: dict[str, Any]) -> int:
    try:
        weight = Decimal(str(parcel.get("weight", "0")))
    except ArithmeticError:
        return 0
    factor = {"g": Decimal(1), "kg": Decimal(1000), "lb": Decimal("453.59237"), "oz": Decimal("28.349523125")}
    return int(weight * factor.get(str(parcel.get("mass_unit")), Decimal(1)))


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
