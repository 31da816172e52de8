"""Shaped text: what the renderers draw is HarfBuzz's own shaping, in bidi visual order, for every script."""

from __future__ import annotations

import dataclasses
import io
import re
import zlib

import pytest
import uharfbuzz as hb
from pypdf import PdfReader

from render import fonts, shaping
from render.pdf import PdfRenderer, glyph_name
from render.zpl import ZplRenderer
from tests.support.buyers import SEATTLE
from tests.support.render import document
from vault.records import LabelRecord

NOTO = "/usr/share/fonts/truetype/noto/"


@pytest.fixture(scope="module")
def font() -> fonts.LabelFont:
    return fonts.warm_up()


def harfbuzz(path: str, text: str, direction: str, script: str) -> list[tuple[int, int, int, int]]:
    """HarfBuzz's shaping of one run, straight from uharfbuzz: (glyph id, x advance, x offset, y offset)."""
    face = hb.Face(hb.Blob.from_file_path(path))
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.direction = direction
    buffer.script = script
    hb.shape(hb.Font(face), buffer, {})
    return [
        (i.codepoint, p.x_advance, p.x_offset, p.y_offset)
        for i, p in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True)
    ]


def drawn(line: shaping.ShapedLine) -> list[tuple[str, int, float, float]]:
    """(font file, glyph id, x, y) of each glyph, positions back in the face's own units."""
    return [(g.face.path.name, g.gid, round(g.x / g.face.scale, 6), round(g.y / g.face.scale, 6)) for g in line.glyphs]


def expected(runs: list[tuple[str, str, str, str]]) -> list[tuple[str, int, float, float]]:
    """The glyphs of runs given in visual order (font file, text, direction, script), placed one after another."""
    out: list[tuple[str, int, float, float]] = []
    pen = 0.0
    for file_name, text, direction, script in runs:
        path = NOTO + file_name if "/" not in file_name else file_name
        for gid, advance, x_offset, y_offset in harfbuzz(path, text, direction, script):
            out.append((path.rsplit("/", 1)[1], gid, pen + x_offset, float(y_offset)))
            pen += advance
    return out


