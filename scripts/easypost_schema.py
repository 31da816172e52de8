"""Derive a JSON Schema of EasyPost's API objects from the official Go client's structs.

EasyPost publishes no OpenAPI document. Its Go client (``EasyPost/easypost-go`` v5.8.1, the files copied to
``connectors/platform_specs/easypost/go-models/``) is the typed description there is: each struct's fields,
their JSON names (the ``json:"..."`` tags) and their Go types. This script turns every struct of those files
into a ``$defs`` entry of one JSON Schema (2020-12) and writes it to
``connectors/platform_specs/easypost/models.schema.json``, so the fake EasyPost can refuse to serve a field
the client doesn't know or a value of the wrong type.

How Go types become JSON Schema (what ``encoding/json`` accepts when it decodes):

- ``string`` → string; ``bool`` → boolean; ``int``/``int64`` → integer; ``float64`` → number; a field tagged
  ``,string`` is a string (Go quotes the number); ``*DateTime``/``DateTime`` → string;
- ``*T``/``T`` of a struct in the files → ``$ref`` to it; ``[]*T``/``[]T`` → an array of it;
  ``map[...]...``, ``interface{}`` → anything;
- every field may be ``null`` (Go decodes ``null`` into the zero value) and none is required (all are
  ``omitempty``); an embedded struct's fields are the outer struct's;
- no other field is allowed (``additionalProperties: false``): Go would drop it silently, but a fake that
  sends fields the client never reads is sending something the document doesn't describe.

``DOCUMENTED_EXTRAS`` adds the fields EasyPost's own docs responses (``docs-responses/``) carry that the Go
client doesn't model, typed by those responses, so every golden response validates (``tests/connectors/
test_easypost_models.py`` checks both that and that this script's output is the committed file).

``ErrorResponse`` is the body of every 4xx/5xx, as ``error.go`` decodes it (``{"error": {code, message,
errors}}``).

Run: ``python scripts/easypost_schema.py`` (``--check`` exits 1 if the committed file differs).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "connectors" / "platform_specs" / "easypost"
OUT = SPECS / "models.schema.json"

_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.M | re.S)
_FIELD = re.compile(r"^\s+(\w+)\s+([^\s`]+)\s+`[^`]*json:\"([^\"]*)\"", re.M)
_EMBEDDED = re.compile(r"^\s+\*?([A-Z]\w*)\s*$", re.M)
_NESTED = re.compile(r"^\s+\w+\s+struct \{.*?^\s+\}[^\n]*\n", re.M | re.S)

_ANY: dict[str, Any] = {}
_NULL = {"type": "null"}

#: Fields shown in EasyPost's official docs responses and absent from the Go client's structs: {struct: {field:
#: schema}}. Each is typed by the values the docs show (``null`` where they only ever show null).
DOCUMENTED_EXTRAS: dict[str, dict[str, Any]] = {
    "Shipment": {"order_id": {"type": ["string", "null"]}},
    "PostageLabel": {"date_advance": {"type": ["integer", "null"]}, "label_file": {"type": ["string", "null"]}},
    "ShipmentOptions": {"date_advance": {"type": ["integer", "null"]}},
    "CustomsInfo": {"mode": {"type": ["string", "null"]}, "restriction_comments": {"type": ["string", "null"]}},
    "CustomsItem": {
        "mode": {"type": ["string", "null"]},
        "manufacturer": {"type": ["string", "null"]},
        "eccn": {"type": ["string", "null"]},
        "printed_commodity_identifier": {"type": ["string", "null"]},
    },
    "ScanForm": {"confirmation": {"type": ["string", "null"]}},
    #: The docs' error objects name each field error's code ("E.ADDRESS.NOT_FOUND"); error.go's FieldError
    #: keeps only field, message and suggestion.
    "FieldError": {"code": {"type": ["string", "null"]}},
}


def _structs(text: str) -> dict[str, str]:
    return {m[1]: _NESTED.sub("", m[2]) for m in _STRUCT.finditer(text)}


def _type(go: str, known: set[str], quoted: bool) -> dict[str, Any]:
    if quoted:
        return {"type": ["string", "null"]}
    go = go.lstrip("*")
    if go.startswith("[]"):
        return {"type": ["array", "null"], "items": _type(go[2:], known, False)}
    if go.startswith("map[") or go in ("interface{}", "any"):
        return _ANY
    scalar = {
        "string": "string",
        "bool": "boolean",
        "int": "integer",
        "int64": "integer",
        "float64": "number",
        "float32": "number",
        "DateTime": "string",
    }.get(go)
    if scalar is not None:
        return {"type": [scalar, "null"]}
    if go in known:
        return {"anyOf": [{"$ref": f"#/$defs/{go}"}, _NULL]}
    return _ANY  # a type the copied files don't define (e.g. CarrierAccount): not checked


def derive() -> dict[str, Any]:
    """The schema document: one ``$defs`` entry per struct of the Go files."""
    bodies: dict[str, str] = {}
    for path in sorted((SPECS / "go-models").glob("*.go")):
        bodies.update(_structs(path.read_text(encoding="utf-8")))
    known = set(bodies)
    defs: dict[str, Any] = {}

    def properties(name: str) -> dict[str, Any]:
        props: dict[str, Any] = {}
        body = bodies[name]
        for embedded in _EMBEDDED.findall(body):
            if embedded in bodies:
                props.update(properties(embedded))
        for _field, go, tag in _FIELD.findall(body):
            json_name, *options = tag.split(",")
            if json_name == "-" or not json_name:
                continue
            props[json_name] = _type(go, known, "string" in options)
        return props

    for name in sorted(bodies):
        props = properties(name)
        props.update(DOCUMENTED_EXTRAS.get(name, {}))
        defs[name] = {"type": "object", "properties": dict(sorted(props.items())), "additionalProperties": False}
    defs["APIErrorBody"] = {
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "message": _ANY,
            "errors": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/FieldError"}}, _ANY]},
        },
        "required": ["code", "message"],
        "additionalProperties": False,
    }
    defs["ErrorResponse"] = {
        "type": "object",
        "properties": {"error": {"$ref": "#/$defs/APIErrorBody"}},
        "required": ["error"],
        "additionalProperties": False,
    }
    version = re.search(r'Version = "([^"]+)"', (SPECS / "go-models" / "version.go").read_text(encoding="utf-8"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "EasyPost API v2 objects, derived from easypost-go structs by scripts/easypost_schema.py",
        "x-easypost-go-version": version[1] if version else "unknown",
        "$defs": defs,
    }


def render() -> str:
    """The committed file's text."""
    return json.dumps(derive(), indent=1, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python scripts/easypost_schema.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(derive()['$defs'])} definitions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
