"""Shippo's OpenAPI document, read once, as JSON Schema validators for what the fake receives and serves.

The document (``connectors/platform_specs/shippo/public-api.json``) is OpenAPI 3.1, whose schemas are JSON
Schema 2020-12, so each component schema is checked by ``jsonschema`` from a root schema that carries the
document's ``components``, where its ``#/components/...`` references resolve. The fake answers nothing these
schemas don't allow, and refuses a request body they don't allow, as Shippo's API does with a 400.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI document."""
    text = resources.files("connectors.platform_specs.shippo").joinpath("public-api.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    """The validator of one component schema (``"Shipment"``, ``"TransactionCreateRequest"``)."""
    if schema not in document()["components"]["schemas"]:
        raise KeyError(f"Shippo's document has no schema {schema!r}")
    root = {"$ref": f"#/components/schemas/{schema}", "components": document()["components"]}
    return Draft202012Validator(root)


def schema_errors(schema: str, value: Any) -> list[str]:
    """What is wrong with ``value`` as a ``schema``: paths and validator names only (no values: they may be
    addresses)."""
    return [
        f"{schema}: {'/'.join(str(p) for p in error.absolute_path) or '(root)'} fails {error.validator}"
        for error in validator(schema).iter_errors(value)
    ]


def operation_schemas(method: str, path: str) -> tuple[str | None, dict[int, str]]:
    """The request body's schema name (``None`` if it takes none or a ``oneOf``) and the response schema per
    status of one operation, as the document declares them."""
    operation = document()["paths"][path][method.lower()]
    request = None
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in body:
        request = body["$ref"].rsplit("/", 1)[1]
    responses: dict[int, str] = {}
    for status, answer in operation["responses"].items():
        if "$ref" in answer:
            answer = document()["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        if ref:
            responses[int(status)] = ref.rsplit("/", 1)[1]
    return request, responses
