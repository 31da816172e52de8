"""PDF labels: page sizes, embedded CJK text that extracts as written, coverage errors, barcode, batches."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from render import FontCoverageError, RenderError, shaping
from render.pdf import PdfRenderer, warm_up
from tests.support.buyers import ATHENS, MOSCOW, SEATTLE, SHANGHAI, TOKYO
from tests.support.render import ORDER_REF, document
from vault.records import LabelRecord

pypdf = pytest.importorskip("pypdf")


def page_texts(payload: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(payload)).pages]


@pytest.mark.parametrize(
    ("size", "points"), [("4x6", (288, 432)), ("100x150mm", (283.46, 425.2)), ("100x100mm", (283.46, 283.46))]
)
def test_page_size(size: str, points: tuple[float, float]) -> None:
    reader = pypdf.PdfReader(io.BytesIO(PdfRenderer(size=size).render([document()])))
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(points, abs=0.01)


def test_japanese_and_chinese_addresses_extract_exactly_as_given() -> None:
    tokyo, shanghai = page_texts(PdfRenderer().render([document(TOKYO), document(SHANGHAI)]))
    for value in ("〒150-0001", "東京都", "渋谷区", "神宮前1-2-3", "ハイツ原宿101", "山田 太郎"):
        assert value in tokyo.splitlines()
    for value in ("200120", "上海市浦东新区", "世纪大道100号环球金融中心", "王小明"):
        assert value in shanghai.splitlines()


def test_european_scripts_order_id_return_address_and_print_time_are_on_the_label() -> None:
    texts = page_texts(PdfRenderer().render([document(MOSCOW), document(ATHENS)]))
    assert "Иван Петров" in texts[0] and "ул. Тверская, д. 7, кв. 12" in texts[0]
    assert "Γιώργος Παπαδόπουλος" in texts[1]  # accented Greek comes from the fallback font
    for text in texts:
        assert ORDER_REF in text
        assert "Shenzhen Bright Trading Co." in text
        assert "PRINTED 2025-03-04 05:06+00:00" in text


def test_fonts_are_embedded_not_left_to_the_printer() -> None:
    reader = pypdf.PdfReader(io.BytesIO(PdfRenderer().render([document(TOKYO)])))
    page_fonts = reader.pages[0]["/Resources"]["/Font"]
    for ref in page_fonts.values():
        font = ref.get_object()
        assert font["/Subtype"] == "/Type3"  # glyph outlines inside the file
        assert "/ToUnicode" in font


@pytest.mark.parametrize(
    ("value", "codepoint"),
    [("\ue000", "U\\+E000"), ("\U00011f04", "Kawi script \\(U\\+11F04\\)")],
    ids=["private-use", "no-installed-font"],
)
def test_a_character_the_font_lacks_is_a_font_coverage_error_not_a_box(value: str, codepoint: str) -> None:
    record = dataclasses.replace(SEATTLE, name=f"Jane {value} Doe")
    with pytest.raises(FontCoverageError, match=codepoint) as caught:
        PdfRenderer().render([document(record)])
    assert "Jane" not in str(caught.value)  # names the code point, never the buyer's text


def test_ignorable_characters_print_nothing_rather_than_fail() -> None:
    record = dataclasses.replace(SEATTLE, name="Jane\u200b Doe\u200e")
    assert "Jane Doe" in page_texts(PdfRenderer().render([document(record)]))[0]


def test_order_reference_must_be_printable_ascii() -> None:
    with pytest.raises(RenderError, match="Code 128"):
        PdfRenderer().render([document(order_ref="注文-1")])


def test_long_addresses_wrap_and_stay_on_the_page() -> None:
    record = LabelRecord(
        name="Maximilian Alexander von Habsburg-Lothringen",
        company="Internationale Handelsgesellschaft für Spezialmaschinenbau GmbH & Co. KG",
        address_line1="Große Ulrichstraße 123, Hinterhaus, Aufgang C, 4. Obergeschoss links",
        address_line2="c/o Wareneingang, Tor 7, Rampe 3",
        address_line3="Gewerbegebiet Nord-Ost",
        city="Halle (Saale)",
        postal_code="06108",
        country_code="DE",
    )
    text = page_texts(PdfRenderer().render([document(record)]))[0]
    assert "GERMANY" in text
    assert "06108 HALLE (SAALE)" in text


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian poppler-utils) not installed")
def test_barcode_is_vector_bars_that_decode_to_the_order_id(tmp_path: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    pdf = tmp_path / "label.pdf"
    pdf.write_bytes(PdfRenderer().render([document(TOKYO)]))
    subprocess.run(["pdftoppm", "-r", "203", "-png", "-singlefile", pdf, tmp_path / "label"], check=True)
    results = zxingcpp.read_barcodes(image_module.open(tmp_path / "label.png"))
    assert [r.text for r in results] == [ORDER_REF]


def test_a_warm_renderer_gives_the_same_bytes_again_and_a_page_per_label_of_a_batch() -> None:
    # How fast is bench/render.py's business; here: the caches warm-up and rendering fill change nothing.
    renderer = PdfRenderer()
    first = renderer.render([document(TOKYO)])
    warm_up()
    assert renderer.render([document(TOKYO)]) == first
    records = (TOKYO, SHANGHAI, SEATTLE, MOSCOW) * 25
    texts = page_texts(renderer.render([document(r) for r in records]))
    assert len(texts) == 100
    for record, text in zip(records, texts, strict=True):
        assert record.name in text.splitlines()


def test_more_than_256_distinct_glyphs_on_a_page_spill_into_further_fonts() -> None:
    ideographs = [chr(0x4E00 + i * 7) for i in range(300)]  # 300 distinct, all in the font
    lines = ["".join(ideographs[i : i + 75]) for i in range(0, 300, 75)]
    record = dataclasses.replace(
        SHANGHAI, name=lines[0], address_line1=lines[1], address_line2=lines[2], address_line3=lines[3]
    )
    payload = PdfRenderer().render([document(record)])
    reader = pypdf.PdfReader(io.BytesIO(payload))
    assert len(reader.pages[0]["/Resources"]["/Font"]) >= 2
    text = reader.pages[0].extract_text().replace("\n", "")
    assert all(line in text for line in lines)


def test_no_buyer_value_reaches_the_process_wide_line_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    cached: list[str] = []
    real = shaping.shape_public

    def recording(text: str, *args: object, **kwargs: object) -> object:
        cached.append(text)
        return real(text, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shaping, "shape_public", recording)
    records = (TOKYO, SEATTLE, SHANGHAI)
    PdfRenderer().render([document(r) for r in records])
    buyer_values = {v for r in records for k, v in r.as_dict().items() if isinstance(v, str) and k != "country_code"}
    assert "SHIP TO" in cached and "JAPAN" in cached  # captions and country names are cached...
    assert not [text for text in cached if any(value in text for value in buyer_values)]  # ...buyer values never
