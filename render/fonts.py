"""The label font: discovered once, loaded once per process, glyph outlines cached as they are first used.

One font has to cover Latin, Greek, Cyrillic, kana, Hangul and Han, because a cross-border seller's labels
go to Tokyo, Shanghai, Seoul and Berlin from the same printer. The default is Noto Sans CJK (Debian's
``fonts-noto-cjk``), whose collection carries one face per region: the same code point is drawn the way
Japanese, Simplified Chinese, Traditional Chinese or Korean readers expect, so each label uses the face of
its destination. WenQuanYi Zen Hei and Droid Sans Fallback are accepted where Noto is not installed.

Loading is the expensive part (a CJK collection's cmap and outline index take ~0.1-0.3 s per face), so a
font is loaded once per process (:func:`load_font`, :func:`warm_up`) and each glyph's outline is converted
once and kept; a label afterwards costs dictionary look-ups.
"""

from __future__ import annotations

import functools
import os
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fontTools.pens.basePen import BasePen
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont, TTLibError

from render.interfaces import FontCoverageError, RenderError

if TYPE_CHECKING:
    from PIL import ImageFont

#: Where Debian's packages put the fonts we can use, best first (and the package that ships each).
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "fonts-droid-fallback"),
)
#: Fills the gaps of the CJK fonts in European scripts (Noto Sans CJK has no accented Greek, ή or ώ):
#: DejaVu Sans, Debian's ``fonts-dejavu-core``. Used for a character only when the main face lacks it.
FALLBACK_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "fonts-dejavu-core"),
)
#: Other distributions put the same files elsewhere; searched by file name below these roots.
_FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts")

#: Region suffix in a collection face's family name ("Noto Sans CJK SC") -> destination countries using it.
_REGION_COUNTRIES = {
    "JP": ("JP",),
    "KR": ("KR", "KP"),
    "SC": ("CN", "SG"),
    "TC": ("TW",),
    "HK": ("HK", "MO"),
}
#: Regional glyph forms don't matter for Latin/Greek/Cyrillic; the Japanese face is the house default.
_DEFAULT_REGION = "JP"
#: Glyph-space units of every cached outline: 1/1000 em, what a PDF Type 3 font matrix of 0.001 expects.
UNITS_PER_EM = 1000


