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

Positions are in 1/1000 em, the unit of the cached outlines. Nothing here is cached across calls: lines are
buyer text, and shaping a line costs microseconds.
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


@functools.lru_cache(maxsize=16384)
def _bidi_class(char: str) -> str:
    return unicodedata.bidirectional(char)


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


def shape_line(text: str, font: LabelFont, country_code: str | None, *, what: str) -> ShapedLine:
    """``text`` as glyphs to draw left to right (see the module docstring)."""
    runs = itemise(text, font, country_code, what=what)
    glyphs: list[PlacedGlyph] = []
    pen = 0.0
    for index in visual_order([run.level for run in runs]):
        run = runs[index]
        infos, positions = shape_run(run)
        scale = run.face.scale
        # The text a cluster stands for goes with its first glyph drawn; cluster values are code point
        # indices into the run, so a cluster's text runs to the next larger cluster value.
        starts = sorted({info.cluster for info in infos})
        ends = dict(zip(starts, [*starts[1:], len(run.text)], strict=True))
        seen: set[int] = set()
        for info, position in zip(infos, positions, strict=True):
            cluster = info.cluster
            # Ignorable characters (ZWJ, a ZWSP) steer shaping but stand for nothing in extracted text.
            text_part = "" if cluster in seen else _visible(run.text[cluster : ends[cluster]])
            seen.add(cluster)
            glyphs.append(
                PlacedGlyph(
                    run.face,
                    info.codepoint,
                    pen + position.x_offset * scale,
                    position.y_offset * scale,
                    text_part,
                    run.face.glyph(info.codepoint).advance,
                )
            )
            pen += position.x_advance * scale
    return ShapedLine(tuple(glyphs), pen)


def char_advance(font: LabelFont, char: str, country_code: str | None) -> float:
    """A character's nominal advance in 1/1000 em in the face that would draw it, for wrapping text into
    lines before they are shaped (0 for a character no face draws: shaping the line reports it)."""
    if is_ignorable(char):
        return 0.0
    face = font.face_of(char, script_of(char), country_code)
    return 0.0 if face is None else face.char_advance(char)


def _visible(text: str) -> str:
    return "".join(c for c in text if not is_ignorable(c))
