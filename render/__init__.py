"""Label renderers: released label documents in, printer-ready bytes out (JSON, ZPL, PDF, PNG).

Pure library code, outside ``app/`` so that importing it never imports flask (nor SQLAlchemy): it depends
only on the vault's plain values (``vault.records``). The label API, batch endpoints and workers pick a
renderer with :func:`make_renderer` and call ``render(documents)``. Call :func:`warm_up` at worker start so
the first PDF or rasterised ZPL label doesn't pay for loading the CJK font.
"""

from __future__ import annotations

from typing import Any

from render.interfaces import (
    FontCoverageError,
    LabelDocument,
    LabelRenderer,
    RenderError,
    ReturnAddress,
)

#: The formats :func:`make_renderer` knows, by the name clients ask for.
FORMATS = ("json", "zpl", "pdf", "png")
#: Label sizes every printed format (ZPL, PDF, PNG) offers.
SIZES = ("4x6", "100x150mm", "100x100mm")

__all__ = [
    "FORMATS",
    "SIZES",
    "FontCoverageError",
    "LabelDocument",
    "LabelRenderer",
    "RenderError",
    "ReturnAddress",
    "make_renderer",
    "warm_up",
]


def make_renderer(fmt: str, **options: Any) -> LabelRenderer:
    """A renderer for ``fmt`` with its options; :class:`ValueError` for an unknown format or option.

    - ``"json"``: no options.
    - ``"zpl"``: ``dpi`` (203 or 300, default 203), ``size`` (one of :data:`SIZES`, default "4x6"),
      ``printer_font`` (a font stored on the printer, e.g. ``"E:ANMDJ.TTF"``, or a one-character ``^CW``
      alias; default: resident font + rasterised graphics for scripts it lacks), ``font`` (font file used
      for rasterising; default: the discovered label font).
    - ``"pdf"``: ``size`` (one of :data:`SIZES`, default "4x6"), ``font`` (font file; default discovered).
    - ``"png"``: one label as a 1-bit image; ``dpi`` (203 or 300, default 203), ``size``, ``font`` as for PDF.
    """
    # Imported here so that asking for JSON never imports Pillow or fontTools.
    if fmt == "json":
        from render.jsonlabel import JsonRenderer

        _reject_unknown(fmt, options, set())
        return JsonRenderer()
    if fmt == "zpl":
        from render.zpl import ZplRenderer

        _reject_unknown(fmt, options, {"dpi", "size", "printer_font", "font"})
        return ZplRenderer(**options)
    if fmt == "pdf":
        from render.pdf import PdfRenderer

        _reject_unknown(fmt, options, {"size", "font"})
        return PdfRenderer(**options)
    if fmt == "png":
        from render.png import PngRenderer

        _reject_unknown(fmt, options, {"dpi", "size", "font"})
        return PngRenderer(**options)
    raise ValueError(f"unknown label format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _reject_unknown(fmt: str, options: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) for {fmt} labels: {', '.join(unknown)}")


def warm_up(font: str | None = None) -> None:
    """Load the label font once for this process (~0.4 s), so no label request pays for it."""
    from render import fonts

    fonts.warm_up(font)
