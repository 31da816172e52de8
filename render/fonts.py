"""The label fonts: one face per script, found once, loaded once per process, glyph outlines cached by glyph id.

A cross-border seller's labels go to Tokyo, Riyadh, Tel Aviv, Bangkok, Delhi and Berlin from the same
printer, so no single font will do. Text is drawn from HarfBuzz-shaped glyph ids (:mod:`render.shaping`),
and each run of one script gets a face that writes it (Debian's packages):

- Han, kana, Hangul, and Latin/Greek/Cyrillic by default: Noto Sans CJK (``fonts-noto-cjk``), whose
  collection carries one face per region, so the same code point is drawn the way Japanese, Simplified
  Chinese, Traditional Chinese or Korean readers expect (:meth:`LabelFont.face_for` a destination);
  WenQuanYi Zen Hei and Droid Sans Fallback where Noto CJK is not installed;
- every other script: its Noto face from ``fonts-noto-core``, found by the Unicode script's name
  (``NotoSansArabic-Regular.ttf``, ``NotoSansHebrew…``, ``NotoSansThai…``, ``NotoSansDevanagari…``);
- characters the script's face lacks: DejaVu Sans (``fonts-dejavu-core``: accented Greek, symbols), then
  Symbola (``fonts-symbola``: emoji and pictographs as outlines; colour emoji fonts are bitmaps).

A character no installed face draws is a :class:`FontCoverageError` naming its script and code point, never
a box. Faces are HarfBuzz objects over memory-mapped files (loading one costs microseconds, not the ~0.3 s
of parsing a CJK collection's tables); each glyph's outline becomes PDF path operators once per process.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import uharfbuzz as hb
from fontTools import unicodedata as ucd

from render.interfaces import FontCoverageError, RenderError

#: Where Debian's packages put the CJK fonts we can use, best first (and the package that ships each).
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "fonts-noto-cjk"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "fonts-droid-fallback"),
)
#: Faces tried, in order, for characters the script's own face lacks (file name, package).
FALLBACK_FILES: tuple[tuple[str, str], ...] = (
    ("DejaVuSans.ttf", "fonts-dejavu-core"),
    ("NotoSans-Regular.ttf", "fonts-noto-core"),
    ("Symbola_hint.ttf", "fonts-symbola"),
    ("Symbola.ttf", "fonts-symbola"),
)
#: Searched (once per process) for font files by name, so other distributions' layouts work too.
FONT_ROOTS = ("/usr/share/fonts", "/usr/local/share/fonts")

#: Scripts the CJK collection writes itself (ISO 15924); Common and Inherited characters follow their run.
CJK_SCRIPTS = frozenset({"Hani", "Hira", "Kana", "Hang", "Bopo", "Latn", "Grek", "Cyrl", "Zyyy", "Zinh", "Zzzz"})

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
#: Glyph-space units of every cached outline and position: 1/1000 em, what a PDF Type 3 font matrix of
#: 0.001 expects.
UNITS_PER_EM = 1000

_serials = itertools.count(1)


@functools.lru_cache(maxsize=16384)
def is_ignorable(char: str) -> bool:
    """Whether a character draws nothing and needs no glyph: controls, format characters (ZWSP, LRM, ZWJ)
    and variation selectors (HarfBuzz drops them from the shaped run; they only steer its choices)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
    )


@functools.lru_cache(maxsize=16384)
def script_of(char: str) -> str:
    """The character's Unicode script as an ISO 15924 code ("Arab", "Latn"; "Zyyy" common, "Zinh" inherited)."""
    return str(ucd.script(char))


def script_name(code: str) -> str:
    """The script's English name ("Arabic") for error messages: names the script, not the text."""
    return str(ucd.script_name(code, default=code))


@dataclass(frozen=True, slots=True)
class Glyph:
    """One glyph in 1/1000 em: its advance, ink box, and outline as PDF path operators (filled, nonzero)."""

    advance: float
    bbox: tuple[int, int, int, int]
    path: bytes


