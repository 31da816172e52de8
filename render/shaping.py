"""One line of label text as positioned glyphs: bidi levels, script runs, a face per run, HarfBuzz shaping.

Drawing glyphs by code point prints Arabic unjoined and backwards, Hebrew backwards, and Thai or Devanagari
with their vowel marks in the wrong place. So every renderer draws what :func:`shape_line` returns:

1. the Unicode bidi algorithm (python-bidi's implementation of rules P2-I2, paragraph level from the text)
   gives each character an embedding level: Arabic and Hebrew odd (right to left), digits and Latin inside
   them even;
2. the line is itemised into runs of one level, one script (Common and Inherited characters such as spaces,
   digits and combining marks join the run around them) and one face (:meth:`LabelFont.face_of`);
3. HarfBuzz shapes each run with its direction and script (joining, ligatures, mark positioning);
4. the runs are put in visual order (rule L2: reverse every sequence at each odd-or-higher level), and the
   glyphs placed left to right.

Positions are in 1/1000 em, the unit of the cached outlines.

The hot path (a 500-label batch shapes thousands of lines) takes three shortcuts. Their gains, measured
with ``python -m bench.render --renderers-only`` (CPU ms for the bench's first 100 labels: half Japanese,
a quarter Seattle, a quarter Arabic, Hebrew, Thai or Hindi; medians of three runs, each the best of five,
on a shared 2-core machine under load, where identical code varies by ±25 %):

- a line that is all one script, with no right-to-left or explicit bidi character, and drawn by one face
  (a Latin or an all-kanji street, a postcode: 2,040 of the bench's 2,450 address lines) is the one
  left-to-right run :func:`single_run` finds in one pass: no bidi resolution, no run splitting, no run
  rebuilt per character; the result is exactly what itemising gives. PDF one label alone 2.8 -> 1.8 ms;
  a 100-label PDF and ZPL within the noise (ZPL's time goes to rasterising).
- lines that aren't buyer data (captions, the seller's return address, country names, the print time) are
  shaped once per process (:func:`shape_public`, an LRU of :data:`PUBLIC_LINES` lines). Buyer text is never
  kept across calls: a renderer keeps a buyer's line only for the render call that shaped it. PDF one label
  alone 1.8 -> 1.35 ms, 100 labels 151 -> 127 ms.
- the PDF wraps a line by its shaped width (it shapes the line anyway, and that is the width printed) and
  breaks by nominal advances only a line that doesn't fit. PDF 100 labels 127 -> 114 ms.

Together: one PDF label 2.8 -> 1.4 ms CPU, 100 PDF labels 153 -> 114 ms.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

import uharfbuzz as hb
from bidi import algorithm as uba

from render.fonts import FontFace, LabelFont, is_ignorable, script_name, script_of
from render.interfaces import FontCoverageError

#: HarfBuzz drops default-ignorable characters (ZWJ, variation selectors) after they have steered shaping.
_BUFFER_FLAGS = hb.BufferFlags.REMOVE_DEFAULT_IGNORABLES
_NEUTRAL_SCRIPTS = ("Zyyy", "Zinh", "Zzzz")
#: Bidi classes that make a line anything but plain left-to-right (strong RTL, Arabic digits, explicit
#: embeddings, overrides and isolates).
_RTL_CLASSES = frozenset({"R", "AL", "AN", "RLE", "RLO", "RLI", "LRE", "LRO", "LRI", "FSI", "PDF", "PDI"})


#: Lines :func:`shape_public` keeps for the process.
PUBLIC_LINES = 2048


@functools.lru_cache(maxsize=16384)
def _bidi_class(char: str) -> str:
    return unicodedata.bidirectional(char)


@functools.lru_cache(maxsize=16384)
def _ltr_script(char: str) -> str | None:
    """The character's script if it can sit in a plain left-to-right line, ``None`` if its bidi class makes
    the line need the bidi algorithm (one cached lookup for both, on the hot path)."""
    return None if _bidi_class(char) in _RTL_CLASSES else script_of(char)


@dataclass(frozen=True, slots=True)
class PlacedGlyph:
    """One glyph to draw: its face and glyph id, its origin (x along the line, y above the baseline) and
    its own advance width in 1/1000 em, and the text it stands for ("" for the further glyphs of a cluster)."""

    face: FontFace
    gid: int
    x: float
    y: float
    text: str
    advance: float


@dataclass(frozen=True, slots=True)
class Run:
    """A maximal stretch of one bidi level, script and face, in logical order."""

    text: str
    level: int
    script: str
    face: FontFace

    @property
    def direction(self) -> str:
        return "rtl" if self.level % 2 else "ltr"


@dataclass(frozen=True, slots=True)
class ShapedLine:
    """A line's glyphs in visual order (left to right) and its total advance, in 1/1000 em."""

    glyphs: tuple[PlacedGlyph, ...]
    advance: float

    def width(self, size: float) -> float:
        """The line's width at ``size`` points (or pixels)."""
        return self.advance * size / 1000


