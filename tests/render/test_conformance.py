"""Every renderer honours the LabelRenderer contract: 1 or N documents in, bytes of its media type out."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from render import FORMATS, LabelRenderer, RenderError, make_renderer
from tests.support.buyers import SEATTLE, SHANGHAI, TOKYO
from tests.support.render import ORDER_REF, document

RENDERERS: list[tuple[str, dict[str, Any]]] = [
    ("json", {}),
    ("zpl", {"dpi": 203}),
    ("zpl", {"dpi": 300}),
    ("zpl", {"printer_font": "E:ANMDJ.TTF"}),
    ("pdf", {"size": "4x6"}),
    ("pdf", {"size": "100x150mm"}),
    ("pdf", {"size": "100x100mm"}),
    ("zpl", {"size": "100x100mm"}),
    ("png", {"dpi": 203}),
    ("png", {"dpi": 300, "size": "100x100mm"}),
]
MEDIA_TYPES = {"json": "application/json", "zpl": "application/zpl", "pdf": "application/pdf", "png": "image/png"}


def label_count(fmt: str, payload: bytes) -> int:
    """How many labels the payload holds, read the way its consumer reads it."""
    if fmt == "json":
        body = json.loads(payload.decode("utf-8"))
        return len(body["labels"]) if "labels" in body else 1
    if fmt == "zpl":
        import zplkit.parse

        names = [bytes(e)[:3] for e in zplkit.parse.parse(payload).elements]
        assert names.count(b"^XA") == names.count(b"^XZ")
        return names.count(b"^XA")
    if fmt == "png":
        from PIL import Image

        image = Image.open(io.BytesIO(payload))
        assert image.format == "PNG" and image.mode == "1"
        return getattr(image, "n_frames", 1)
    pypdf = pytest.importorskip("pypdf")
    assert payload.startswith(b"%PDF-")
    return len(pypdf.PdfReader(io.BytesIO(payload)).pages)


@pytest.fixture(params=RENDERERS, ids=lambda p: "-".join([p[0], *map(str, p[1].values())]))
def renderer_case(request: pytest.FixtureRequest) -> tuple[str, LabelRenderer]:
    fmt, options = request.param
    return fmt, make_renderer(fmt, **options)


def test_is_a_label_renderer_of_its_media_type(renderer_case: tuple[str, LabelRenderer]) -> None:
    fmt, renderer = renderer_case
    assert isinstance(renderer, LabelRenderer)
    assert renderer.media_type == MEDIA_TYPES[fmt]


def test_renders_one_document(renderer_case: tuple[str, LabelRenderer]) -> None:
    fmt, renderer = renderer_case
    payload = renderer.render([document(TOKYO)])
    assert isinstance(payload, bytes)
    assert label_count(fmt, payload) == 1
    if fmt not in ("pdf", "png"):  # PDF content streams are compressed; its text is checked in test_pdf
        assert ORDER_REF.encode() in payload


def test_renders_several_documents_in_order(renderer_case: tuple[str, LabelRenderer]) -> None:
    fmt, renderer = renderer_case
    refs = ["111-0000001-0000001", "222-0000002-0000002", "333-0000003-0000003"]
    docs = [document(r, order_ref=ref) for r, ref in zip((TOKYO, SHANGHAI, SEATTLE), refs, strict=True)]
    if not renderer.multi_label:
        with pytest.raises(RenderError, match="one document at a time"):
            renderer.render(docs)
        return
    payload = renderer.render(docs)
    assert label_count(fmt, payload) == 3
    if fmt != "pdf":
        positions = [payload.index(ref.encode()) for ref in refs]
        assert positions == sorted(positions)


def test_no_documents_is_a_render_error(renderer_case: tuple[str, LabelRenderer]) -> None:
    _, renderer = renderer_case
    with pytest.raises(RenderError):
        renderer.render([])


def test_factory_knows_every_format_and_rejects_the_rest() -> None:
    assert set(FORMATS) == set(MEDIA_TYPES)
    with pytest.raises(ValueError, match="unknown label format"):
        make_renderer("gif")
    with pytest.raises(ValueError, match="unknown option"):
        make_renderer("pdf", dpi=300)
    with pytest.raises(ValueError, match="dpi"):
        make_renderer("zpl", dpi=600)
    with pytest.raises(ValueError, match="size"):
        make_renderer("pdf", size="A4")
