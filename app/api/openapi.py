"""The label API's OpenAPI 3.1 document (openapi.json beside this module), served at ``/v1/openapi.json``.

The document is hand-written and checked: the tests validate it, check that every route of the API and of
the health endpoints is in it, and check real responses (and schemathesis' generated requests) against it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from flask import Response, current_app

DOCUMENT = Path(__file__).with_name("openapi.json")


@functools.cache
def _document_bytes() -> bytes:
    return DOCUMENT.read_bytes()


def openapi_document() -> dict[str, Any]:
    """The parsed document."""
    doc: dict[str, Any] = json.loads(_document_bytes())
    return doc


def openapi_json() -> Response:
    """Serve the document (allowlisted callers only, like every route; no key needed)."""
    return current_app.response_class(_document_bytes(), mimetype="application/json")
