"""PNG labels: one 1-bit image at the printer's dots per size and resolution, the PDF label's layout."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from render import RenderError, make_renderer
from render.png import PngRenderer
from tests.support.buyers import SEATTLE, TOKYO
from tests.support.render import ORDER_REF, document


@pytest.mark.parametrize(
    ("dpi", "size", "pixels"),
    [
        (203, "4x6", (812, 1218)),
        (300, "4x6", (1200, 1800)),
        (203, "100x150mm", (799, 1199)),
        (203, "100x100mm", (799, 799)),
        (300, "100x100mm", (1181, 1181)),
    ],
)
def test_one_black_and_white_image_at_the_printers_dots(dpi: int, size: str, pixels: tuple[int, int]) -> None:
    image = Image.open(io.BytesIO(PngRenderer(dpi=dpi, size=size).render([document(TOKYO)])))
    assert image.format == "PNG" and image.mode == "1"
    assert image.size == pixels
    assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)  # prints at its true size
    black = image.histogram()[0]
    assert 0.01 * pixels[0] * pixels[1] < black < 0.5 * pixels[0] * pixels[1]  # ink, on a white label


@pytest.mark.parametrize("dpi", [203, 300])
def test_the_barcode_decodes_to_the_order_id(dpi: int) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image = Image.open(io.BytesIO(PngRenderer(dpi=dpi).render([document(SEATTLE)])))
    results = zxingcpp.read_barcodes(image.convert("L"))
    assert [r.text for r in results] == [ORDER_REF]


def test_the_image_is_the_pdf_label_thresholded() -> None:
    pdfium = pytest.importorskip("pypdfium2")
    doc = document(TOKYO)
    pdf = pdfium.PdfDocument(make_renderer("pdf").render([doc]))
    grey = pdf[0].render(scale=203 / 72, grayscale=True).to_pil().convert("L")
    pdf.close()
    image = Image.open(io.BytesIO(PngRenderer().render([doc]))).convert("L")
    assert image.size == grey.size
    assert image.tobytes() == grey.point([0] * 128 + [255] * 128).tobytes()


def test_one_image_holds_one_label() -> None:
    with pytest.raises(RenderError, match="one document at a time"):
        PngRenderer().render([document(TOKYO), document(SEATTLE)])


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="dpi"):
        make_renderer("png", dpi=600)
    with pytest.raises(ValueError, match="size"):
        make_renderer("png", size="A4")
    with pytest.raises(ValueError, match="unknown option"):
        make_renderer("png", printer_font="E:ANMDJ.TTF")
