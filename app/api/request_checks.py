"""What a label request may carry, checked at the edge, before anything is counted, looked up or unsealed:
the order reference, the label format and its options (``?format=`` or ``Accept``), a batch's body."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, request
from werkzeug.exceptions import NotAcceptable

from connectors import registry
from render import FORMATS, SIZES

#: Response media type of each format, for content negotiation (the renderers report the same).
MEDIA_TYPES = {"json": "application/json", "zpl": "application/zpl", "pdf": "application/pdf", "png": "image/png"}
#: What a marketplace name and an order id may look like; anything else is a 404 like a missing order.
_MARKETPLACE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Renderer options a client may pass as query parameters, per format: accepted spellings → values.
_DPI = {"203": 203, "300": 300}
_SIZES = {size: size for size in SIZES}
_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "zpl": {"dpi": _DPI, "size": _SIZES},
    "pdf": {"size": _SIZES},
    "png": {"dpi": _DPI, "size": _SIZES},
}
#: Formats whose payload is one label (a PNG is one image): a batch can't be answered in them.
SINGLE_LABEL_FORMATS = frozenset({"png"})
#: Most order references one batch request may carry (a wave of picking, not a data export).
BATCH_MAX = 500
#: What an ``Idempotency-Key`` may be: 1 to 255 visible ASCII characters (a UUID, say).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def well_formed(marketplace: str, order_id: str) -> bool:
    """Whether a reference can name an order at all: a registered marketplace platform and an id of its
    format (anything else is a 404, audited without it)."""
    return bool(
        _MARKETPLACE.fullmatch(marketplace)
        and _ORDER_ID.fullmatch(order_id)
        and registry.is_order_ref(marketplace, order_id)
    )


def negotiate_format(default: str = "json") -> tuple[str, dict[str, Any]]:
    """The requested label format and its renderer options; ``?format=`` wins over ``Accept``."""
    fmt = request.args.get("format")
    if fmt is None:
        # No Accept, or the */* most HTTP clients send, is no preference: answered without parsing.
        if request.headers.get("Accept", "*/*") == "*/*" or not request.accept_mimetypes:
            fmt = default
        else:
            best = request.accept_mimetypes.best_match([MEDIA_TYPES[f] for f in FORMATS])
            if best is None:
                raise NotAcceptable(f"available label formats: {', '.join(MEDIA_TYPES.values())}")
            fmt = next(f for f, mt in MEDIA_TYPES.items() if mt == best)
    elif fmt not in FORMATS:
        abort(400, f"format must be one of {', '.join(FORMATS)}")
    options: dict[str, Any] = {}
    for name, allowed in _OPTIONS.get(fmt, {}).items():
        value = request.args.get(name)
        if value is not None:
            if value not in allowed:
                abort(400, f"{name} must be one of {', '.join(allowed)} for {fmt} labels")
            options[name] = allowed[value]
    return fmt, options


def wants_document(fmt: str) -> bool:
    """Whether a batch is answered with its document itself rather than the JSON envelope (README, "Batches").

    Only when ``Accept`` names the document's media type (``application/pdf``, ``application/zpl``) at least
    as high as ``application/json``; no ``Accept``, ``*/*`` or a JSON preference keeps the envelope.
    """
    accept = request.headers.get("Accept", "*/*")
    if fmt == "json" or accept == "*/*":
        return False
    return request.accept_mimetypes.best_match([MEDIA_TYPES[fmt], "application/json"]) == MEDIA_TYPES[fmt] and (
        MEDIA_TYPES[fmt] in request.accept_mimetypes.values()
    )


def idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` header, if it has one; a 400 if it is not 1 to 255 visible characters."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        abort(400, "Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


def batch_refs(payload: Any) -> list[tuple[str, str]]:
    """The ``orders`` of a batch request body, validated: 1 to 500 ``{marketplace, order_id}`` objects."""
    orders = payload.get("orders") if isinstance(payload, dict) else None
    if not isinstance(orders, list) or not 1 <= len(orders) <= BATCH_MAX:
        abort(400, f'the body must be {{"orders": [...]}} with 1 to {BATCH_MAX} order references')
    refs: list[tuple[str, str]] = []
    for item in orders:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("marketplace"), str)
            and isinstance(item.get("order_id"), str)
        ):
            abort(400, "each order reference is an object with string fields marketplace and order_id")
        refs.append((item["marketplace"], item["order_id"]))
    return refs
