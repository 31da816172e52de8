"""Amazon's SP-API models, read once: operations, their rate limits, response validators, sandbox examples.

Everything here is derived from the vendored Swagger 2.0 files so the fakes can't drift from what Amazon
documents: the route table, the usage plans (rate and burst, parsed from each operation's description), the
JSON Schema validators per operation and status code, and the ``x-amzn-api-sandbox`` static request/response
pairs. The marketplace's models (Orders, Tokens) are in ``connectors/spapi_models/`` and served by
``connectors/fake_amazon/``; the label-buying ones (Merchant Fulfillment v0, Shipping v2), which the product's
carriers use too, are in ``connectors/platform_specs/amazon/`` and served by
``connectors/fake_amazon_shipping/`` (Merchant Fulfillment also by the fake marketplace, over its own orders:
``connectors/fake_amazon/mfn.py``).

Amazon's documents repeat operation ids (``getOrder`` in both Orders models, ``cancelShipment`` in both
shipping models, ``linkCarrierAccount`` twice within Shipping v2): :data:`_RENAMES` gives each a unique name,
and a repeat it misses is an error at load time rather than an operation silently lost. Two Merchant
Fulfillment sandbox examples put ``""`` in an enum field; they are reported (``schema_errors``), not loosened.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator, FormatChecker

_SPAPI = "connectors.spapi_models"
_SHIPPING = "connectors.platform_specs.amazon"

#: (package, file, api name) of every model.
MODEL_FILES: tuple[tuple[str, str, str], ...] = (
    (_SPAPI, "orders_2026-01-01.json", "orders2026"),
    (_SPAPI, "ordersV0.json", "ordersV0"),
    (_SPAPI, "tokens_2021-03-01.json", "tokens"),
    (_SHIPPING, "merchantFulfillmentV0.json", "mfn"),
    (_SHIPPING, "shippingV2.json", "shippingV2"),
)
#: The models the fake marketplace serves, and the ones the fake label carrier serves.
MARKETPLACE_APIS: frozenset[str] = frozenset({"orders2026", "ordersV0", "tokens"})
SHIPPING_APIS: frozenset[str] = frozenset({"mfn", "shippingV2"})

# Repeated operation ids, by (api, HTTP method, operationId): the older (v0) or the second one gets a
# suffix so routes, counters and buckets differ.
_RENAMES: dict[tuple[str, str, str], str] = {
    ("ordersV0", "GET", "getOrder"): "getOrderV0",
    ("mfn", "DELETE", "cancelShipment"): "cancelShipmentV0",
    ("shippingV2", "POST", "linkCarrierAccount"): "linkCarrierAccountPost",
}

_USAGE_PLAN = re.compile(r"\|\s*([0-9.]+)\s*\|\s*([0-9]+)\s*\|")

_DATE_TIME_FORMAT = FormatChecker()


def _is_date_time(value: object) -> bool:
    """ISO 8601 / RFC 3339 date-time with a zone, as every v2026 timestamp must be."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None and "T" in value


_DATE_TIME_FORMAT.checks("date-time", raises=ValueError)(_is_date_time)


@dataclass(frozen=True)
class Parameter:
    """One request parameter of an operation, as the model declares it."""

    name: str
    location: str  # query, path, body, header
    type: str | None
    required: bool
    enum: tuple[str, ...] | None = None
    max_items: int | None = None


@dataclass(frozen=True)
class SandboxExample:
    """One ``x-amzn-api-sandbox`` static pair: the request parameters to match and the response to replay."""

    operation: str
    status: int
    index: int
    parameters: Mapping[str, Any]
    response: Any


