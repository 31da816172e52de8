"""PDF labels, 4x6 in or 100x150 mm, one page per document, fonts embedded (no printer-side fonts).

Why this writes PDF itself instead of using a PDF library: the libraries that embed a CJK font (fpdf2,
reportlab with a TrueType CJK font) subset the whole font on every document, ~0.4 s a label. Here the text
is drawn with Type 3 fonts built from glyph outlines of the label font (:mod:`render.fonts`), each
outline converted once per process and each glyph procedure compressed once; a label then costs a few
milliseconds. Each Type 3 font carries a ToUnicode map, so the text stays searchable and extractable, and the
font is embedded in the file like any other. Coverage is checked against the font's cmap before anything is
drawn: a character the font lacks is a :class:`FontCoverageError`, never a box.

The order id is drawn as a Code 128 barcode in vector bars.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from render import code128, fonts
from render.address import clean_field, layout_address
from render.interfaces import LabelDocument, RenderError
from render.wrap import wrap_greedy

#: Page sizes in points (1/72 in).
PAGE_SIZES: dict[str, tuple[float, float]] = {
    "4x6": (4 * 72.0, 6 * 72.0),
    "100x150mm": (100 / 25.4 * 72, 150 / 25.4 * 72),
}
#: Longest value printed for any one field; longer values are cut (a label is no place for an essay).
MAX_FIELD_CHARS = 80
_MARGIN = 14.0
_SHIP_TO_SIZES = (16.0, 14.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0)
#: A Type 3 font maps single-byte codes: at most 256 glyphs each.
_CODES_PER_FONT = 256

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


# Glyph procedures, compressed once per process: (face id, character) -> stream object body.
_PROC_CACHE: dict[tuple[int, int, str], bytes] = {}
_PROC_LOCK = threading.Lock()


def _glyph_proc(face: fonts.FontFace, char: str) -> bytes:
    key = (id(face.font), face.index, char)
    body = _PROC_CACHE.get(key)
    if body is None:
        glyph = face.glyph(char)
        x0, y0, x1, y1 = glyph.bbox
        # d1: the glyph is a shape painted in the current fill colour, not a coloured picture.
        ops = b"%d 0 %d %d %d %d d1\n" % (glyph.advance, x0, y0, x1, y1)
        if glyph.path:
            ops += glyph.path + b" f"
        body = _stream(ops)
        with _PROC_LOCK:
            _PROC_CACHE[key] = body
    return body


@dataclass
class _GlyphSlot:
    font: int  # index of the page's Type 3 font
    code: int


@dataclass
class _PageFonts:
    """The glyphs one page uses, packed into Type 3 fonts of up to 256 codes each."""

    slots: dict[tuple[int, str], _GlyphSlot] = field(default_factory=dict)
    groups: list[list[tuple[fonts.FontFace, str]]] = field(default_factory=list)

    def slot(self, face: fonts.FontFace, char: str) -> _GlyphSlot:
        key = (face.index, char)
        found = self.slots.get(key)
        if found is None:
            if not self.groups or len(self.groups[-1]) == _CODES_PER_FONT:
                self.groups.append([])
            found = _GlyphSlot(len(self.groups) - 1, len(self.groups[-1]))
            self.groups[-1].append((face, char))
            self.slots[key] = found
        return found


class _Canvas:
    """One page's content stream, with y measured from the top (labels are laid out top-down)."""

    def __init__(self, width: float, height: float) -> None:
        self.width = width
        self.height = height
        self.ops: list[str] = []
        self.fonts = _PageFonts()

    def text(self, x: float, top: float, size: float, text: str, face: fonts.FontFace) -> None:
        """Draw one line whose em box starts ``top`` points below the page top."""
        baseline = self.height - top - size * 0.88
        parts = [f"BT {_fmt(x)} {_fmt(baseline)} Td"]
        current = -1
        run: list[str] = []
        for char in text:
            if fonts.is_ignorable(char):
                continue
            slot = self.fonts.slot(face, char)
            if slot.font != current:
                if run:
                    parts.append(f"<{''.join(run)}> Tj")
                    run = []
                parts.append(f"/T{slot.font} {_fmt(size)} Tf")
                current = slot.font
            run.append(f"{slot.code:02X}")
        if run:
            parts.append(f"<{''.join(run)}> Tj")
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


def _wrap(text: str, face: fonts.FontFace, size: float, max_width: float) -> list[str]:
    """Greedy wrap by the font's measured widths."""
    return wrap_greedy(text, max_width, lambda char: face.advance(char) * size / fonts.UNITS_PER_EM)


def _format_time(doc: LabelDocument) -> str:
    return doc.printed_at.isoformat(sep=" ", timespec="minutes")


