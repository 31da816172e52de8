"""ZPL labels: escaping, command structure, offline rendering, barcode, 300-dpi scaling, fonts."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import re
import string
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from render import FontCoverageError
from render.zpl import MAX_FIELD_CHARS, ZplRenderer, escape_field
from tests.support.buyers import MOSCOW, SEATTLE, SHANGHAI, TOKYO
from tests.support.render import ORDER_REF, document
from vault.records import LabelRecord

zplkit = pytest.importorskip("zplkit")
zplkit_parse = pytest.importorskip("zplkit.parse")


def commands(payload: bytes) -> list[str]:
    """The command sequence as a printer frames it: ``^FO``, ``^A0``, ``~JR``… (field data dropped)."""
    return [bytes(e)[:3].decode("utf-8", "replace") for e in zplkit_parse.parse(payload).elements]


def structure(payload: bytes) -> list[str]:
    """The command sequence with each text field (however drawn, however many lines) collapsed to TEXT."""
    out: list[str] = []
    names = commands(payload)
    index = 0
    text_field = re.compile(r"\^FO(\^A.(\^FH)?\^FD|\^GF)\^FS")
    while index < len(names):
        if names[index] == "^FO":
            end = names.index("^FS", index)
            if text_field.fullmatch("".join(names[index : end + 1])):
                if not out or out[-1] != "TEXT":
                    out.append("TEXT")
                index = end + 1
                continue
        out.append(names[index])
        index += 1
    return out


def field_data(payload: bytes) -> list[str]:
    return [bytes(e)[3:].decode() for e in zplkit_parse.parse(payload).elements if bytes(e).startswith(b"^FD")]


# -- escaping -------------------------------------------------------------------------------------------------


def test_escape_field_hex_escapes_command_prefixes_and_controls() -> None:
    assert escape_field("a^XZ~JR_b\\c") == "a_5EXZ_7EJR_5Fb_5Cc"
    assert escape_field("x\ny\r\x00\x7f") == "x_0Ay_0D_00_7F"
    assert escape_field("\u0085") == "_C2_85"  # C1 control (NEL): both UTF-8 bytes
    assert escape_field("東京 Ünïcode") == "東京 Ünïcode"


HOSTILE = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "^XZ^XA",
                "~JR",
                "~DG",
                "_",
                "^",
                "~",
                "\\",
                "\n",
                "\r\n",
                "\x00",
                "\x03",
                "\x7f",
                "\u0085",
                "\u2028",
                "שלום",
                "مرحبا",
                "\u202e",
                "\u200f",
                "😀",
                "👩‍👩‍👧",
                "^FS^FO0,0^GB800,800,800^FS",
                "^CC~",
                "~CC^",
            ]
        ),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(name=HOSTILE, company=HOSTILE, line1=HOSTILE, line2=HOSTILE)
def test_no_buyer_value_changes_the_command_structure(name: str, company: str, line1: str, line2: str) -> None:
    # A printer font prints every script, so every value goes to the printer as field data: the worst case.
    renderer = ZplRenderer(printer_font="E:ANMDJ.TTF")
    plain = renderer.render([document(SEATTLE)])
    hostile = dataclasses.replace(
        SEATTLE, name="N" + name, company="C" + company, address_line1="1" + line1, address_line2="2" + line2
    )
    payload = renderer.render([document(hostile)])
    assert structure(payload) == structure(plain)
    assert [c for c in commands(payload) if c.startswith("~")] == []
    assert payload.count(b"^XA") == 1 and payload.count(b"^XZ") == 1
    assert all(len(data) <= 3 * 4 * MAX_FIELD_CHARS for data in field_data(payload))


@settings(max_examples=50, deadline=None)
@given(name=st.text(alphabet="^~_\\\n\x00\x7fAbc東京Мос ", min_size=1, max_size=30))
def test_rasterised_text_keeps_the_structure_too(name: str) -> None:
    renderer = ZplRenderer()
    payload = renderer.render([document(dataclasses.replace(TOKYO, name="N" + name))])
    assert structure(payload) == structure(renderer.render([document(TOKYO)]))
    assert [c for c in commands(payload) if c.startswith("~")] == []


def test_long_fields_are_cut() -> None:
    payload = ZplRenderer().render([document(dataclasses.replace(SEATTLE, address_line1="9" * 5000))])
    assert len(payload) < 10_000
    assert "9" * MAX_FIELD_CHARS not in payload.decode()


# -- layout and rendering ---------------------------------------------------------------------------------------


def render_png(payload: bytes, dpi: int) -> bytes:
    document = zplkit.render(payload, zplkit.Options(dpi=dpi, width=4 * dpi, height=6 * dpi))
    assert len(document.labels) == 1
    return document.labels[0].png()


@pytest.mark.parametrize("dpi", [203, 300])
def test_renders_offline_and_the_barcode_decodes_to_the_order_id(dpi: int) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    import io

    payload = ZplRenderer(dpi=dpi).render([document(TOKYO)])
    image = image_module.open(io.BytesIO(render_png(payload, dpi)))
    assert image.size == (4 * dpi, 6 * dpi)
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [ORDER_REF]
    assert results[0].format == zxingcpp.BarcodeFormat.Code128


def test_graphics_print_in_an_offline_renderer() -> None:
    """zplkit decodes our Z64 graphic fields: the Japanese lines put ink on the label."""
    image_module = pytest.importorskip("PIL.Image")
    payload = ZplRenderer().render([document(TOKYO)])
    without = re.sub(rb"\^FO\d+,\d+\^GFA,[^^]*\^FS", b"", payload)
    assert without.count(b"^GFA") == 0 < payload.count(b"^GFA")

    def ink(zpl: bytes) -> int:
        image = image_module.open(io.BytesIO(render_png(zpl, 203))).convert("L")
        return sum(image.histogram()[:128])  # pixels darker than mid-grey

    assert ink(payload) > ink(without) + 2000


def test_300_dpi_scales_every_position_and_size_not_only_the_header() -> None:
    low = ZplRenderer(dpi=203).render([document(SEATTLE)]).decode()
    high = ZplRenderer(dpi=300).render([document(SEATTLE)]).decode()
    assert "^PW812" in low and "^LL1218" in low
    assert "^PW1200" in high and "^LL1800" in high
    numbers = re.compile(r"\^(FO|A0N|GB|BY|BCN),?(\d+),(\d+)")
    pairs = list(zip(numbers.findall(low), numbers.findall(high), strict=True))
    assert len(pairs) > 10
    for (cmd_low, *low_values), (cmd_high, *high_values) in pairs:
        assert cmd_low == cmd_high
        for a, b in zip(low_values, high_values, strict=True):
            if cmd_low == "BY":  # module width: whole dots
                assert int(b) >= int(a)
            else:
                # Within 8 dots (0.7 mm): the barcode is centred using whole-dot modules, so it moves a little.
                assert abs(int(b) - int(a) * 300 / 203) <= 8, (cmd_low, a, b)


def test_ship_to_block_is_in_layout_order_with_return_address_and_print_time() -> None:
    data = field_data(ZplRenderer().render([document(SEATTLE)]))
    ship_to = data[data.index("SHIP TO") + 1 :]
    assert ship_to[:6] == [
        "Jane Doe",
        "Acme Corp",
        "410 Terry Ave N",
        "Suite 200",
        "SEATTLE, WA 98109",
        "UNITED STATES",
    ]
    assert "Shenzhen Bright Trading Co." in data
    assert "PRINTED 2025-03-04 05:06+00:00" in data
    assert data.count(ORDER_REF) == 2  # barcode and text


def test_resident_font_scripts_are_text_others_are_graphics() -> None:
    payload = ZplRenderer().render([document(TOKYO)]).decode()
    assert "^CI28" in payload
    assert "東京都" not in payload  # the resident font has no kanji: drawn as a graphic instead
    assert payload.count("^GFA,") >= 5
    assert "JAPAN" in payload


def test_printer_font_prints_every_script_as_text() -> None:
    stored = ZplRenderer(printer_font="E:ANMDJ.TTF").render([document(SHANGHAI)]).decode()
    assert "^A@N,48,48,E:ANMDJ.TTF^FH^FD王小明^FS" in stored
    assert "^GF" not in stored
    alias = ZplRenderer(printer_font="J").render([document(MOSCOW)]).decode()
    assert "^AJN,48,48^FH^FDИван Петров^FS" in alias
    with pytest.raises(ValueError, match="printer_font"):
        ZplRenderer(printer_font="E:X.TTF^XZ")


def test_a_character_no_font_covers_is_a_font_coverage_error() -> None:
    record = LabelRecord(name="\ue000", address_line1="1 Main St", city="Springfield", country_code="US")
    with pytest.raises(FontCoverageError, match="U\\+E000"):
        ZplRenderer().render([document(record)])
    # A printer font is the warehouse's choice: its coverage can't be checked here, so the text goes as is.
    assert b"_" not in ZplRenderer(printer_font="J").render([document(record)]).split(b"\xee\x80\x80")[0][-3:]


def decode_z64(field: str) -> bytes:
    """Inverse of the Z64 encoding, written from the ZPL manual: check the CRC, Base64-decode, inflate."""
    header, encoded, crc = field.split(":")[1:4]
    assert header == "Z64"
    assert int(crc, 16) == binascii.crc_hqx(encoded.encode(), 0), "CRC-16/CCITT over the Base64 text"
    return zlib.decompress(base64.b64decode(encoded, validate=True))


@given(st.binary(max_size=2000))
def test_z64_round_trips(data: bytes) -> None:
    from render.zpl import z64

    encoded = z64(data)
    assert set(encoded) <= set(string.ascii_letters + string.digits + "+/=:")  # never ^, ~ or a newline
    assert decode_z64(encoded) == data


def test_graphic_fields_carry_the_whole_bitmap() -> None:
    payload = ZplRenderer().render([document(TOKYO)]).decode()
    fields = re.findall(r"\^GFA,(\d+),(\d+),(\d+),(:Z64:[^^]*)\^FS", payload)
    assert len(fields) >= 5
    for total, count, row_bytes, data in fields:
        bitmap = decode_z64(data)
        assert len(bitmap) == int(total) == int(count) and len(bitmap) % int(row_bytes) == 0
        assert any(bitmap), "a graphic with no printed dot"


def test_a_batch_draws_a_repeated_line_once_and_keeps_nothing_after() -> None:
    renderer = ZplRenderer()
    neighbour = dataclasses.replace(TOKYO, name="佐藤 花子", address_line1="神宮前5-6-7")
    together = renderer.render([document(TOKYO), document(neighbour)]).decode()
    apart = "\n".join(ZplRenderer().render([document(r)]).decode() for r in (TOKYO, neighbour))
    assert together == apart  # the same stream as drawing every line afresh
    assert renderer._graphics == {}  # no buyer text outlives the render call


@pytest.mark.parametrize(
    ("size", "dots"), [("4x6", (812, 1218)), ("100x150mm", (799, 1199)), ("100x100mm", (799, 799))]
)
@pytest.mark.parametrize("dpi", [203, 300])
def test_each_size_sets_the_label_and_everything_stays_on_it(size: str, dots: tuple[int, int], dpi: int) -> None:
    payload = ZplRenderer(dpi=dpi, size=size).render([document(TOKYO)]).decode()
    width, height = (round(d * dpi / 203) for d in dots)
    assert f"^PW{width}^" in payload.replace("\n", "^") and f"^LL{height}^" in payload.replace("\n", "^")
    origins = [(int(x), int(y)) for x, y in re.findall(r"\^FO(\d+),(\d+)", payload)]
    assert max(x for x, _ in origins) < width and max(y for _, y in origins) < height - round(40 * dpi / 203)


def test_a_square_label_prints_whole_and_its_barcode_decodes() -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    payload = ZplRenderer(size="100x100mm").render([document(TOKYO)])
    rendered = zplkit.render(payload, zplkit.Options(dpi=203, width=799, height=799))
    image = Image.open(io.BytesIO(rendered.labels[0].png()))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [ORDER_REF]