def bidi_levels(text: str) -> list[int]:
    """Each character's resolved embedding level (UAX #9 up to rule I2, then L1 for trailing whitespace)."""
    if not any(_bidi_class(c) in _RTL_CLASSES for c in text):
        return [0] * len(text)  # nothing right-to-left: the paragraph and every character are level 0
    storage: dict[str, Any] = uba.get_empty_storage()
    base = uba.get_base_level(text)
    storage["base_level"] = base
    storage["base_dir"] = ("L", "R")[base]
    uba.get_embedding_levels(text, storage)
    for index, entry in enumerate(storage["chars"]):
        entry["index"] = index  # rule X9 removes embedding controls: keep each survivor's position
    uba.explicit_embed_and_overrides(storage)
    uba.resolve_weak_types(storage, False)
    uba.resolve_neutral_types(storage, False)
    uba.resolve_implicit_levels(storage, False)
    levels = [base] * len(text)
    for entry in storage["chars"]:
        levels[entry["index"]] = entry["level"]
    # L1: whitespace at the end of the line takes the paragraph level.
    for index in range(len(text) - 1, -1, -1):
        if unicodedata.bidirectional(text[index]) in ("WS", "BN", "S", "B"):
            levels[index] = base
        else:
            break
    return levels


def resolved_scripts(text: str) -> list[str]:
    """Each character's script, Common and Inherited ones taking the script of the run they sit in."""
    scripts = [script_of(c) for c in text]
    last = None
    for index, script in enumerate(scripts):
        if script in _NEUTRAL_SCRIPTS:
            if last is not None:
                scripts[index] = last
        else:
            last = script
    # Neutrals before the first real script take the script that follows them.
    first = next((s for s in scripts if s not in _NEUTRAL_SCRIPTS), "Zyyy")
    return [first if s in _NEUTRAL_SCRIPTS else s for s in scripts]


def itemise(text: str, font: LabelFont, country_code: str | None, *, what: str) -> list[Run]:
    """The line's runs in logical order; :class:`FontCoverageError` for a character no installed face draws."""
    levels = bidi_levels(text)
    scripts = resolved_scripts(text)
    runs: list[Run] = []
    current: FontFace | None = None
    for char, level, script in zip(text, levels, scripts, strict=True):
        if is_ignorable(char) and current is not None:
            face = current
        elif current is not None and script_of(char) in _NEUTRAL_SCRIPTS and current.has(char):
            face = current  # a space, digit or mark stays in the face it follows: no needless font switch
        else:
            found = font.face_of(char, script, country_code)
            if found is None:
                name = script_name(script_of(char))
                raise FontCoverageError(f"no installed font draws the {name} script (U+{ord(char):04X}) in {what}")
            face = found
        if runs and runs[-1].level == level and runs[-1].script == script and runs[-1].face is face:
            last = runs[-1]
            runs[-1] = Run(last.text + char, level, script, face)
        else:
            runs.append(Run(char, level, script, face))
        current = face
    return runs


def visual_order(levels: list[int]) -> list[int]:
    """Rule L2: the indices of items with these levels in display order (left to right)."""
    order = list(range(len(levels)))
    if not levels:
        return order
    lowest_odd = min(level for level in levels if level % 2) if any(lv % 2 for lv in levels) else None
    if lowest_odd is None:
        return order
    for level in range(max(levels), lowest_odd - 1, -1):
        index = 0
        while index < len(order):
            if levels[order[index]] >= level:
                end = index
                while end < len(order) and levels[order[end]] >= level:
                    end += 1
                order[index:end] = order[index:end][::-1]
                index = end
            else:
                index += 1
    return order