def is_ignorable(char: str) -> bool:
    """Whether a character draws nothing and needs no glyph: controls and format characters (ZWSP, LRM, ZWJ)."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def _right_to_left(char: str) -> bool:
    # Hebrew and Arabic need bidi reordering (and Arabic shaping) that glyph-by-glyph drawing can't do:
    # they'd print backwards, so they count as not covered rather than print wrong.
    return unicodedata.bidirectional(char) in ("R", "AL")


@dataclass(frozen=True, slots=True)
class Glyph:
    """One glyph in 1/1000 em: its advance, ink box, and outline as PDF path operators (filled, nonzero)."""

    advance: int
    bbox: tuple[int, int, int, int]
    path: bytes


class _PdfPathPen(BasePen):  # type: ignore[misc]  # fontTools ships no type information
    """Collects an outline as PDF path operators, scaled to 1/1000 em (quadratic curves become cubic)."""

    def __init__(self, glyph_set: Any, scale: float) -> None:
        super().__init__(glyph_set)
        self._scale = scale
        self._ops: list[str] = []

    def _xy(self, point: tuple[float, float]) -> str:
        x, y = point
        return f"{_num(x * self._scale)} {_num(y * self._scale)}"

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self._ops.append(f"{self._xy(pt)} m")

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self._ops.append(f"{self._xy(pt)} l")

    def _curveToOne(self, pt1: tuple[float, float], pt2: tuple[float, float], pt3: tuple[float, float]) -> None:
        self._ops.append(f"{self._xy(pt1)} {self._xy(pt2)} {self._xy(pt3)} c")

    def _qCurveToOne(self, pt1: tuple[float, float], pt2: tuple[float, float]) -> None:
        # PDF has no quadratic Bézier: raise the degree (control points 2/3 of the way to the off-curve point).
        x0, y0 = self._getCurrentPoint()
        c1 = (x0 + 2 * (pt1[0] - x0) / 3, y0 + 2 * (pt1[1] - y0) / 3)
        c2 = (pt2[0] + 2 * (pt1[0] - pt2[0]) / 3, pt2[1] + 2 * (pt1[1] - pt2[1]) / 3)
        self._curveToOne(c1, c2, pt2)

    def _closePath(self) -> None:
        self._ops.append("h")

    def path(self) -> bytes:
        return " ".join(self._ops).encode("ascii")


def _num(value: float) -> str:
    rounded = round(value, 1)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


class FontFace:
    """One face of the label font (e.g. "Noto Sans CJK SC"): coverage, metrics and cached glyph outlines."""

    _tt: TTFont

    def __init__(self, font: LabelFont, index: int, family: str) -> None:
        self.font = font
        self.index = index
        self.family = family
        tt = TTFont(font.path, fontNumber=index, lazy=True) if font.is_collection else TTFont(font.path, lazy=True)
        outline_tag = "CFF " if "CFF " in tt.reader.tables else "glyf"
        self._outline_key = (outline_tag, tt.reader.tables[outline_tag].offset)
        donor = font._outline_donor(self._outline_key)
        if donor is not None:
            # Faces of one collection share the outline table; reading its glyph order again would cost as
            # much as loading the face afresh, so borrow the donor's (same table, same order).
            tt.setGlyphOrder(donor._tt.getGlyphOrder())
            self._glyph_set: Any = donor._glyph_set
        else:
            self._glyph_set = tt.getGlyphSet()
        self._tt = tt
        self._cmap: dict[int, str] = tt.getBestCmap() or {}
        self._scale = UNITS_PER_EM / tt["head"].unitsPerEm
        self.ascent = round(tt["hhea"].ascent * self._scale)
        self.descent = round(tt["hhea"].descent * self._scale)
        # Shared by every face drawing from the same outline table: a glyph is converted once per process.
        self._glyphs = font._glyph_cache(self._outline_key)
        self._fallback = font.fallback.face_for(None) if font.fallback is not None else None

    def covers(self, char: str) -> bool:
        """Whether this face (or the fallback font) can draw the character; ignorable ones need no glyph."""
        if is_ignorable(char):
            return True
        if _right_to_left(char):
            return False
        return ord(char) in self._cmap or (self._fallback is not None and ord(char) in self._fallback._cmap)

    def source(self, char: str) -> FontFace:
        """The face that draws ``char``: this one, or the fallback font's where this one lacks the glyph."""
        if ord(char) in self._cmap or self._fallback is None:
            return self
        return self._fallback

    def runs(self, text: str) -> list[tuple[FontFace, str]]:
        """``text`` split into runs drawn by one face each (for rasterisers without per-glyph fallback)."""
        out: list[tuple[FontFace, str]] = []
        for char in text:
            if is_ignorable(char):
                continue
            face = self.source(char)
            if out and out[-1][0] is face:
                out[-1] = (face, out[-1][1] + char)
            else:
                out.append((face, char))
        return out

    def missing(self, text: str) -> list[str]:
        """The characters of ``text`` this face can't draw, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if not self.covers(c)))

    def check_coverage(self, text: str, *, what: str) -> None:
        """Raise :class:`FontCoverageError` unless every character of ``text`` has a glyph.

        The message names the field and the code points (not the text): enough to act on, no PII.
        """
        missing = self.missing(text)
        if missing:
            points = ", ".join(f"U+{ord(c):04X}" for c in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise FontCoverageError(f"font {self.family!r} has no glyph for {points}{more} in {what}")

    def glyph(self, char: str) -> Glyph:
        """The glyph for a covered character (see :meth:`covers`), converted on first use."""
        if ord(char) not in self._cmap and self._fallback is not None:
            return self._fallback.glyph(char)
        name = self._cmap[ord(char)]
        cached = self._glyphs.get(name)
        if cached is not None:
            return cached
        with self.font._lock:  # fontTools' lazy tables aren't thread-safe; conversions are rare
            glyph = self._glyphs.get(name)
            if glyph is None:
                glyph = self._convert(name)
                self._glyphs[name] = glyph
        return glyph

    def _convert(self, name: str) -> Glyph:
        source = self._glyph_set[name]
        pen = _PdfPathPen(self._glyph_set, self._scale)
        source.draw(pen)
        bounds = BoundsPen(self._glyph_set)
        source.draw(bounds)
        box = bounds.bounds or (0, 0, 0, 0)
        bbox = (
            int(box[0] * self._scale // 1),
            int(box[1] * self._scale // 1),
            -int(-box[2] * self._scale // 1),
            -int(-box[3] * self._scale // 1),
        )
        return Glyph(advance=round(source.width * self._scale), bbox=bbox, path=pen.path())

    def advance(self, char: str) -> int:
        """Advance width of a character in 1/1000 em (0 for ignorable characters)."""
        return 0 if is_ignorable(char) else self.glyph(char).advance

    def text_width(self, text: str, size: float) -> float:
        """Width of a run of covered text at ``size`` points (or pixels)."""
        return sum(self.advance(c) for c in text) * size / UNITS_PER_EM

    def raster_font(self, size_px: int) -> ImageFont.FreeTypeFont:
        """This face as a Pillow font of ``size_px`` pixels (for rasterising text into printer graphics)."""
        return _pillow_font(str(self.font.path), self.index, size_px)


class LabelFont:
    """A font file (single face or collection) and its faces, loaded lazily and kept for the process."""

    def __init__(self, path: Path, fallback: LabelFont | None = None) -> None:
        self.path = path
        self.fallback = fallback
        self.is_collection = _is_ttc(path)
        self._lock = threading.RLock()
        self._faces: dict[int, FontFace] = {}
        self._glyph_caches: dict[tuple[str, int], dict[str, Glyph]] = {}
        self._region_face = self._read_regions()

    def _read_regions(self) -> dict[str, tuple[int, str]]:
        """Map region code -> (face index, family) for a CJK collection; single fonts get the default only."""
        regions: dict[str, tuple[int, str]] = {}
        count = _face_count(self.path) if self.is_collection else 1
        for index in range(count):
            tt = TTFont(self.path, fontNumber=index, lazy=True) if self.is_collection else TTFont(self.path, lazy=True)
            family = str(tt["name"].getDebugName(1) or self.path.stem)
            tt.close()
            words = family.split()
            if "Mono" in words:
                continue  # proportional faces read better on a label
            region = words[-1] if words and words[-1] in _REGION_COUNTRIES else _DEFAULT_REGION
            regions.setdefault(region, (index, family))
        if not regions:
            raise RenderError(f"no usable face in label font {self.path.name}")
        return regions

    def _outline_donor(self, key: tuple[str, int]) -> FontFace | None:
        return next((face for face in self._faces.values() if face._outline_key == key), None)

    def _glyph_cache(self, key: tuple[str, int]) -> dict[str, Glyph]:
        return self._glyph_caches.setdefault(key, {})

    def face_for(self, country_code: str | None) -> FontFace:
        """The face whose glyph forms suit the destination country (Japanese forms where none is specific)."""
        code = (country_code or "").upper()
        region = next((r for r, countries in _REGION_COUNTRIES.items() if code in countries), _DEFAULT_REGION)
        index, family = (
            self._region_face.get(region)
            or self._region_face.get(_DEFAULT_REGION)
            or next(iter(self._region_face.values()))
        )
        face = self._faces.get(index)
        if face is None:
            with self._lock:
                face = self._faces.get(index)
                if face is None:
                    face = FontFace(self, index, family)
                    self._faces[index] = face
        return face

    def faces(self) -> list[FontFace]:
        """Every regional face, loading those not loaded yet."""
        countries = [countries[0] for countries in _REGION_COUNTRIES.values()]
        return list({id(f): f for f in (self.face_for(c) for c in countries)}.values())


def _is_ttc(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"ttcf"


def _face_count(path: Path) -> int:
    with path.open("rb") as handle:
        header = handle.read(12)
    return int.from_bytes(header[8:12], "big")


def find_font_file() -> Path:
    """The best installed label font; :class:`RenderError` naming the packages to install when none is."""
    for candidate, _package in FONT_CANDIDATES:
        if os.path.isfile(candidate):
            return Path(candidate)
    names = {Path(candidate).name for candidate, _ in FONT_CANDIDATES}
    for root in _FONT_ROOTS:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name in names:
                    return Path(dirpath) / name
    packages = " or ".join(package for _, package in FONT_CANDIDATES)
    raise RenderError(f"no label font covering CJK is installed (install {packages})")


def find_fallback_file() -> Path | None:
    """The installed fallback font for European scripts, if any."""
    return next((Path(c) for c, _ in FALLBACK_CANDIDATES if os.path.isfile(c)), None)


@functools.cache
def _load(path: Path, fallback: Path | None) -> LabelFont:
    try:
        return LabelFont(path, fallback=_load(fallback, None) if fallback is not None and fallback != path else None)
    except (OSError, TTLibError, KeyError) as exc:
        raise RenderError(f"can't load label font {path.name}: {type(exc).__name__}") from exc


def load_font(path: str | os.PathLike[str] | None = None) -> LabelFont:
    """The label font at ``path`` (default: :func:`find_font_file`), loaded once per process."""
    return _load(Path(path).resolve() if path is not None else find_font_file(), find_fallback_file())


def warm_up(path: str | os.PathLike[str] | None = None, *, preload: Iterable[str] = "") -> LabelFont:
    """Pay the font's loading cost now (at worker start), not on the first label request.

    Loads every regional face and converts the glyphs of printable ASCII plus ``preload``.
    """
    font = load_font(path)
    common = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(preload)
    for face in font.faces():
        for char in common:
            if face.covers(char) and not is_ignorable(char):
                face.glyph(char)
    return font


@functools.lru_cache(maxsize=64)
def _pillow_font(path: str, index: int, size_px: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont  # only the ZPL rasteriser needs Pillow

    return ImageFont.truetype(path, size=size_px, index=index)