@dataclass(frozen=True)
class Operation:
    """One SP-API operation: where it lives, its usage plan and the schemas of its responses."""

    name: str  # operationId, made unique across models (see _RENAMES)
    operation_id: str
    api: str  # orders2026, ordersV0, tokens, mfn, shippingV2
    method: str
    path: str
    rate: float  # requests per second, as documented
    burst: int
    parameters: tuple[Parameter, ...]
    response_codes: tuple[int, ...]
    rate_limit_header_codes: frozenset[int]
    examples: tuple[SandboxExample, ...] = field(repr=False)
    pattern: re.Pattern[str] = field(repr=False)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this operation serves ``method path``, else None."""
        if method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return dict(found.groupdict()) if found else None

    def parameter(self, name: str) -> Parameter | None:
        """The declared parameter called ``name``, if any."""
        return next((p for p in self.parameters if p.name == name), None)


def _load(package: str, filename: str) -> dict[str, Any]:
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def load_models() -> dict[str, dict[str, Any]]:
    """Every model, keyed by api name (orders2026, ordersV0, tokens, mfn, shippingV2)."""
    return {api: _load(package, filename) for package, filename, api in MODEL_FILES}


def _path_pattern(path: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(regex)


def _parameters(raw: list[dict[str, Any]]) -> tuple[Parameter, ...]:
    params = []
    for p in raw:
        items = p.get("items") or {}
        enum = items.get("enum") or p.get("enum")
        params.append(
            Parameter(
                name=p["name"],
                location=p["in"],
                type=p.get("type"),
                required=bool(p.get("required", False)),
                enum=tuple(enum) if enum else None,
                max_items=p.get("maxItems"),
            )
        )
    return tuple(params)


@functools.cache
def operations() -> dict[str, Operation]:
    """Every operation of every model, keyed by its unique name (:class:`ValueError` on an unhandled repeat)."""
    ops: dict[str, Operation] = {}
    for api, model in load_models().items():
        for path, item in model["paths"].items():
            shared = item.get("parameters", [])
            for method, op in item.items():
                if method == "parameters":
                    continue
                name = _RENAMES.get((api, method.upper(), op["operationId"]), op["operationId"])
                if name in ops:
                    raise ValueError(f"{api} {method.upper()} {path}: operation id {name} repeats; add it to _RENAMES")
                plan = _USAGE_PLAN.search(op.get("description", ""))
                if plan is None:
                    raise ValueError(f"{api} {name}: no usage plan in the model's description")
                examples = []
                for code, response in op["responses"].items():
                    for index, ex in enumerate((response.get("x-amzn-api-sandbox") or {}).get("static", [])):
                        examples.append(
                            SandboxExample(
                                operation=name,
                                status=int(code),
                                index=index,
                                parameters={k: v["value"] for k, v in ex["request"]["parameters"].items()},
                                # A 204 has no content; Amazon's examples write it as {}.
                                response=None if code == "204" else ex.get("response"),
                            )
                        )
                ops[name] = Operation(
                    name=name,
                    operation_id=op["operationId"],
                    api=api,
                    method=method.upper(),
                    path=path,
                    rate=float(plan.group(1)),
                    burst=int(plan.group(2)),
                    parameters=_parameters(shared + op.get("parameters", [])),
                    response_codes=tuple(int(c) for c in op["responses"]),
                    rate_limit_header_codes=frozenset(
                        int(c)
                        for c, r in op["responses"].items()
                        if "x-amzn-RateLimit-Limit" in (r.get("headers") or {})
                    ),
                    examples=tuple(examples),
                    pattern=_path_pattern(path),
                )
    return ops


@functools.cache
def validator(operation: str, status: int) -> Draft4Validator | None:
    """A Draft 4 validator for the body of ``operation``'s ``status`` response (None if the model has no schema)."""
    op = operations()[operation]
    model = load_models()[op.api]
    path_item = model["paths"][op.path][op.method.lower()]
    response = path_item["responses"].get(str(status))
    if response is None or "schema" not in response:
        return None
    schema = {**response["schema"], "definitions": model["definitions"]}
    return Draft4Validator(schema, format_checker=_DATE_TIME_FORMAT)


def schema_errors(operation: str, status: int, body: Any) -> list[str]:
    """Where ``body`` breaks the model's schema for this response, as PII-free messages (path and rule only).

    A status the model does not list for the operation is itself an error.
    """
    op = operations()[operation]
    if status not in op.response_codes:
        return [f"{operation}: status {status} is not in the model"]
    check = validator(operation, status)
    if check is None:
        return [] if body is None else [f"{operation} {status}: the model defines no body"]
    return [
        f"{operation} {status}: /{'/'.join(str(p) for p in err.absolute_path)} fails {err.validator}"
        for err in check.iter_errors(body)
    ]


@functools.cache
def operations_of(apis: frozenset[str]) -> dict[str, Operation]:
    """The operations of the models named in ``apis`` (e.g. :data:`MARKETPLACE_APIS`), keyed by unique name."""
    return {name: op for name, op in operations().items() if op.api in apis}


def all_examples(apis: Collection[str] | None = None) -> list[SandboxExample]:
    """Every sandbox example of every operation (of the models in ``apis``, if given), in model order."""
    return [ex for op in operations().values() for ex in op.examples if apis is None or op.api in apis]


@functools.cache
def _request_validator(operation: str) -> Draft4Validator | None:
    op = operations()[operation]
    model = load_models()[op.api]
    item = model["paths"][op.path]
    declared = item.get("parameters", []) + item[op.method.lower()].get("parameters", [])
    body = next((p for p in declared if p.get("in") == "body"), None)
    if body is None or "schema" not in body:
        return None
    return Draft4Validator({**body["schema"], "definitions": model["definitions"]}, format_checker=_DATE_TIME_FORMAT)


def request_errors(operation: str, body: Any) -> list[str]:
    """Where a request body breaks the model's schema for ``operation``'s body parameter (path and rule only,
    never values: a request carries the ship-to). No body parameter: any body is an error."""
    check = _request_validator(operation)
    if check is None:
        return [] if body is None else [f"{operation}: the model takes no body"]
    return [
        f"{operation} request: /{'/'.join(str(p) for p in err.absolute_path)} fails {err.validator}"
        for err in check.iter_errors(body)
    ]
