"""Amazon's Merchant Fulfillment v0 and Shipping v2 models (Swagger 2.0), read once, as JSON Schema validators,
and their ``x-amzn-api-sandbox`` cases, for the fake to validate what it serves and the tests to replay.

The documents are used as Amazon publishes them (``connectors/platform_specs/amazon/``); their two known
defects are handled here: shippingV2 names two operations ``linkCarrierAccount`` (operations are keyed by
method and path, and :func:`operations` suffixes the second id with its method), and two MFN sandbox cases put
``""`` in an enum field (:func:`sandbox_cases` reports them as ``known_bad``, nothing is loosened).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator

MFN = "merchantFulfillmentV0.json"
SHIPPING = "shippingV2.json"


@functools.cache
def document(name: str) -> dict[str, Any]:
    """One of the two documents (:data:`MFN`, :data:`SHIPPING`)."""
    text = resources.files("connectors.platform_specs.amazon").joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its (unique) id, method, path and the response schema per status."""

    operation_id: str
    method: str
    path: str
    responses: dict[int, dict[str, Any]]
    raw: dict[str, Any]


@functools.cache
def operations(name: str) -> dict[str, Operation]:
    """The document's operations by a unique id (a repeated operationId gets ``_<method>`` appended)."""
    out: dict[str, Operation] = {}
    for path, item in document(name)["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            op_id = op["operationId"]
            if op_id in out:
                op_id = f"{op_id}_{method}"
            responses = {int(s): r.get("schema", {}) for s, r in op["responses"].items() if s.isdigit()}
            out[op_id] = Operation(op_id, method.upper(), path, responses, op)
    return out


@functools.cache
def _validator(name: str, schema_json: str) -> Draft4Validator:
    root = dict(json.loads(schema_json))
    root["definitions"] = document(name)["definitions"]
    return Draft4Validator(root)


def schema_errors(name: str, schema: dict[str, Any], value: Any) -> list[str]:
    """What is wrong with ``value`` as ``schema`` (a schema of document ``name``, usually a ``$ref``): paths and
    validator names only, never values (they may be addresses)."""
    validator = _validator(name, json.dumps(schema, sort_keys=True))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'} fails {e.validator}"
        for e in validator.iter_errors(value)
    ]


def response_errors(name: str, operation_id: str, status: int, body: Any) -> list[str]:
    """What is wrong with ``body`` as the answer ``status`` of an operation."""
    op = operations(name)[operation_id]
    if status not in op.responses:
        return [f"{operation_id} declares no HTTP {status}"]
    return schema_errors(name, op.responses[status], body)


@dataclass(frozen=True, slots=True)
class SandboxCase:
    """One ``x-amzn-api-sandbox`` static case: the request Amazon's sandbox takes and the answer it gives."""

    operation_id: str
    status: int
    request: dict[str, Any]
    response: Any


def sandbox_cases(name: str) -> list[SandboxCase]:
    """Every static sandbox case of the document, in document order."""
    cases: list[SandboxCase] = []
    for op in operations(name).values():
        for status, answer in op.raw["responses"].items():
            if not status.isdigit():
                continue
            for case in (answer.get("x-amzn-api-sandbox") or {}).get("static") or []:
                cases.append(SandboxCase(op.operation_id, int(status), case.get("request") or {}, case["response"]))
    return cases
