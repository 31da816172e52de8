"""ZPL II labels for Zebra printers: 4x6 in, 100x150 mm or 100x100 mm, at 203 or 300 dpi, UTF-8 (``^CI28``).

The layout is designed in 203-dpi dots and every position, size, line and barcode module is scaled to the
printer's resolution, so a 300-dpi label looks the same as a 203-dpi one, not like a small one in a corner.
A square 100x100 mm label has room for less: at most three return-address lines and a shorter barcode.

Safety: buyer values go to the printer inside ``^FD`` fields. A ``^`` or ``~`` there would end the field and
start a command (``^XZ^XA`` a new label, ``~JR`` a printer reset), so every field is sent with ``^FH`` and
those characters, ``_`` (the escape itself), ``\\`` and all control characters travel as ``_XX`` hex
escapes. Fields are also bounded in length. The output contains only commands this module writes.

Scripts the printer's resident font lacks (CJK, Greek, Cyrillic on many models): with the ``printer_font``
option the warehouse names a font it has downloaded to the printer (``E:ANMDJ.TTF`` -> ``^A@``, or a
one-letter ``^CW`` alias it has set up), and all text uses it. Without it, a line the resident font can't
print is shaped (bidi order, a face per script, HarfBuzz: Arabic joined and right to left, Thai and
Devanagari marks in place) and rasterised into a ``^GF`` graphic, so it prints as written; characters no
installed font draws are a :class:`FontCoverageError`, never boxes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import uharfbuzz as hb

from render import code128, fonts, shaping
from render.address import clean_field, layout_address, phone_line
from render.interfaces import LabelDocument, RenderError
from render.wrap import wrap_greedy
from vault.records import LabelRecord, valid_printer_font

#: Designed for 203 dpi; everything is scaled from these dots.
BASE_DPI = 203
#: Label sizes (width, height) in inches.
LABEL_SIZES: dict[str, tuple[float, float]] = {
    "4x6": (4.0, 6.0),
    "100x150mm": (100 / 25.4, 150 / 25.4),
    "100x100mm": (100 / 25.4, 100 / 25.4),
}
SUPPORTED_DPI = (203, 300)

#: Longest value printed for any one buyer field (characters); longer values are cut, never sent whole.
MAX_FIELD_CHARS = 80
MAX_ORDER_REF_CHARS = 50

# What the resident scalable font 0 prints under ^CI28 on every current Zebra: Latin-1, Latin Extended-A
# and the usual typographic punctuation. Anything else is rasterised unless a printer font is configured.
_RESIDENT_EXTRA = frozenset("\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2022\u2026\u20ac")


def _resident_prints(char: str) -> bool:
    code = ord(char)
    return 0x20 <= code <= 0x7E or 0xA0 <= code <= 0x17F or char in _RESIDENT_EXTRA


def escape_field(text: str) -> str:
    """Field data safe inside ``^FH^FD…^FS``: command prefixes, the escape, ``\\`` and controls as ``_XX``."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in "^~_\\" or code < 0x20 or 0x7F <= code <= 0x9F:
            out.append("".join(f"_{byte:02X}" for byte in char.encode("utf-8")))
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")  # a lone surrogate can't be encoded; print the replacement character
        else:
            out.append(char)
    return "".join(out)