def shape_run(run: Run) -> tuple[list[Any], list[Any]]:
    """HarfBuzz's glyph infos and positions for one run (in the face's font units), in visual order."""
    buffer = hb.Buffer()
    buffer.add_str(run.text)
    buffer.direction = run.direction
    buffer.script = run.script
    buffer.flags = _BUFFER_FLAGS
    hb.shape(run.face.hb_font, buffer, {})
    return buffer.glyph_infos, buffer.glyph_positions


def single_run(text: str, font: LabelFont, country_code: str | None) -> Run | None:
    """The line as the one left-to-right run :func:`itemise` would make of it, or ``None`` when it needs
    itemising: a right-to-left or explicit bidi character, a second script, a character in another face
    (or in none: :func:`itemise` reports it)."""
    script = "Zyyy"  # what resolved_scripts gives a line of Common characters only
    for char in text:
        found = _ltr_script(char)
        if found is None:
            return None
        if found not in _NEUTRAL_SCRIPTS:
            if script == "Zyyy":
                script = found
            elif found != script:
                return None
    face = font.face_of(text[0], script, country_code)
    if face is None:
        return None
    # The face itemise would choose for every character: the script's first face drawing it.
    if any(font.face_of(char, script, country_code) is not face for char in text):
        return None
    return Run(text, 0, script, face)


def shape_line(text: str, font: LabelFont, country_code: str | None, *, what: str) -> ShapedLine:
    """``text`` as glyphs to draw left to right (see the module docstring)."""
    single = single_run(text, font, country_code) if text else None
    runs = [single] if single is not None else itemise(text, font, country_code, what=what)
    glyphs: list[PlacedGlyph] = []
    pen = 0.0
    for index in visual_order([run.level for run in runs]):
        run = runs[index]
        infos, positions = shape_run(run)
        face, text_of_run = run.face, run.text
        scale, glyph_of = face.scale, face.glyph
        plain = not any(map(is_ignorable, text_of_run))
        # The text a cluster stands for goes with its first glyph drawn; cluster values are code point
        # indices into the run, so a cluster's text runs to the next larger cluster value.
        starts = sorted({info.cluster for info in infos})
        ends = dict(zip(starts, [*starts[1:], len(text_of_run)], strict=True))
        seen: set[int] = set()
        for info, position in zip(infos, positions, strict=True):
            cluster = info.cluster
            if cluster in seen:
                text_part = ""
            else:
                seen.add(cluster)
                text_part = text_of_run[cluster : ends[cluster]]
                if not plain:
                    # Ignorable characters (ZWJ, a ZWSP) steer shaping but stand for nothing in extracted text.
                    text_part = _visible(text_part)
            gid = info.codepoint
            glyphs.append(
                PlacedGlyph(
                    face, gid, pen + position.x_offset * scale, position.y_offset * scale, text_part,
                    glyph_of(gid).advance,
                )
            )  # fmt: skip
            pen += position.x_advance * scale
    return ShapedLine(tuple(glyphs), pen)


@functools.lru_cache(maxsize=PUBLIC_LINES)
def shape_public(text: str, font: LabelFont, country_code: str | None, *, what: str) -> ShapedLine:
    """:func:`shape_line` for text that is not buyer data (captions, the seller's return address, a country's
    name, the print time), kept for the process: never pass a buyer's value here."""
    return shape_line(text, font, country_code, what=what)


def char_advance(font: LabelFont, char: str, country_code: str | None) -> float:
    """A character's nominal advance in 1/1000 em in the face that would draw it, for wrapping text into
    lines before they are shaped (0 for a character no face draws: shaping the line reports it)."""
    if is_ignorable(char):
        return 0.0
    face = font.face_of(char, script_of(char), country_code)
    return 0.0 if face is None else face.char_advance(char)


def _visible(text: str) -> str:
    return "".join(c for c in text if not is_ignorable(c))
