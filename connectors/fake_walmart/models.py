"""Walmart's OpenAPI files, read once and repaired where they break OpenAPI 3.0: operations and validators.

The vendored files (``connectors/platform_specs/walmart/``, unchanged copies) fail strict validation
(``openapi-spec-validator``) in ways that say nothing about the API itself. :func:`load_spec` repairs each
in memory, and only these, so a test can validate the result strictly and the fake validates its answers
against Walmart's own schemas:

- neither file has an ``info.version`` (required by OpenAPI): the loader adds the date of the copy;
- the authentication file's ``basicScheme`` is an ``http`` scheme with ``in``/``name`` keys that only
  ``apiKey`` schemes may have: dropped;
- its ``/v3/token`` JSON answer has both ``example`` and ``examples`` (mutually exclusive): ``example`` dropped;
- its ``Scopes`` default is a string with typographic quotes (``{“reports”: “view_only”}``) where an object
  is declared: the default becomes the object it spells;
- the orders file's ``xml.namespace`` values ``com.walmart.services...`` are Java package names, not the
  URIs OpenAPI requires: dropped (they matter to XML answers only, which the fake does not serve).

Two facts the files get wrong about the JSON API are not repaired, because they are behaviour, not syntax:
``getAnOrder``'s schema is the bare order, with ``orderDate`` a date-time string, while its examples (and the
``GetOrderResponse`` component) wrap the order in ``{"order": ...}`` with epoch milliseconds, so the examples
don't validate (the required ``customerEmailId`` is "missing"); and the files define no error bodies. The
fake answers ``getAnOrder`` as the schema says, and its errors with the ``errors`` array the file defines
inside ``getAllOrders`` (Walmart's gateway error). The connector reads only ``getAllOrders``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft4Validator

SPEC_PACKAGE = "connectors.platform_specs.walmart"
ORDERS_FILE = "walmart-marketplace-orders-openapi-original.yml"
AUTH_FILE = "walmart-marketplace-authentication-openapi-original.yml"
#: The public copy's date, stated as the missing ``info.version``.
SPEC_VERSION = "2024-09"

#: Walmart's documented per-API limits (US Marketplace "Rate limiting" page): requests per minute, per
#: seller, each API its own token bucket that refills continuously. The token API's limit is undocumented.
RATE_LIMITS_PER_MINUTE: Mapping[str, int] = {
    "getAllOrders": 5000,
    "getAnOrder": 5000,
    "getAllReleasedOrders": 5000,
    "shippingUpdates": 5000,
}

_SERVED = frozenset({"tokenAPI", "getAllOrders", "getAnOrder", "shippingUpdates"})


@dataclass(frozen=True)
class Operation:
    """One Walmart operation the fake serves: where it lives and the schema of its JSON answer."""

    name: str  # operationId
    method: str
    path: str
    per_minute: int | None  # documented rate limit (None: not documented, not enforced)
    pattern: re.Pattern[str] = field(repr=False)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this operation serves ``method path``, else None."""
        if method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return dict(found.groupdict()) if found else None


def _read(filename: str) -> dict[str, Any]:
    text = resources.files(SPEC_PACKAGE).joinpath(filename).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    return loaded


def _drop_java_namespaces(node: Any) -> None:
    if isinstance(node, dict):
        xml = node.get("xml")
        if isinstance(xml, dict) and "://" not in str(xml.get("namespace", "://")):
            del xml["namespace"]
        for value in node.values():
            _drop_java_namespaces(value)
    elif isinstance(node, list):
        for value in node:
            _drop_java_namespaces(value)