CASES = {
    # An Arabic name: one right-to-left run, joined (contextual forms differ from the nominal glyphs).
    "arabic-name": ("محمد العلي", "SA", [("NotoSansArabic-Regular.ttf", "محمد العلي", "rtl", "Arab")]),
    # Arabic city with a postcode: the digits stay left to right, printed left of the Arabic.
    "arabic-digits": (
        "الرياض 12345",
        "SA",
        [
            ("NotoSansArabic-Regular.ttf", "12345", "ltr", "Arab"),
            ("NotoSansArabic-Regular.ttf", "الرياض ", "rtl", "Arab"),
        ],
    ),
    "hebrew": ("שלום", "IL", [("NotoSansHebrew-Regular.ttf", "שלום", "rtl", "Hebr")]),
    "thai": ("กรุงเทพมหานคร", "TH", [("NotoSansThai-Regular.ttf", "กรุงเทพมหานคร", "ltr", "Thai")]),
    "hindi": ("नई दिल्ली", "IN", [("NotoSansDevanagari-Regular.ttf", "नई दिल्ली", "ltr", "Deva")]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_glyphs_and_positions_are_harfbuzzs_own(font: fonts.LabelFont, case: str) -> None:
    text, country, runs = CASES[case]
    line = shaping.shape_line(text, font, country, what="the test")
    assert drawn(line) == expected(runs)


def test_arabic_is_joined_not_drawn_from_nominal_glyphs(font: fonts.LabelFont) -> None:
    line = shaping.shape_line("محمد", font, "SA", what="the test")
    face = line.glyphs[0].face
    nominal = {face.gid(c) for c in "محمد"}
    assert {g.gid for g in line.glyphs} - nominal  # initial/medial/final forms, not the isolated ones
    # Right to left: the first letter is drawn rightmost.
    assert [g.text for g in line.glyphs] == ["د", "م", "ح", "م"]


def test_mixed_line_orders_runs_visually_and_picks_a_face_per_script(font: fonts.LabelFont) -> None:
    line = shaping.shape_line("King Fahd Rd 12 طريق الملك", font, "SA", what="the test")
    texts = "".join(g.text for g in line.glyphs)
    # LTR paragraph (it starts with Latin): Latin and digits first, then the Arabic run, reversed for display.
    assert texts.startswith("King Fahd Rd 12 ")
    assert texts.endswith("كلملا قيرط")
    files = [g.face.path.name for g in line.glyphs]
    assert files[0].startswith("NotoSansCJK") and files[-1] == "NotoSansArabic-Regular.ttf"
    xs = [g.x for g in line.glyphs]
    assert xs == sorted(xs)


def test_rtl_paragraph_puts_latin_and_digits_left_of_the_arabic_that_precedes_them(font: fonts.LabelFont) -> None:
    line = shaping.shape_line("شارع 12 Main", font, "AE", what="the test")
    texts = [g.text for g in line.glyphs]
    assert "".join(texts).startswith("Main 12 ")  # an RTL paragraph: its last words are drawn leftmost


def test_emoji_and_symbols_come_from_the_fallback_faces(font: fonts.LabelFont) -> None:
    line = shaping.shape_line("Jane ✈ Doe 😀", font, "US", what="the test")
    faces = {g.text: g.face.path.name for g in line.glyphs}
    assert faces["✈"] in ("DejaVuSans.ttf", "Symbola_hint.ttf")
    assert faces["😀"] in ("DejaVuSans.ttf", "Symbola_hint.ttf")
    assert faces["J"].startswith("NotoSansCJK")


ARABIC = LabelRecord(
    name="محمد العلي",
    address_line1="12 شارع الملك فهد",
    address_line2="King Fahd Road 12",
    city="الرياض",
    postal_code="12345",
    country_code="SA",
)
HEBREW = LabelRecord(
    name="דוד כהן", address_line1="רחוב הרצל 5", city="תל אביב", postal_code="6100000", country_code="IL"
)
THAI = LabelRecord(
    name="สมชาย ใจดี", address_line1="99 ถนนสุขุมวิท", city="กรุงเทพมหานคร", postal_code="10110", country_code="TH"
)
HINDI = LabelRecord(
    name="राहुल शर्मा", address_line1="12 कनॉट प्लेस", city="नई दिल्ली", postal_code="110001", country_code="IN"
)


def content_glyphs(payload: bytes) -> list[list[tuple[bytes, float, float]]]:
    """Per text object of page 1: (glyph name, x, rise) as a PDF viewer places them, from the content stream."""
    pypdf = pytest.importorskip("pypdf")
    page = pypdf.PdfReader(io.BytesIO(payload)).pages[0]
    names: dict[str, list[bytes]] = {}
    for key, ref in page["/Resources"]["/Font"].items():
        differences = ref.get_object()["/Encoding"]["/Differences"]
        names[key[1:]] = [str(n)[1:].encode() for n in differences[1:]]
    widths = {
        key[1:]: [float(w) for w in ref.get_object()["/Widths"]] for key, ref in page["/Resources"]["/Font"].items()
    }
    content = page.get_contents().get_data()
    lines = []
    for block in re.findall(rb"BT (.*?) ET", content, re.S):
        glyphs: list[tuple[bytes, float, float]] = []
        font_name, size, pen, rise = "", 1.0, 0.0, 0.0
        for token in re.finditer(rb"/(T\d+) ([\d.]+) Tf|(-?[\d.]+) Ts|\[(.*?)\] TJ", block):
            if token.group(1):
                font_name, size = token.group(1).decode(), float(token.group(2))
            elif token.group(3):
                rise = float(token.group(3)) * 1000 / size
            else:
                for item in re.finditer(rb"<([0-9A-F]{2})>|(-?[\d.]+)", token.group(4)):
                    if item.group(1):
                        code = int(item.group(1), 16)
                        glyphs.append((names[font_name][code], pen, rise))
                        pen += widths[font_name][code]
                    else:
                        pen -= float(item.group(2))
        lines.append(glyphs)
    return lines


def test_the_pdf_draws_exactly_the_shaped_glyphs_where_harfbuzz_put_them(font: fonts.LabelFont) -> None:
    payload = PdfRenderer().render([document(ARABIC)])
    drawn_lines = content_glyphs(payload)
    for text in ("محمد العلي", "12 شارع الملك فهد", "King Fahd Road 12"):
        line = shaping.shape_line(text, font, "SA", what="the test")
        wanted = [(glyph_name(g.face, g.gid), g.x, g.y) for g in line.glyphs]
        match = [d for d in drawn_lines if [n for n, _, _ in d] == [n for n, _, _ in wanted]]
        assert match, text
        # Positions in 1/1000 em; the content stream writes them to 0.01 pt.
        assert [v for _, x, y in match[0] for v in (x, y)] == pytest.approx(
            [v for _, x, y in wanted for v in (x, y)], abs=1
        )


@pytest.mark.parametrize("record", [ARABIC, HEBREW, THAI, HINDI], ids=["arabic", "hebrew", "thai", "hindi"])
def test_pdf_and_zpl_labels_print_ink_where_the_text_is(record: LabelRecord) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    zplkit = pytest.importorskip("zplkit")
    pdf = pdfium.PdfDocument(PdfRenderer().render([document(record)]))
    image = pdf[0].render(scale=203 / 72, grayscale=True).to_pil()
    # The ship-to block (below the return address, above the barcode): its first line is the buyer's script.
    ship_to = image.crop((0, 230, image.width, 300))
    assert sum(ship_to.histogram()[:128]) > 500

    payload = ZplRenderer().render([document(record)])
    graphics = re.findall(rb"\^GFA,(\d+),\d+,(\d+),:Z64:([^:]+):", payload)
    assert graphics
    for _total, _row_bytes, encoded in graphics:
        import base64

        assert any(zlib.decompress(base64.b64decode(encoded)))
    label = zplkit.render(payload, zplkit.Options(dpi=203, width=812, height=1218)).labels[0]
    from PIL import Image

    zpl_image = Image.open(io.BytesIO(label.png())).convert("L")
    assert sum(zpl_image.crop((0, 200, 812, 300)).histogram()[:128]) > 500


def test_a_line_in_a_script_without_shaping_still_prints_in_latin_only_labels() -> None:
    payload = ZplRenderer().render([document(dataclasses.replace(SEATTLE, name="Jane Doe"))]).decode()
    assert "^GFA" not in payload.split("SHIP TO")[1].split("UNITED STATES")[0]


@pytest.mark.parametrize(
    ("text", "country", "one_run"),
    [
        ("410 Terry Ave N", "US", True),
        ("神宮前1-2-3", "JP", True),
        ("12345", "SA", True),  # digits alone: left to right, whatever the country
        ("Jane\u200b Doe", "US", True),  # an ignorable character doesn't split the line
        ("ハイツ原宿101", "JP", False),  # katakana then kanji: two scripts
        ("Γιώργος", "GR", False),  # accented Greek comes from a fallback face
        ("محمد 12", "SA", False),  # right to left
        ("Straße ✈", "DE", False),  # the symbol is another face's
        ("กรุงเทพมหานคร 10110", "TH", False),  # the Thai face has no Latin digits
    ],
)
def test_the_one_run_shortcut_is_taken_for_plain_lines_and_gives_what_itemising_gives(
    font: fonts.LabelFont, text: str, country: str, one_run: bool
) -> None:
    run = shaping.single_run(text, font, country)
    assert (run is not None) is one_run
    runs = shaping.itemise(text, font, country, what="the test")
    if run is not None:
        assert [run] == runs
    else:
        assert len(runs) > 1 or runs[0].level % 2 == 1


def test_public_lines_are_shaped_once_per_process_and_buyer_lines_per_call(font: fonts.LabelFont) -> None:
    first = shaping.shape_public("SHIP TO", font, "JP", what="a caption")
    assert shaping.shape_public("SHIP TO", font, "JP", what="a caption") is first
    assert shaping.shape_line("SHIP TO", font, "JP", what="a caption") == first
    assert shaping.shape_line("SHIP TO", font, "JP", what="a caption") is not first


def test_a_500_label_wave_with_arabic_orders_in_it_prints_all_500() -> None:
    """Every fifth order of a 500-label wave is Arabic (the rest Hebrew, Thai, Hindi and Latin in turn): the
    whole wave renders, one label per order, in ZPL and PDF alike."""
    mix = [ARABIC, SEATTLE, HEBREW, THAI, HINDI]
    wave = [document(dataclasses.replace(mix[i % 5], name=f"{mix[i % 5].name} {i}"), order_ref=f"503-0000000-{i:07d}")
            for i in range(500)]  # fmt: skip
    zpl = ZplRenderer().render(wave).decode()
    assert zpl.count("^XA") == 500 and zpl.count("^XZ") == 500
    pdf = PdfReader(io.BytesIO(PdfRenderer().render(wave)))
    assert len(pdf.pages) == 500
