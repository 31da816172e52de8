"""TikTok Shop's request signature: every Open API call carries ``sign``, an HMAC-SHA256 the app secret keys.

TikTok's recipe (its SDK's ``utils/generate-sign.ts``): the query parameters except ``sign`` and
``access_token``, sorted by name, concatenated as name then value; the request path before them; the JSON
body after them (unless the request is multipart); the whole wrapped in the app secret on both sides; then
HMAC-SHA256 keyed with the app secret, as lowercase hex. The body signed must be the exact bytes sent,
so :func:`signed_request` serialises it once and returns those bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

#: Parameters TikTok leaves out of the signature.
UNSIGNED = frozenset({"sign", "access_token"})


def sign(app_secret: str, path: str, params: Mapping[str, str], body: bytes = b"") -> str:
    """The ``sign`` of a request to ``path`` with query ``params`` and ``body`` (the bytes sent)."""
    text = path + "".join(f"{k}{params[k]}" for k in sorted(params) if k not in UNSIGNED)
    wrapped = app_secret.encode() + text.encode() + body + app_secret.encode()
    return hmac.new(app_secret.encode(), wrapped, hashlib.sha256).hexdigest()


def json_body(value: Any) -> bytes:
    """A request body as TikTok's SDK sends it: compact JSON (what is signed is what is sent)."""
    if value is None:
        return b""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def signed_request(
    *, app_key: str, app_secret: str, path: str, params: Mapping[str, str], body: Any, timestamp: int
) -> tuple[dict[str, str], bytes]:
    """The query (with ``app_key``, ``timestamp`` and ``sign``) and the body bytes of one signed request."""
    query = {**params, "app_key": app_key, "timestamp": str(timestamp)}
    data = json_body(body)
    query["sign"] = sign(app_secret, path, query, data)
    return query, data