def _repair_auth(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["basicScheme"]
    if scheme.get("type") == "http":
        scheme.pop("in", None)
        scheme.pop("name", None)
    token_json = spec["paths"]["/v3/token"]["post"]["responses"]["200"]["content"]["application/json"]
    if "example" in token_json and "examples" in token_json:
        del token_json["example"]

    def fix_scopes(node: Any) -> None:
        if isinstance(node, dict):
            default = node.get("default")
            if node.get("type") == "object" and isinstance(default, str):
                node["default"] = json.loads(default.replace("“", '"').replace("”", '"'))
            for value in node.values():
                fix_scopes(value)
        elif isinstance(node, list):
            for value in node:
                fix_scopes(value)

    fix_scopes(spec)


@functools.cache
def _load_spec(filename: str) -> dict[str, Any]:
    spec = _read(filename)
    spec.setdefault("info", {}).setdefault("version", SPEC_VERSION)
    if filename == AUTH_FILE:
        _repair_auth(spec)
    else:
        _drop_java_namespaces(spec)
    return spec


def load_spec(filename: str) -> dict[str, Any]:
    """One vendored file, repaired as the module docstring lists (a copy: callers may change it)."""
    return copy.deepcopy(_load_spec(filename))


def raw_spec(filename: str) -> dict[str, Any]:
    """One vendored file exactly as Walmart published it (for the test that shows why the repairs exist)."""
    return _read(filename)


def _path_pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


@functools.cache
def operations() -> dict[str, Operation]:
    """The operations the fake serves (token, all orders, one order), keyed by operationId."""
    ops: dict[str, Operation] = {}
    for filename in (AUTH_FILE, ORDERS_FILE):
        for path, item in _load_spec(filename)["paths"].items():
            for method, op in item.items():
                name = op.get("operationId") if isinstance(op, dict) else None
                if name in _SERVED:
                    ops[name] = Operation(
                        name=name,
                        method=method.upper(),
                        path=path,
                        per_minute=RATE_LIMITS_PER_MINUTE.get(name),
                        pattern=_path_pattern(path),
                    )
    missing = _SERVED - set(ops)
    if missing:
        raise ValueError(f"the Walmart spec lacks {', '.join(sorted(missing))}")
    return ops


def _json_schema(operation: str) -> dict[str, Any]:
    op = operations()[operation]
    filename = AUTH_FILE if operation == "tokenAPI" else ORDERS_FILE
    answer = _load_spec(filename)["paths"][op.path][op.method.lower()]["responses"]["200"]
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema


@functools.cache
def validator(operation: str) -> Draft4Validator:
    """A validator for ``operation``'s 200 JSON answer. OpenAPI 3.0's schema objects are a JSON Schema
    Draft 4 subset; Walmart's use none of the keywords OpenAPI adds that would change validation
    (``nullable``, ``discriminator``), and Draft 4 ignores the rest (``xml``, ``example``)."""
    return Draft4Validator(_json_schema(operation))


@functools.cache
def error_validator() -> Draft4Validator:
    """The validator of an error answer: ``{"errors": [...]}``, the gateway errors ``getAllOrders`` defines."""
    errors = _json_schema("getAllOrders")["properties"]["list"]["properties"]["errors"]
    return Draft4Validator({"type": "object", "required": ["errors"], "properties": {"errors": errors}})


def schema_errors(operation: str, status: int, body: Any) -> list[str]:
    """Where ``body`` breaks Walmart's schema for this answer, as PII-free messages (path and rule only)."""
    check = validator(operation) if status == 200 else error_validator()
    return [
        f"{operation} {status}: /{'/'.join(str(p) for p in err.absolute_path)} fails {err.validator}"
        for err in check.iter_errors(body)
    ]


@functools.cache
def request_validator(operation: str) -> Draft4Validator:
    """A validator for ``operation``'s JSON request body (``shippingUpdates``' ``orderShipment``)."""
    op = operations()[operation]
    body = _load_spec(ORDERS_FILE)["paths"][op.path][op.method.lower()]["requestBody"]
    return Draft4Validator(body["content"]["application/json"]["schema"])


def request_errors(operation: str, body: Any) -> list[str]:
    """Where a request body breaks Walmart's schema for it, as PII-free messages (path and rule only)."""
    return [
        f"{operation} request: /{'/'.join(str(p) for p in err.absolute_path)} fails {err.validator}"
        for err in request_validator(operation).iter_errors(body)
    ]


def order_statuses() -> tuple[str, ...]:
    """The order-line statuses ``getAllOrders`` declares (Created, Acknowledged, Shipped, ...), in its order."""
    order = _json_schema("getAllOrders")["properties"]["list"]["properties"]["elements"]["properties"]["order"]
    line = order["items"]["properties"]["orderLines"]["properties"]["orderLine"]["items"]
    status = line["properties"]["orderLineStatuses"]["properties"]["orderLineStatus"]["items"]["properties"]["status"]
    return tuple(status["enum"])