class _PdfPathPen:
    """Collects an outline HarfBuzz draws as PDF path operators, scaled to 1/1000 em (quadratics raised)."""

    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._ops: list[str] = []
        self._current = (0.0, 0.0)

    def _xy(self, point: tuple[float, float]) -> str:
        return f"{_num(point[0] * self._scale)} {_num(point[1] * self._scale)}"

    def moveTo(self, pt: tuple[float, float]) -> None:
        self._ops.append(f"{self._xy(pt)} m")
        self._current = pt

    def lineTo(self, pt: tuple[float, float]) -> None:
        self._ops.append(f"{self._xy(pt)} l")
        self._current = pt

    def curveTo(self, pt1: tuple[float, float], pt2: tuple[float, float], pt3: tuple[float, float]) -> None:
        self._ops.append(f"{self._xy(pt1)} {self._xy(pt2)} {self._xy(pt3)} c")
        self._current = pt3

    def qCurveTo(self, pt1: tuple[float, float], pt2: tuple[float, float]) -> None:
        # PDF has no quadratic Bézier: raise the degree (control points 2/3 of the way to the off-curve point).
        x0, y0 = self._current
        c1 = (x0 + 2 * (pt1[0] - x0) / 3, y0 + 2 * (pt1[1] - y0) / 3)
        c2 = (pt2[0] + 2 * (pt1[0] - pt2[0]) / 3, pt2[1] + 2 * (pt1[1] - pt2[1]) / 3)
        self.curveTo(c1, c2, pt2)

    def closePath(self) -> None:
        self._ops.append("h")

    def path(self) -> bytes:
        return " ".join(self._ops).encode("ascii")


def _num(value: float) -> str:
    rounded = round(value, 1)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


