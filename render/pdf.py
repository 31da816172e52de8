"""PDF labels, 4x6 in, 100x150 mm or 100x100 mm, one page per document, fonts embedded (no printer-side fonts).

Why this writes PDF itself instead of using a PDF library: the libraries that embed a CJK font (fpdf2,
reportlab with a TrueType CJK font) subset the whole font on every document, ~0.4 s a label. Here each line
is shaped (:mod:`render.shaping`: bidi order, a face per script run, HarfBuzz) and its glyphs are drawn
where HarfBuzz placed them, from Type 3 fonts built from glyph outlines (:mod:`render.fonts`), each outline
converted once per process and each glyph procedure compressed once; a label then costs a few milliseconds.
Each Type 3 font carries a ToUnicode map (a glyph maps to the characters of its cluster), so the text stays
searchable and extractable, and the font is embedded in the file like any other. Every line is shaped
before anything is drawn: a character no installed face has is a :class:`FontCoverageError`, never a box.

The order id is drawn as a Code 128 barcode in vector bars.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from render import code128, fonts, shaping
from render.address import clean_field, country_name, layout_address, phone_line
from render.interfaces import LabelDocument, RenderError
from render.shaping import ShapedLine
from render.wrap import wrap_greedy

#: Page sizes in points (1/72 in).
PAGE_SIZES: dict[str, tuple[float, float]] = {
    "4x6": (4 * 72.0, 6 * 72.0),
    "100x150mm": (100 / 25.4 * 72, 150 / 25.4 * 72),
    "100x100mm": (100 / 25.4 * 72, 100 / 25.4 * 72),
}
#: Longest value printed for any one field; longer values are cut (a label is no place for an essay).
MAX_FIELD_CHARS = 80
_MARGIN = 14.0
_SHIP_TO_SIZES = (16.0, 14.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0)
#: A Type 3 font maps single-byte codes: at most 256 glyphs each.
_CODES_PER_FONT = 256

_CODES = [f"<{code:02X}>" for code in range(_CODES_PER_FONT)]

_HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1] + "…"


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


class _Objects:
    """The file's indirect objects, numbered in order of allocation."""

    def __init__(self) -> None:
        self._bodies: list[bytes | None] = []

    def reserve(self) -> int:
        self._bodies.append(None)
        return len(self._bodies)

    def put(self, number: int, body: bytes) -> int:
        self._bodies[number - 1] = body
        return number

    def add(self, body: bytes) -> int:
        return self.put(self.reserve(), body)

    def serialize(self, root: int, info: int) -> bytes:
        out = bytearray(_HEADER)
        offsets = []
        for number, body in enumerate(self._bodies, 1):
            if body is None:
                raise RenderError("internal error: PDF object left unwritten")
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
        out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(offsets) + 1,
            root,
            info,
            xref,
        )
        return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    packed = zlib.compress(data, 6)
    return b"<< /Length %d /Filter /FlateDecode%s >>\nstream\n" % (len(packed), extra) + packed + b"\nendstream"


# Glyph procedures, compressed once per process: (face serial, glyph id) -> stream object body.
_PROC_CACHE: dict[tuple[int, int], bytes] = {}
_PROC_LOCK = threading.Lock()


def _glyph_proc(face: fonts.FontFace, gid: int) -> bytes:
    key = (face.serial, gid)
    body = _PROC_CACHE.get(key)
    if body is None:
        glyph = face.glyph(gid)
        x0, y0, x1, y1 = glyph.bbox
        # d1: the glyph is a shape painted in the current fill colour, not a coloured picture.
        ops = b"%s 0 %d %d %d %d d1\n" % (_fmt(glyph.advance).encode(), x0, y0, x1, y1)
        if glyph.path:
            ops += glyph.path + b" f"
        body = _stream(ops)
        with _PROC_LOCK:
            _PROC_CACHE[key] = body
    return body


def glyph_name(face: fonts.FontFace, gid: int) -> bytes:
    """The Type 3 glyph name of a face's glyph: ``f<face serial>g<glyph id>``, so it reads back."""
    return b"f%dg%d" % (face.serial, gid)


@dataclass
class _GlyphSlot:
    font: int  # index of the page's Type 3 font
    code: int


