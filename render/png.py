"""PNG labels: one label as a 1-bit image at the printer's resolution (203 or 300 dpi), for printers and
print services that take a picture of the label rather than ZPL or PDF.

The image is the PDF label (:mod:`render.pdf`: the same layout, shaped text and barcode) rasterised by
PDFium at exactly the printer's dots (a 4x6 in label at 203 dpi is 812 x 1218) and thresholded at half
coverage into black and white, as a thermal printer prints it: no grey, no dithering, bars with clean edges.
The file records its resolution (``pHYs``), so a print dialog prints it at its true size.

One PNG is one label: :meth:`PngRenderer.render` refuses several documents (a batch of images has no single
payload that a printer would take; the batch API asks for ZPL or PDF instead).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from render.interfaces import LabelDocument, RenderError
from render.pdf import PAGE_SIZES, PdfRenderer

if TYPE_CHECKING:
    from PIL.Image import Image as PilImage

SUPPORTED_DPI = (203, 300)
#: Grey (0 black, 255 white) to 1 bit at half, as a table Pillow applies without calling back into Python;
#: in mode "1" too, 0 is black.
_HALF_THRESHOLD = [0] * 128 + [255] * 128
#: PDFium is not thread-safe, and gunicorn's gthread workers render in several threads of one process.
_PDFIUM_LOCK = threading.Lock()


class PngRenderer:
    """``image/png``: one label, 1 bit per pixel, at ``dpi`` dots per inch."""

    media_type = "image/png"
    multi_label = False

    def __init__(self, *, dpi: Literal[203, 300] | int = 203, size: str = "4x6", font: str | None = None) -> None:
        """``dpi``: the printer's resolution. ``size``: one of :data:`render.pdf.PAGE_SIZES`. ``font``: a CJK
        font file to use instead of the discovered one."""
        if dpi not in SUPPORTED_DPI:
            raise ValueError(f"dpi must be one of {SUPPORTED_DPI}")
        if size not in PAGE_SIZES:
            raise ValueError(f"size must be one of {sorted(PAGE_SIZES)}")
        self.dpi = dpi
        self.size = size
        self._pdf = PdfRenderer(size=size, font=font)

    def render(self, documents: Sequence[LabelDocument]) -> bytes:
        """Render one document as a PNG image; :class:`RenderError` for none or several."""
        if len(documents) != 1:
            raise RenderError("a PNG label is one image: render one document at a time")
        from PIL import Image

        pdf = self._pdf.render(documents)
        width, height = (round(points / 72 * self.dpi) for points in PAGE_SIZES[self.size])
        # White background, grey coverage; scaled so the page is exactly width x height dots.
        grey = rasterise_first_page(pdf, scale=self.dpi / 72, grayscale=True).convert("L")
        if grey.size != (width, height):
            grey = grey.resize((width, height), Image.Resampling.BILINEAR)
        mono = grey.point(_HALF_THRESHOLD, mode="1")
        out = io.BytesIO()
        mono.save(out, format="PNG", dpi=(self.dpi, self.dpi))  # optimize=True: 5 % smaller, 4x slower
        return out.getvalue()


def rasterise_first_page(pdf: bytes, *, scale: float, grayscale: bool = False) -> PilImage:
    """The first page of ``pdf`` as a Pillow image at ``scale`` pixels per point, under the one lock every
    PDFium call in the process takes (PNG labels and the dashboard's preview alike)."""
    import pypdfium2 as pdfium  # loaded with the first rasterised label only

    with _PDFIUM_LOCK:
        document = pdfium.PdfDocument(pdf)
        try:
            image: PilImage = document[0].render(scale=scale, grayscale=grayscale, may_draw_forms=False).to_pil()
        finally:
            document.close()
    return image
