"""EasyPost's objects as JSON Schema validators, for what the fake EasyPost receives and serves.

EasyPost publishes no OpenAPI document; ``connectors/platform_specs/easypost/models.schema.json`` is derived
from the structs of EasyPost's official Go client by ``scripts/easypost_schema.py`` (each field's JSON name
and type, ``null`` allowed, nothing else allowed), and EasyPost's own docs responses validate against it
(``tests/connectors/test_easypost_models.py``). The fake serves nothing these schemas don't allow.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


@functools.cache
def document() -> dict[str, Any]:
    """The derived schema document (``$defs`` per Go struct)."""
    text = (
        resources.files("connectors.platform_specs.easypost").joinpath("models.schema.json").read_text(encoding="utf-8")
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def validator(schema: str) -> Draft202012Validator:
    """The validator of one object (``"Shipment"``, ``"Rate"``, ``"ErrorResponse"``)."""
    if schema not in document()["$defs"]:
        raise KeyError(f"EasyPost's models have no {schema!r}")
    return Draft202012Validator({"$ref": f"#/$defs/{schema}", "$defs": document()["$defs"]})


def schema_errors(schema: str, value: Any) -> list[str]:
    """What is wrong with ``value`` as a ``schema``: paths and validator names only (no values: they may be
    addresses)."""
    return [
        f"{schema}: {'/'.join(str(p) for p in error.absolute_path) or '(root)'} fails {error.validator}"
        for error in validator(schema).iter_errors(value)
    ]