@dataclass
class _PageFonts:
    """The glyphs one page uses, packed into Type 3 fonts of up to 256 codes each.

    A code stands for a glyph and the text it represents (ToUnicode): the same glyph standing for other
    text (a ligature's second cluster, say) gets a code of its own.
    """

    slots: dict[tuple[int, int, str], _GlyphSlot] = field(default_factory=dict)
    groups: list[list[tuple[fonts.FontFace, int, str]]] = field(default_factory=list)

    def slot(self, face: fonts.FontFace, gid: int, text: str) -> _GlyphSlot:
        key = (face.serial, gid, text)
        found = self.slots.get(key)
        if found is None:
            if not self.groups or len(self.groups[-1]) == _CODES_PER_FONT:
                self.groups.append([])
            found = _GlyphSlot(len(self.groups) - 1, len(self.groups[-1]))
            self.groups[-1].append((face, gid, text))
            self.slots[key] = found
        return found


class _Canvas:
    """One page's content stream, with y measured from the top (labels are laid out top-down)."""

    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height
        self.ops: list[str] = []
        self.fonts = _PageFonts()

    def text(self, x: float, top: float, size: float, line: ShapedLine) -> None:
        """Draw one shaped line whose em box starts ``top`` points below the page top.

        Each glyph goes exactly where HarfBuzz placed it: after a glyph the text position moves by the
        glyph's width, and a ``TJ`` adjustment moves it on to the next glyph's origin where that differs
        (kerning, marks); a mark raised or lowered is drawn with a text rise (``Ts``).
        """
        if not line.glyphs:
            return
        baseline = self.height - top - size * 0.88
        parts = [f"BT {_fmt(x)} {_fmt(baseline)} Td"]
        current_font = -1
        rise = 0.0
        pen = 0.0  # where the text position is, in 1/1000 em from the line's start
        shown: list[str] = []

        def flush() -> None:
            if shown:
                parts.append(f"[{''.join(shown)}] TJ")
                shown.clear()

        for glyph in line.glyphs:
            slot = self.fonts.slot(glyph.face, glyph.gid, glyph.text)
            if slot.font != current_font:
                flush()
                parts.append(f"/T{slot.font} {_fmt(size)} Tf")
                current_font = slot.font
            if glyph.y != rise:
                flush()
                rise = glyph.y
                parts.append(f"{_fmt(rise * size / 1000)} Ts")
            if abs(glyph.x - pen) > 0.005:
                shown.append(f" {_fmt(pen - glyph.x)} ")
            shown.append(_CODES[slot.code])
            pen = glyph.x + glyph.advance
        flush()
        if rise:
            parts.append("0 Ts")  # the text rise is graphics state: it would outlive this line
        parts.append("ET")
        self.ops.append(" ".join(parts))

    def rule(self, x: float, top: float, width: float, thickness: float = 0.8) -> None:
        self.ops.append(f"{_fmt(x)} {_fmt(self.height - top - thickness)} {_fmt(width)} {_fmt(thickness)} re f")

    def barcode(self, x: float, top: float, module: float, bar_height: float, data: str) -> float:
        """Code 128 bars as filled rectangles; returns the symbol's width."""
        y = self.height - top - bar_height
        cursor = x
        rects = []
        for is_bar, width in code128.modules(data):
            if is_bar:
                rects.append(f"{_fmt(cursor)} {_fmt(y)} {_fmt(width * module)} {_fmt(bar_height)} re")
            cursor += width * module
        self.ops.append(" ".join(rects) + " f")
        return cursor - x


def _format_time(doc: LabelDocument) -> str:
    return doc.printed_at.isoformat(sep=" ", timespec="minutes")


class _Text:
    """Wraps and shapes a label's lines for one destination (its CJK face, its scripts' faces).

    ``shaped`` holds the buyer's lines already shaped in this render call (a batch's destinations repeat
    their regions and cities); the renderer empties it when the call returns, so no buyer text outlives the
    request. Lines that are not buyer data (``public``: captions, the return address, country names, the
    print time) are shaped once per process (:func:`render.shaping.shape_public`).
    """

    def __init__(self, font: fonts.LabelFont, country_code: str | None, shaped: dict[tuple[str, str], ShapedLine]):
        self.font = font
        self.country = country_code
        self.shaped = shaped

    def wrap(self, text: str, size: float, max_width: float, what: str, *, public: bool = False) -> list[str]:
        """The line whole if its shaped width fits, else a greedy wrap by the nominal advances of the faces
        that will draw the text."""
        if self.shape(text, what, public=public).width(size) <= max_width:
            return [text] if text else []
        return wrap_greedy(text, max_width, lambda c: shaping.char_advance(self.font, c, self.country) * size / 1000)

    def shape(self, text: str, what: str, *, public: bool = False) -> ShapedLine:
        if public:
            return shaping.shape_public(text, self.font, self.country, what=what)
        key = (text, (self.country or "").upper())
        line = self.shaped.get(key)
        if line is None:
            line = self.shaped[key] = shaping.shape_line(text, self.font, self.country, what=what)
        return line


