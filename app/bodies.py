"""Bounded request bodies, in the app itself (not only nginx's ``client_max_body_size``).

- Size: Flask's ``MAX_CONTENT_LENGTH`` is ``LABELVAULT_MAX_REQUEST_BYTES``. :func:`check_size` refuses a
  declared ``Content-Length`` above it before anything reads the body, and a streamed (chunked) JSON body
  that reaches it: a :class:`~app.errors.BodyTooLarge` refusal (413), audited and counted like every
  refusal (app/refusals.py). A streamed form that runs past it is refused by werkzeug's form parser (a
  plain 413 problem).
- Nesting: Python's json parser recurses once per ``[`` or ``{``, so 100,000 of them raise RecursionError,
  which no caller expects (a 500). :class:`BoundedJSONProvider` refuses JSON nested deeper than
  :data:`MAX_JSON_DEPTH` with a ValueError before parsing, which Flask turns into a malformed body (400).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider

from app.errors import BodyTooLarge
from app.services import services

#: Deepest JSON nesting accepted. A batch body is three levels deep; nothing labelvault reads needs more
#: than a handful, and 32 stays far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    """A JSON document nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`."""


def json_depth(text: str) -> int:
    """How deep ``text`` nests arrays and objects (brackets inside strings don't count)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing documents nested deeper than :data:`MAX_JSON_DEPTH` before parsing them."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        text = s.decode(json.detect_encoding(s), "surrogatepass") if isinstance(s, bytes) else s
        if json_depth(text) > MAX_JSON_DEPTH:
            raise JsonTooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(text, **kwargs)


def check_size() -> None:
    """Refuse a request whose body is larger than ``LABELVAULT_MAX_REQUEST_BYTES`` (413).

    A declared ``Content-Length`` is checked as it is. A streamed JSON body (chunked, which the server
    de-chunks and marks ``wsgi.input_terminated``) is read here, up to the limit (werkzeug reads no further
    and would hand on the cut-off body as if whole); one that reaches the limit is refused.
    """
    limit = services().settings.max_request_bytes
    length = request.content_length
    streamed = length is None and request.is_json and "wsgi.input_terminated" in request.environ
    if (length is not None and length > limit) or (streamed and len(request.get_data(cache=True)) >= limit):
        raise BodyTooLarge(limit)
