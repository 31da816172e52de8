"""eBay's Sell Fulfillment API document, read once: closed validators for what the fake eBay answers.

eBay's OpenAPI 3.0 schemas (``connectors/platform_specs/ebay/``) declare no required fields and leave every
object open, so validating against them as published would accept anything shaped like JSON. The validators
here close every object schema (``additionalProperties: false``), so a fake that serves a field eBay doesn't
define fails its own check; the file itself is unchanged. Error answers are checked as ``{"errors": [Error]}``
(eBay's ``Error`` schema; the document gives error responses no schema of their own), and the OAuth token
answer against the keys eBay's own OAuth clients read (the token endpoint has no schema at all).
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft4Validator

SPEC_PACKAGE = "connectors.platform_specs.ebay"
SPEC_FILE = "sell_fulfillment_v1_oas3.json"

#: The operations the fake serves, each with the schema of its success body (200, or 201 for a creation).
OPERATIONS: dict[str, str] = {
    "getOrders": "OrderSearchPagedCollection",
    "getOrder": "Order",
    "getShippingFulfillments": "ShippingFulfillmentPagedCollection",
    "createShippingFulfillment": "",  # 201: the document's body is a bare object; the Location header says it
}
#: Each operation's path and method in the document.
ROUTES: dict[str, tuple[str, str]] = {
    "getOrders": ("/order", "get"),
    "getOrder": ("/order/{orderId}", "get"),
    "getShippingFulfillments": ("/order/{orderId}/shipping_fulfillment", "get"),
    "createShippingFulfillment": ("/order/{orderId}/shipping_fulfillment", "post"),
}
#: The operations that take a request body, with its schema.
REQUESTS: dict[str, str] = {"createShippingFulfillment": "ShippingFulfillmentDetails"}
TOKEN_OPERATION = "oauthToken"  # noqa: S105 - an operation name

#: The token endpoint's success answer, from OAUTH_TOKEN_ENDPOINT.md: exactly these keys.
_TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string", "minLength": 1},
        "expires_in": {"type": "integer", "minimum": 1},
        "refresh_token": {"type": "string", "minLength": 1},
        "refresh_token_expires_in": {"type": "integer", "minimum": 1},
        "token_type": {"enum": ["User Access Token", "Application Access Token"]},
    },
    "required": ["access_token", "expires_in", "token_type"],
    "additionalProperties": False,
}
_TOKEN_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "string", "minLength": 1}, "error_description": {"type": "string"}},
    "required": ["error"],
    "additionalProperties": False,
}


@functools.cache
def load_spec() -> dict[str, Any]:
    """The Fulfillment API document as eBay publishes it."""
    text = resources.files(SPEC_PACKAGE).joinpath(SPEC_FILE).read_text(encoding="utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists properties made closed (no fields eBay doesn't define)."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@functools.cache
def _components() -> dict[str, Any]:
    closed: dict[str, Any] = _closed(copy.deepcopy(load_spec()["components"]))
    return closed


@functools.cache
def validator(operation: str, status: int) -> Draft4Validator:
    """The validator of ``operation``'s body for ``status`` (an error body for any status but 200)."""
    if operation == TOKEN_OPERATION:
        return Draft4Validator(_TOKEN_SCHEMA if status == 200 else _TOKEN_ERROR_SCHEMA)
    if status == 201:
        created = load_spec()["paths"][ROUTES[operation][0]][ROUTES[operation][1]]["responses"]["201"]
        root: dict[str, Any] = created["content"]["application/json"]["schema"]
    elif status == 200:
        root = {"$ref": f"#/components/schemas/{OPERATIONS[operation]}"}
    else:
        root = {
            "type": "object",
            "properties": {"errors": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Error"}}},
            "required": ["errors"],
            "additionalProperties": False,
        }
    return Draft4Validator({**root, "components": _components()})


def response_codes(operation: str) -> frozenset[int]:
    """The statuses the document lists for ``operation``, plus those every eBay REST call can answer (eBay's
    "HTTP status codes" page): 401 for a bad or expired token, 403 for a missing scope, 429 for a spent
    quota, 503 when the service is down."""
    if operation == TOKEN_OPERATION:
        return frozenset({200, 400, 401, 429, 500, 503})
    path, method = ROUTES[operation]
    listed = {int(code) for code in load_spec()["paths"][path][method]["responses"]}
    return frozenset(listed | {401, 403, 429, 503})


def schema_errors(operation: str, status: int, body: Any) -> list[str]:
    """Where ``body`` breaks eBay's schema for this answer, as PII-free messages (path and rule only)."""
    if status not in response_codes(operation):
        return [f"{operation}: status {status} is not in the document"]
    return [
        f"{operation} {status}: /{'/'.join(str(p) for p in err.absolute_path)} fails {err.validator}"
        for err in validator(operation, status).iter_errors(body)
    ]


@functools.cache
def _request_validator(operation: str) -> Draft4Validator:
    root = {"$ref": f"#/components/schemas/{REQUESTS[operation]}"}
    return Draft4Validator({**root, "components": _components()})


def request_errors(operation: str, body: Any) -> list[str]:
    """Where a request body breaks eBay's schema for ``operation`` (closed, like the answers), without values."""
    return [
        f"{operation} request: /{'/'.join(str(p) for p in err.absolute_path)} fails {err.validator}"
        for err in _request_validator(operation).iter_errors(body)
    ]