class PdfRenderer:
    """``application/pdf``: one page per document, 4x6 in (default), 100x150 mm or 100x100 mm."""

    media_type = "application/pdf"
    multi_label = True

    def __init__(self, *, size: str = "4x6", font: str | None = None) -> None:
        """``size``: one of :data:`PAGE_SIZES`. ``font``: a CJK font file to use instead of the discovered one."""
        if size not in PAGE_SIZES:
            raise ValueError(f"size must be one of {sorted(PAGE_SIZES)}")
        self.size = size
        self.font_path = font

    def render(self, documents: Sequence[LabelDocument]) -> bytes:
        """Render the documents as one PDF, a page each."""
        if not documents:
            raise RenderError("no label documents to render")
        font = fonts.load_font(self.font_path)
        width, height = PAGE_SIZES[self.size]
        objects = _Objects()
        pages_ref = objects.reserve()
        procs: dict[tuple[int, int], int] = {}  # glyph procedures shared by every page of this file
        shaped: dict[tuple[str, str], ShapedLine] = {}
        try:
            kids = [self._page(objects, pages_ref, procs, font, shaped, doc, width, height) for doc in documents]
        finally:
            shaped.clear()
        objects.put(
            pages_ref,
            b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(kids), b" ".join(b"%d 0 R" % k for k in kids)),
        )
        root = objects.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_ref)
        info = objects.add(b"<< /Producer (labelvault) /Title (Shipping label) >>")
        return objects.serialize(root, info)

    def _page(
        self,
        objects: _Objects,
        pages_ref: int,
        procs: dict[tuple[int, int], int],
        font: fonts.LabelFont,
        shaped: dict[tuple[str, str], ShapedLine],
        doc: LabelDocument,
        width: float,
        height: float,
    ) -> int:
        ship = _Text(font, doc.ship_to.country_code, shaped)
        ret = doc.return_address
        phone = phone_line(doc.ship_to, ret.country_code if ret is not None else None)
        address = [_bounded(line) for line in layout_address(doc.ship_to) + ([phone] if phone else [])]
        country = country_name(doc.ship_to.country_code)  # the address's last line: not the buyer's words
        sender = ship if ret is None else _Text(font, ret.country_code, shaped)
        return_lines = [] if ret is None else [_bounded(clean_field(x)) for x in (ret.name, *ret.lines)]
        order_ref = _bounded(doc.order_ref)
        marketplace = _bounded(clean_field(doc.marketplace)).upper()
        inner = width - 2 * _MARGIN
        # A square label has room for less: a shorter barcode and at most two return-address lines.
        square = height < 400
        bar_height = 36.0 if square else 50.0
        max_return = 2 if square else 4
        # The bottom block (rule, barcode, order id, marketplace, rule, print time) sits above the margin.
        bottom_block = bar_height + 66
        block_bottom = min(height * 0.655, height - _MARGIN - bottom_block - 4)

        # Everything is shaped, so checked, before anything is drawn: a label is printed whole or not at all.
        sender_lines: list[ShapedLine] = []
        for line in return_lines[:max_return]:
            parts = sender.wrap(line, 7.5, inner, "the return address", public=True)[:2]
            sender_lines += [sender.shape(p, "the return address", public=True) for p in parts]
        if ret is not None:
            sender_lines.append(sender.shape(clean_field(ret.country_code), "the return address", public=True))
        top = _MARGIN + 8
        top = max(top + 9 * len(sender_lines), 50.0 if square else 62.0) + 3
        ship_top = top + 16
        what = "the ship-to address"
        for size in _SHIP_TO_SIZES:
            pitch = size * 1.22
            wrapped = [part for line in address for part in ship.wrap(line, size, inner, what, public=line == country)]
            if len(wrapped) * pitch <= block_bottom - ship_top:
                break
        # Field bounds make overflow at the smallest size impossible in practice; clip rather than overprint.
        fitting = wrapped[: int((block_bottom - ship_top) // pitch)]
        ship_lines = [ship.shape(p, what, public=p == country) for p in fitting]
        order_line = ship.shape(order_ref, "the order reference")
        marketplace_line = ship.shape(marketplace, "the order reference", public=True)

        canvas = _Canvas(width, height)
        canvas.text(_MARGIN, _MARGIN, 6, ship.shape("FROM", "a caption", public=True))
        line_top = _MARGIN + 8
        for shaped_line in sender_lines:
            canvas.text(_MARGIN, line_top, 7.5, shaped_line)
            line_top += 9
        canvas.rule(_MARGIN, top, inner)
        canvas.text(_MARGIN, top + 6, 6, ship.shape("SHIP TO", "a caption", public=True))
        line_top = ship_top
        for shaped_line in ship_lines:
            canvas.text(_MARGIN, line_top, size, shaped_line)
            line_top += pitch
        top = block_bottom + 4
        canvas.rule(_MARGIN, top, inner)

        top += 10
        total = code128.width_in_modules(order_ref) + 2 * code128.QUIET_ZONE
        module = min(1.0, inner / total)
        symbol = code128.width_in_modules(order_ref) * module
        canvas.barcode(_MARGIN + (inner - symbol) / 2, top, module, bar_height, order_ref)
        top += bar_height + 8
        canvas.text(_MARGIN, top, 12, order_line)
        top += 16
        canvas.text(_MARGIN, top, 8, marketplace_line)
        top += 14
        canvas.rule(_MARGIN, top, inner, 0.5)
        top += 5
        canvas.text(_MARGIN, top, 7, ship.shape(f"PRINTED {_format_time(doc)}", "the print time", public=True))

        font_refs = [self._type3(objects, procs, glyphs) for glyphs in canvas.fonts.groups]
        content = objects.add(_stream("\n".join(canvas.ops).encode("ascii")))
        resources = b" ".join(b"/T%d %d 0 R" % (i, ref) for i, ref in enumerate(font_refs))
        return objects.add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R /Resources << /Font << %s >> >> >>"
            % (pages_ref, _fmt(width).encode(), _fmt(height).encode(), content, resources)
        )

    @staticmethod
    def _type3(
        objects: _Objects, procs: dict[tuple[int, int], int], glyphs: list[tuple[fonts.FontFace, int, str]]
    ) -> int:
        names, widths, mappings = [], [], []
        char_procs: dict[bytes, int] = {}
        for code, (face, gid, text) in enumerate(glyphs):
            key = (face.serial, gid)
            ref = procs.get(key)
            if ref is None:
                ref = procs[key] = objects.add(_glyph_proc(face, gid))
            name = glyph_name(face, gid)
            names.append(b"/" + name)
            char_procs[name] = ref
            widths.append(_fmt(face.glyph(gid).advance).encode())
            if text:
                mappings.append(b"<%02X> <%s>" % (code, text.encode("utf-16-be").hex().upper().encode()))
        to_unicode = objects.add(_stream(_cmap(mappings)))
        ascent = max(face.ascent for face, _, _ in glyphs)
        descent = min(face.descent for face, _, _ in glyphs)
        return objects.add(
            b"<< /Type /Font /Subtype /Type3 /FontBBox [0 %d 1000 %d] /FontMatrix [0.001 0 0 0.001 0 0]"
            b" /CharProcs << %s >> /Encoding << /Type /Encoding /Differences [0 %s] >>"
            b" /FirstChar 0 /LastChar %d /Widths [%s] /ToUnicode %d 0 R /Resources << >> >>"
            % (
                descent,
                ascent,
                b" ".join(b"/%s %d 0 R" % item for item in char_procs.items()),
                b" ".join(names),
                len(glyphs) - 1,
                b" ".join(widths),
                to_unicode,
            )
        )


def _cmap(mappings: list[bytes]) -> bytes:
    """A ToUnicode CMap for single-byte codes (bfchar blocks of at most 100 entries, as the format asks)."""
    blocks = []
    for start in range(0, len(mappings), 100):
        chunk = mappings[start : start + 100]
        blocks.append(b"%d beginbfchar\n%s\nendbfchar" % (len(chunk), b"\n".join(chunk)))
    return (
        b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        b"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        b"1 begincodespacerange\n<00> <FF>\nendcodespacerange\n"
        + b"\n".join(blocks)
        + b"\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    )


def warm_up(font: str | None = None) -> None:
    """Load the label font and convert common glyphs now (call at worker start), not on the first request."""
    fonts.warm_up(font)
