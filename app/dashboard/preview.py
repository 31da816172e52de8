"""The label preview: the real 4x6 PDF label of an order, rasterised to PNG for the browser (pypdfium2).

The document is the one the label API prints (app/printing.py): the same PDF renderer, the tenant's return
address, and the profile the vault's preview cut the record to (the default profile).
"""

from __future__ import annotations

import io
from typing import Any

from app.printing import label_document, render, renderer_for
from render.png import rasterise_first_page
from vault.clients import DEFAULT_PROFILE
from vault.models import utcnow
from vault.release import PreviewedLabel

#: 2 px per PDF point: a 4x6 label becomes 576 x 864 px, sharp on a high-density screen at half size.
SCALE = 2.0


def label_png(shown: PreviewedLabel, sender: dict[str, Any] | None) -> bytes:
    """A previewed label as a client with the default profile would print it, as PNG bytes."""
    pdf = render(renderer_for("pdf", DEFAULT_PROFILE), [label_document(shown, sender, utcnow())])
    image = rasterise_first_page(pdf, scale=SCALE)  # PDFium is not thread-safe: its one lock
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
