"""The label preview: the real 4x6 PDF label of an order, rasterised to PNG for the browser (pypdfium2)."""

from __future__ import annotations

import io

from render import LabelDocument, make_renderer
from vault.clients import DEFAULT_PROFILE
from vault.models import Order, utcnow
from vault.records import LabelRecord

#: 2 px per PDF point: a 4x6 label becomes 576 x 864 px, sharp on a high-density screen at half size.
SCALE = 2.0


def label_png(order: Order, record: LabelRecord) -> bytes:
    """The order's label as a client with the default profile would print it, as PNG bytes."""
    import pypdfium2 as pdfium  # loaded on first preview only

    document = LabelDocument(
        order_ref=order.external_order_id,
        marketplace=order.marketplace,
        ship_to=DEFAULT_PROFILE.apply(record),
        printed_at=utcnow(),
    )
    pdf = make_renderer("pdf").render([document])
    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[0].render(scale=SCALE).to_pil()
    finally:
        doc.close()
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