class PdfRenderer:
    """``application/pdf``: one page per document, 4x6 in (default) or 100x150 mm."""

    media_type = "application/pdf"

    def __init__(self, *, size: str = "4x6", font: str | None = None) -> None:
        """``size``: "4x6" or "100x150mm". ``font``: a font file to use instead of the discovered label font."""
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
        procs: dict[tuple[int, str], int] = {}  # glyph procedures shared by every page of this file
        kids = [self._page(objects, pages_ref, procs, font, doc, width, height) for doc in documents]
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
        procs: dict[tuple[int, str], int],
        font: fonts.LabelFont,
        doc: LabelDocument,
        width: float,
        height: float,
    ) -> int:
        face = font.face_for(doc.ship_to.country_code)
        address = [_bounded(line) for line in layout_address(doc.ship_to)]
        ret = doc.return_address
        return_lines = [] if ret is None else [_bounded(clean_field(x)) for x in (ret.name, *ret.lines)]
        ret_face = face if ret is None else font.face_for(ret.country_code)
        order_ref = _bounded(doc.order_ref)
        marketplace = _bounded(clean_field(doc.marketplace)).upper()
        # Everything is checked before anything is drawn: a label is printed whole or not at all.
        face.check_coverage("".join(address), what="the ship-to address")
        ret_face.check_coverage("".join(return_lines), what="the return address")
        face.check_coverage(order_ref + marketplace, what="the order reference")

        canvas = _Canvas(width, height)
        inner = width - 2 * _MARGIN
        top = _MARGIN
        canvas.text(_MARGIN, top, 6, "FROM", face)
        top += 8
        for line in return_lines[:4]:
            for part in _wrap(line, ret_face, 7.5, inner)[:2]:
                canvas.text(_MARGIN, top, 7.5, part, ret_face)
                top += 9
        if ret is not None:
            canvas.text(_MARGIN, top, 7.5, clean_field(ret.country_code), ret_face)
            top += 9
        top = max(top, 62.0) + 3
        canvas.rule(_MARGIN, top, inner)

        top += 6
        canvas.text(_MARGIN, top, 6, "SHIP TO", face)
        top += 10
        block_bottom = height * 0.655
        for size in _SHIP_TO_SIZES:
            pitch = size * 1.22
            wrapped = [part for line in address for part in _wrap(line, face, size, inner)]
            if len(wrapped) * pitch <= block_bottom - top:
                break
        # Field bounds make overflow at the smallest size impossible in practice; clip rather than overprint.
        for part in wrapped[: int((block_bottom - top) // pitch)]:
            canvas.text(_MARGIN, top, size, part, face)
            top += pitch
        top = block_bottom + 4
        canvas.rule(_MARGIN, top, inner)

        top += 10
        total = code128.width_in_modules(order_ref) + 2 * code128.QUIET_ZONE
        module = min(1.0, inner / total)
        symbol = code128.width_in_modules(order_ref) * module
        canvas.barcode(_MARGIN + (inner - symbol) / 2, top, module, 50, order_ref)
        top += 58
        canvas.text(_MARGIN, top, 12, order_ref, face)
        top += 16
        canvas.text(_MARGIN, top, 8, marketplace, face)
        top += 14
        canvas.rule(_MARGIN, top, inner, 0.5)
        top += 5
        canvas.text(_MARGIN, top, 7, f"PRINTED {_format_time(doc)}", face)

        font_refs = [self._type3(objects, procs, glyphs) for glyphs in canvas.fonts.groups]
        content = objects.add(_stream("\n".join(canvas.ops).encode("ascii")))
        resources = b" ".join(b"/T%d %d 0 R" % (i, ref) for i, ref in enumerate(font_refs))
        return objects.add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Contents %d 0 R /Resources << /Font << %s >> >> >>"
            % (pages_ref, _fmt(width).encode(), _fmt(height).encode(), content, resources)
        )

    @staticmethod
    def _type3(objects: _Objects, procs: dict[tuple[int, str], int], glyphs: list[tuple[fonts.FontFace, str]]) -> int:
        names, widths, mappings = [], [], []
        char_procs = []
        for code, (face, char) in enumerate(glyphs):
            key = (face.index, char)
            ref = procs.get(key)
            if ref is None:
                ref = procs[key] = objects.add(_glyph_proc(face, char))
            names.append(b"/g%d" % code)
            char_procs.append(b"/g%d %d 0 R" % (code, ref))
            widths.append(b"%d" % face.glyph(char).advance)
            mappings.append(b"<%02X> <%s>" % (code, char.encode("utf-16-be").hex().upper().encode()))
        to_unicode = objects.add(_stream(_cmap(mappings)))
        face = glyphs[0][0]
        return objects.add(
            b"<< /Type /Font /Subtype /Type3 /FontBBox [0 %d 1000 %d] /FontMatrix [0.001 0 0 0.001 0 0]"
            b" /CharProcs << %s >> /Encoding << /Type /Encoding /Differences [0 %s] >>"
            b" /FirstChar 0 /LastChar %d /Widths [%s] /ToUnicode %d 0 R /Resources << >> >>"
            % (
                face.descent,
                face.ascent,
                b" ".join(char_procs),
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
