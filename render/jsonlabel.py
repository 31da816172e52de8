"""JSON labels: the released ship-to fields plus the printed layout, for clients that draw their own labels.

Named ``jsonlabel`` rather than ``json`` so that nobody reading ``import json`` in this package has to
wonder which one it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from render.address import layout_address
from render.interfaces import LabelDocument, RenderError


def label_json(doc: LabelDocument) -> dict[str, Any]:
    """One label as a JSON-ready dict; ``ship_to`` holds only the fields the client's profile released."""
    ship_to = {name: value for name, value in doc.ship_to.as_dict().items() if value is not None}
    return_address = doc.return_address
    return {
        "order_ref": doc.order_ref,
        "marketplace": doc.marketplace,
        "ship_to": ship_to,
        "address_lines": layout_address(doc.ship_to),
        "printed_at": doc.printed_at.isoformat(),
        "return_address": (
            None
            if return_address is None
            else {
                "name": return_address.name,
                "lines": list(return_address.lines),
                "country_code": return_address.country_code,
            }
        ),
    }


class JsonRenderer:
    """``application/json``: one label as an object, several as ``{"labels": [...]}``."""

    media_type = "application/json"
    multi_label = True

    def render(self, documents: Sequence[LabelDocument]) -> bytes:
        """Render the documents as UTF-8 JSON (non-ASCII kept as written, not ``\\u`` escaped)."""
        if not documents:
            raise RenderError("no label documents to render")
        body: dict[str, Any] = (
            label_json(documents[0]) if len(documents) == 1 else {"labels": [label_json(d) for d in documents]}
        )
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
