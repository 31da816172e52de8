"""TikTok Shop's schemas, read once: validators for what the fake serves and what a client may send.

The schemas are the ones in ``connectors/platform_specs/tiktok/`` (derived from TikTok's official SDK, see
its README); every object there forbids unknown fields, so a fake that invented one fails validation.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_FILES = ("order_V202309.schema.json", "order_V202507.schema.json", "auth_fulfillment.schema.json")

#: Every body the fake answers with, by endpoint, and the schema type it must be.
RESPONSE_TYPES: dict[str, tuple[str, str]] = {
    "token.get": ("auth_fulfillment.schema.json", "TokenGetResponse"),
    "token.refresh": ("auth_fulfillment.schema.json", "TokenGetResponse"),
    "shops": ("auth_fulfillment.schema.json", "Authorization202309GetAuthorizedShopsResponse"),
    "orders.search": ("order_V202309.schema.json", "Order202309GetOrderListResponse"),
    "orders.detail": ("order_V202309.schema.json", "Order202309GetOrderDetailResponse"),
    "orders.detail.202507": ("order_V202507.schema.json", "Order202507GetOrderDetailResponse"),
    "shipping_document": ("auth_fulfillment.schema.json", "Fulfillment202309GetPackageShippingDocumentResponse"),
}
#: The one request body TikTok's schemas describe: the order search's filters.
SEARCH_BODY = ("order_V202309.schema.json", "Order202309GetOrderListRequestBody")


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    folder = resources.files("connectors") / "platform_specs" / "tiktok"
    return {name: json.loads((folder / name).read_text(encoding="utf-8")) for name in SCHEMA_FILES}


@functools.cache
def validator(file: str, type_name: str) -> Draft202012Validator:
    """The validator of one type (``$defs`` entry) of one schema file."""
    document = _documents()[file]
    if type_name not in document["$defs"]:
        raise KeyError(f"{file} defines no {type_name}")
    # The document itself, pointed at one of its types: its internal "#/$defs/..." references resolve in it.
    return Draft202012Validator({**document, "$ref": f"#/$defs/{type_name}"})


def errors(file: str, type_name: str, body: Any) -> list[str]:
    """Where ``body`` breaks the schema type (JSON paths and the failing keyword; no values, which may be PII)."""
    found = validator(file, type_name).iter_errors(body)
    return sorted(f"{type_name}: {e.json_path} ({e.validator})" for e in found)


def response_errors(endpoint: str, body: Any) -> list[str]:
    """Where an answer of ``endpoint`` (a :data:`RESPONSE_TYPES` key) breaks TikTok's schema."""
    file, type_name = RESPONSE_TYPES[endpoint]
    return errors(file, type_name, body)


def properties(file: str, type_name: str) -> frozenset[str]:
    """The field names a schema type allows."""
    return frozenset(_documents()[file]["$defs"][type_name].get("properties", {}))