def _bounded(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.lru_cache(maxsize=4096)
def _width_factor(char: str) -> float:
    # Good enough to wrap: wide (CJK) characters are square, Latin ones average a little over half the height.
    return 1.0 if unicodedata.east_asian_width(char) in "WF" else 0.62


def _estimated_width(text: str, height: int) -> float:
    return height * sum(map(_width_factor, text))


def _wrap(text: str, max_width: int, height: int) -> list[str]:
    """Greedy wrap by estimated widths (the printer's font metrics aren't known here)."""
    if _estimated_width(text, height) <= max_width:  # most lines fit: one pass, same result
        stripped = text.strip()
        return [stripped] if stripped else []
    return wrap_greedy(text, max_width, lambda char: height * _width_factor(char))


def _format_time(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")


@dataclass(frozen=True, slots=True)
class _Style:
    height: int  # character cell height, dots at 203 dpi
    width: int


_CAPTION = _Style(20, 20)
_RETURN = _Style(22, 22)
_ORDER_TEXT = _Style(34, 32)
_META = _Style(24, 24)
_SHIP_TO_SIZES = (48, 40, 34, 29, 25)  # tried largest first until the block fits


class ZplRenderer:
    """``application/zpl``: one ``^XA…^XZ`` label per document, concatenated into one stream."""

    media_type = "application/zpl"
    multi_label = True

    def __init__(
        self,
        *,
        dpi: Literal[203, 300] | int = 203,
        size: str = "4x6",
        printer_font: str | None = None,
        font: str | None = None,
    ) -> None:
        """``dpi``: the printer's resolution. ``size``: one of :data:`LABEL_SIZES`. ``printer_font``: a font
        stored on the printer (``E:NAME.TTF``) or a one-character ``^CW`` alias, used for all text. ``font``:
        the font file used to rasterise text the resident font can't print (default: the label font from
        :mod:`render.fonts`).
        """
        if dpi not in SUPPORTED_DPI:
            raise ValueError(f"dpi must be one of {SUPPORTED_DPI}")
        if size not in LABEL_SIZES:
            raise ValueError(f"size must be one of {sorted(LABEL_SIZES)}")
        if printer_font is not None and not valid_printer_font(printer_font):
            raise ValueError("printer_font must be a stored font like 'E:ANMDJ.TTF' or a one-character alias")
        self.dpi = dpi
        self.size = size
        # The label in 203-dpi dots, the unit of the layout.
        self._width, self._height = (round(inches * BASE_DPI) for inches in LABEL_SIZES[size])
        self.printer_font = printer_font
        self.font = font
        self._scale = dpi / BASE_DPI
        self._label_font: fonts.LabelFont | None = None  # resolved on the first graphic, then kept
        # Graphics already drawn in the current render() call: a wave of orders repeats its prefectures,
        # cities and districts. Emptied when the call returns, so no buyer text outlives the request.
        self._graphics: dict[tuple[str, int, str | None], str] = {}

    def render(self, documents: Sequence[LabelDocument]) -> bytes:
        """Render the documents into one ZPL stream (UTF-8)."""
        if not documents:
            raise RenderError("no label documents to render")
        try:
            return "\n".join(self._label(doc) for doc in documents).encode("utf-8")
        finally:
            self._graphics.clear()

    # -- layout ---------------------------------------------------------------------------------------------

    def _d(self, dots: float) -> int:
        """Dots at 203 dpi -> dots at the printer's resolution."""
        return round(dots * self._scale)

    def _label(self, doc: LabelDocument) -> str:
        width, height = self._width, self._height
        square = height < 1000
        bar_height = 70 if square else 110
        margin = 30
        inner = width - 2 * margin
        face_country = doc.ship_to.country_code
        out = [
            "^XA",
            "^CI28",
            f"^PW{self._d(width)}",
            f"^LL{self._d(height)}",
            "^LH0,0",
        ]

        # Return address, small, top left: who to send it back to.
        y = 24
        out += self._text(margin, y, "FROM", _CAPTION, country=face_country)
        y += 24
        if doc.return_address is not None:
            ret = doc.return_address
            for line in [ret.name, *ret.lines, ret.country_code][: 3 if square else 5]:
                for part in _wrap(_bounded(clean_field(line)), inner, _RETURN.height)[:2]:
                    out += self._text(margin, y, part, _RETURN, country=ret.country_code)
                    y += 26
        y = max(y, 110 if square else 150) + 6
        out.append(self._rule(margin, y, inner))

        # Ship-to block: the largest size at which the whole layout fits.
        y += 14
        out += self._text(margin, y, "SHIP TO", _CAPTION, country=face_country)
        y += 28
        # The bottom block (rule, barcode, order id, marketplace, rule, print time) ends above the margin.
        block_bottom = min(800, height - margin - bar_height - 186)
        record = _bounded_record(doc)
        phone = phone_line(record, doc.return_address.country_code if doc.return_address is not None else None)
        address = layout_address(record) + ([phone] if phone else [])
        for size in _SHIP_TO_SIZES:
            pitch = round(size * 1.2)
            wrapped = [part for line in address for part in _wrap(line, inner, size)]
            if len(wrapped) * pitch <= block_bottom - y or size == _SHIP_TO_SIZES[-1]:
                break
        style = _Style(size, size)
        # Field bounds make overflow at the smallest size impossible in practice; clip rather than overprint.
        for part in wrapped[: (block_bottom - y) // pitch]:
            out += self._text(margin, y, part, style, country=face_country)
            y += pitch
        y = block_bottom + 8
        out.append(self._rule(margin, y, inner))

        # Order id as Code 128 (the printer encodes it, auto subset switching) and as text.
        y += 24
        order_ref = _bounded(doc.order_ref, MAX_ORDER_REF_CHARS)
        out += self._barcode(margin, y, inner, order_ref, bar_height)
        y += bar_height + 30
        out += self._text(margin, y, order_ref, _ORDER_TEXT, country=face_country)
        y += 46
        out += self._text(margin, y, _bounded(clean_field(doc.marketplace)).upper(), _META, country=face_country)
        y += 40
        out.append(self._rule(margin, y, inner, thickness=2))
        y += 14
        out += self._text(margin, y, f"PRINTED {_format_time(doc.printed_at)}", _META, country=face_country)
        out.append("^XZ")
        return "\n".join(out)

    def _rule(self, x: int, y: int, width: int, thickness: int = 3) -> str:
        t = max(1, self._d(thickness))
        return f"^FO{self._d(x)},{self._d(y)}^GB{self._d(width)},{t},{t}^FS"

    def _barcode(self, x: int, y: int, max_width: int, data: str, height: int) -> list[str]:
        bar_height = self._d(height)
        # Widest module (in printer dots) at which the symbol plus quiet zones fits the label.
        symbol = code128.width_in_modules(data)
        module = min(self._d(2), self._d(max_width) // (symbol + 2 * code128.QUIET_ZONE))
        if module < 1:
            raise RenderError("order reference too long for a Code 128 barcode on the label")
        # Centred: the quiet zones fall inside the margins either side.
        left = self._d(x) + (self._d(max_width) - symbol * module) // 2
        return [
            f"^BY{module},3,{bar_height}",
            f"^FO{left},{self._d(y)}^BCN,{bar_height},N,N,N,A^FH^FD{escape_field(data)}^FS",
        ]

    def _text(self, x: int, y: int, text: str, style: _Style, *, country: str | None) -> list[str]:
        if not text:
            return []
        h, w = self._d(style.height), self._d(style.width)
        origin = f"^FO{self._d(x)},{self._d(y)}"
        if self.printer_font is not None:
            font = (
                f"^A{self.printer_font}N,{h},{w}"
                if len(self.printer_font) == 1
                else f"^A@N,{h},{w},{self.printer_font}"
            )
            return [f"{origin}{font}^FH^FD{escape_field(text)}^FS"]
        if all(_resident_prints(c) for c in text):
            return [f"{origin}^A0N,{h},{w}^FH^FD{escape_field(text)}^FS"]
        key = (text, h, country)
        graphic = self._graphics.get(key)
        if graphic is None:
            graphic = self._graphics[key] = self._graphic(text, h, country)
        return [f"{origin}{graphic}^FS"]

    def _graphic(self, text: str, height: int, country: str | None) -> str:
        """The text shaped (:mod:`render.shaping`) and rasterised into a ``^GF`` graphic (Z64-encoded)."""
        if self._label_font is None:
            self._label_font = fonts.load_font(self.font)
        line = shaping.shape_line(text, self._label_font, country, what="a ZPL text field")
        data, row_bytes = raster_line(line, height, self._d(self._width))
        return f"^GFA,{len(data)},{len(data)},{row_bytes},{z64(data)}"


#: Coverage (0-255) to a printed dot at half: a table, which Pillow applies without calling back into Python.
_HALF_THRESHOLD = [0] * 128 + [255] * 128


def raster_line(line: shaping.ShapedLine, height: int, max_width: int) -> tuple[bytes, int]:
    """A shaped line as a 1-bit bitmap ``height`` dots tall (1 = a printed dot, 8 dots a byte, MSB first),
    cut to the ink on the right and to ``max_width``; returns the bytes and the bytes per row.

    HarfBuzz's own rasteriser draws each glyph id at its shaped position (the same glyphs the PDF shows),
    into 8-bit coverage that is thresholded at half: the cell is the one font 0 would fill, an em box
    (0.88 above, 0.12 below the baseline) at 92 % of the cell so lines keep their pitch.
    """
    from PIL import Image

    em = max(8, round(height * 0.92))
    baseline = round(height * 0.82)
    # Arabic and Devanagari reach further below the baseline than an ideograph (the dots under ي): the
    # bitmap runs on into the line gap (a line's pitch is 1.2 cells) rather than cut them off.
    rows = height + round(height * 0.18)
    raster = hb.RasterDraw()
    raster.extents = hb.RasterExtents(0, baseline - rows, max_width, rows, 0)
    for glyph in line.glyphs:
        scale = em / fonts.UNITS_PER_EM * glyph.face.scale
        raster.transform = (scale, 0.0, 0.0, scale, glyph.x * em / 1000, glyph.y * em / 1000)
        raster.draw_glyph(glyph.face.hb_font, glyph.gid)
    image = raster.render()
    if image is None:
        raise RenderError("could not rasterise a ZPL text field")
    extents = image.extents
    # HarfBuzz stores rows bottom to top: a negative stride flips them into the printer's top-to-bottom order.
    coverage = Image.frombuffer("L", (extents.width, extents.height), image.buffer, "raw", "L", extents.stride, -1)
    mono = coverage.point(_HALF_THRESHOLD, mode="1")
    ink = mono.getbbox()
    width = min(max_width, max(8, -(-(ink[2] if ink else 0) // 8) * 8))
    if width > mono.width:  # the row is padded to whole bytes
        padded = Image.new("1", (width, mono.height), 0)
        padded.paste(mono, (0, 0))
        mono = padded
    return mono.crop((0, 0, width, rows)).tobytes(), width // 8


def z64(data: bytes) -> str:
    """ZPL's Z64 encoding of graphic data: ``:Z64:`` + Base64(zlib deflate) + ``:`` + CRC-16/CCITT of the Base64.

    What ZebraDesigner writes for ``^GF`` fields; a fraction of the size of ASCII hex, and the printer
    discards a field whose CRC doesn't match instead of printing garbage.
    """
    encoded = base64.b64encode(zlib.compress(data, 6))
    return f":Z64:{encoded.decode('ascii')}:{binascii.crc_hqx(encoded, 0):04X}"


def _bounded_record(doc: LabelDocument) -> LabelRecord:
    """The ship-to record with every text field cut to :data:`MAX_FIELD_CHARS`."""
    record = doc.ship_to
    changes = {
        name: _bounded(value)
        for name, value in record.as_dict().items()
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS
    }
    return dataclasses.replace(record, **changes) if changes else record