class FontFace:
    """One face of one font file (e.g. "Noto Sans Arabic"): coverage, metrics and cached glyph outlines.

    ``serial`` numbers the face within the process; PDF glyph names carry it (``/f3g812``: face 3, glyph 812),
    so a glyph's origin can be read back from the file.
    """

    def __init__(self, path: Path, index: int, family: str) -> None:
        self.path = path
        self.index = index
        self.family = family
        self.serial = next(_serials)
        self.hb_face = hb.Face(hb.Blob.from_file_path(str(path)), index)
        self.hb_font = hb.Font(self.hb_face)
        self.upem = self.hb_face.upem
        self.scale = UNITS_PER_EM / self.upem
        extents = self.hb_font.get_font_extents("ltr")
        self.ascent = round(extents.ascender * self.scale)
        self.descent = round(extents.descender * self.scale)
        self._lock = threading.Lock()
        self._glyphs: dict[int, Glyph] = {}
        self._nominal: dict[str, int | None] = {}

    def gid(self, char: str) -> int | None:
        """The face's glyph for a character by its cmap, ``None`` if it has none."""
        try:
            return self._nominal[char]
        except KeyError:
            found = self.hb_font.get_nominal_glyph(ord(char))
            self._nominal[char] = found or None  # glyph 0 is .notdef: a box, not the character
            return self._nominal[char]

    def has(self, char: str) -> bool:
        """Whether this face draws the character (ignorable ones need no glyph)."""
        return is_ignorable(char) or self.gid(char) is not None

    def glyph(self, gid: int) -> Glyph:
        """The glyph with id ``gid``, its outline converted on first use and kept for the process."""
        cached = self._glyphs.get(gid)
        if cached is not None:
            return cached
        with self._lock:
            glyph = self._glyphs.get(gid)
            if glyph is None:
                glyph = self._glyphs[gid] = self._convert(gid)
        return glyph

    def _convert(self, gid: int) -> Glyph:
        pen = _PdfPathPen(self.scale)
        self.hb_font.draw_glyph_with_pen(gid, pen)
        extents = self.hb_font.get_glyph_extents(gid)
        if extents is None:
            bbox = (0, 0, 0, 0)
        else:
            x0, y1 = extents.x_bearing, extents.y_bearing
            x1, y0 = x0 + extents.width, y1 + extents.height
            s = self.scale
            bbox = (int(x0 * s // 1), int(y0 * s // 1), -int(-x1 * s // 1), -int(-y1 * s // 1))
        return Glyph(advance=self.hb_font.get_glyph_h_advance(gid) * self.scale, bbox=bbox, path=pen.path())

    def char_advance(self, char: str) -> float:
        """The nominal advance of a character this face has, in 1/1000 em (for wrapping before shaping)."""
        gid = self.gid(char)
        return 0.0 if gid is None or is_ignorable(char) else self.glyph(gid).advance


class LabelFont:
    """Every face a label may need: the CJK collection's regional faces, each script's face, the fallbacks.

    Faces load on first use and stay for the process; lookups are cached per (script, region).
    """

    def __init__(self, cjk_path: Path, fallbacks: Iterable[Path] = ()) -> None:
        self.path = cjk_path
        self.is_collection = _is_ttc(cjk_path)
        self._lock = threading.RLock()
        self._region_face = self._read_regions()
        self._faces: dict[tuple[Path, int], FontFace] = {}
        self._fallback_paths = tuple(dict.fromkeys(p for p in fallbacks if p != cjk_path))
        self._chains: dict[tuple[str, str], tuple[FontFace, ...]] = {}
        # (character, script, region) -> face: single characters, looked up for every glyph of every label.
        self._char_faces: dict[tuple[str, str, str], FontFace | None] = {}

    def _read_regions(self) -> dict[str, tuple[int, str]]:
        """Map region code -> (face index, family) for a CJK collection; single fonts get the default only."""
        blob = hb.Blob.from_file_path(str(self.path))
        count = hb.Face(blob).count if self.is_collection else 1
        regions: dict[str, tuple[int, str]] = {}
        for index in range(count):
            family = str(hb.Face(blob, index).get_name(hb.OTNameIdPredefined.FONT_FAMILY) or self.path.stem)
            words = family.split()
            if "Mono" in words:
                continue  # proportional faces read better on a label
            region = words[-1] if words and words[-1] in _REGION_COUNTRIES else _DEFAULT_REGION
            regions.setdefault(region, (index, family))
        if not regions:
            raise RenderError(f"no usable face in label font {self.path.name}")
        return regions

    def _face(self, path: Path, index: int = 0, family: str | None = None) -> FontFace:
        key = (path, index)
        face = self._faces.get(key)
        if face is None:
            with self._lock:
                face = self._faces.get(key)
                if face is None:
                    try:
                        face = FontFace(path, index, family or _family(path, index))
                    except Exception as exc:  # HarfBuzz raises plain exceptions for unreadable files
                        raise RenderError(f"can't load label font {path.name}: {type(exc).__name__}") from exc
                    self._faces[key] = face
        return face

    def face_for(self, country_code: str | None) -> FontFace:
        """The CJK face whose glyph forms suit the destination country (Japanese where none is specific)."""
        index, family = self._region_face.get(_region(country_code)) or next(iter(self._region_face.values()))
        return self._face(self.path, index, family)

    def faces(self) -> list[FontFace]:
        """Every regional CJK face, loading those not loaded yet."""
        countries = [countries[0] for countries in _REGION_COUNTRIES.values()]
        return list({id(f): f for f in (self.face_for(c) for c in countries)}.values())

    def chain(self, script: str, country_code: str | None) -> tuple[FontFace, ...]:
        """The faces tried, in order, for a run of ``script`` on a label to ``country_code``."""
        key = (script, _region(country_code))
        found = self._chains.get(key)
        if found is None:
            own = [] if script in CJK_SCRIPTS else [self._face(p) for p in script_font_files(script)]
            found = (*own, self.face_for(country_code), *(self._face(p) for p in self._fallback_paths))
            self._chains[key] = found
        return found

    def face_of(self, char: str, script: str, country_code: str | None) -> FontFace | None:
        """The first face of the script's chain that draws ``char``; ``None`` if no installed face does."""
        key = (char, script, _region(country_code))
        try:
            return self._char_faces[key]
        except KeyError:
            found = next((f for f in self.chain(script, country_code) if f.has(char)), None)
            self._char_faces[key] = found
            return found

    def _drawn(self, char: str, country_code: str | None) -> bool:
        return self.face_of(char, script_of(char), country_code) is not None

    def check_coverage(self, text: str, country_code: str | None, *, what: str) -> None:
        """Raise :class:`FontCoverageError` unless some installed face draws every character of ``text``.

        The message names the field, the scripts and the code points (not the text): enough to act on, no PII.
        """
        missing = [
            c
            for c in dict.fromkeys(text)
            if not is_ignorable(c) and self.face_of(c, script_of(c), country_code) is None
        ]
        if missing:
            scripts = ", ".join(dict.fromkeys(script_name(script_of(c)) for c in missing))
            points = ", ".join(f"U+{ord(c):04X}" for c in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise FontCoverageError(f"no installed font draws the {scripts} script ({points}{more}) in {what}")


@functools.lru_cache(maxsize=512)
def _region(country_code: str | None) -> str:
    code = (country_code or "").upper()
    return next((r for r, countries in _REGION_COUNTRIES.items() if code in countries), _DEFAULT_REGION)


def _family(path: Path, index: int) -> str:
    face = hb.Face(hb.Blob.from_file_path(str(path)), index)
    return str(face.get_name(hb.OTNameIdPredefined.FONT_FAMILY) or path.stem)


def _is_ttc(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"ttcf"


@functools.cache
def installed_fonts() -> dict[str, Path]:
    """Every font file under :data:`FONT_ROOTS` by file name (the first found wins), read once per process."""
    found: dict[str, Path] = {}
    for root in FONT_ROOTS:
        for dirpath, _dirs, files in sorted(os.walk(root)):
            for name in sorted(files):
                if name.lower().endswith((".ttf", ".otf", ".ttc")):
                    found.setdefault(name, Path(dirpath) / name)
    return found


@functools.cache
def script_font_files(script: str) -> tuple[Path, ...]:
    """The installed Noto faces for a script, by Noto's naming (``NotoSans<Script>[UI]-Regular.ttf``)."""
    name = "".join(
        part.capitalize() if part.islower() else part for part in script_name(script).replace("_", " ").split()
    )
    candidates = (
        f"NotoSans{name}-Regular.ttf",
        f"NotoSans{name}UI-Regular.ttf",
        f"NotoSerif{name}-Regular.ttf",
        f"Noto{name}-Regular.ttf",
    )
    fonts = installed_fonts()
    return tuple(fonts[c] for c in candidates if c in fonts)


def find_font_file() -> Path:
    """The best installed CJK label font; :class:`RenderError` naming the packages to install when none is."""
    for candidate, _package in FONT_CANDIDATES:
        if os.path.isfile(candidate):
            return Path(candidate)
    fonts = installed_fonts()
    for candidate, _package in FONT_CANDIDATES:
        if Path(candidate).name in fonts:
            return fonts[Path(candidate).name]
    packages = " or ".join(package for _, package in FONT_CANDIDATES)
    raise RenderError(f"no label font covering CJK is installed (install {packages})")


def find_fallback_files() -> tuple[Path, ...]:
    """The installed fallback faces, in the order they are tried."""
    fonts = installed_fonts()
    return tuple(fonts[name] for name, _ in FALLBACK_FILES if name in fonts)


@functools.cache
def _load(path: Path, fallbacks: tuple[Path, ...]) -> LabelFont:
    try:
        return LabelFont(path, fallbacks)
    except OSError as exc:
        raise RenderError(f"can't load label font {path.name}: {type(exc).__name__}") from exc


def load_font(path: str | os.PathLike[str] | None = None) -> LabelFont:
    """The label fonts with the CJK font at ``path`` (default: :func:`find_font_file`), loaded once per process."""
    return _load(Path(path).resolve() if path is not None else find_font_file(), find_fallback_files())


def warm_up(path: str | os.PathLike[str] | None = None, *, preload: Iterable[str] = "") -> LabelFont:
    """Pay the fonts' loading cost now (at worker start), not on the first label request.

    Loads every regional CJK face and the faces of the scripts most labels carry, and converts the glyphs
    of printable ASCII plus ``preload``.
    """
    font = load_font(path)
    common = "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(preload)
    for face in font.faces():
        for char in common:
            gid = face.gid(char)
            if gid is not None:
                face.glyph(gid)
    for script in ("Arab", "Hebr", "Thai", "Deva"):
        font.chain(script, None)
    return font
