"""Greedy line wrapping shared by the renderers, whatever measures the text (font metrics or estimates)."""

from __future__ import annotations

from collections.abc import Callable


def wrap_greedy(text: str, max_width: float, advance: Callable[[str], float]) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width``, widths being the sum of ``advance(char)``.

    Breaks at the line's last space where it has one, anywhere in scripts written without spaces (CJK);
    a single character wider than the line still gets a line of its own rather than being lost.
    """
    lines: list[str] = []
    line = ""
    width = 0.0
    for char in text:
        step = advance(char)
        if width + step <= max_width or not line:
            line += char
            width += step
            continue
        cut = line.rfind(" ")
        if cut > 0 and char != " ":
            lines.append(line[:cut])
            line = line[cut + 1 :] + char
        else:
            lines.append(line.rstrip())
            line = "" if char == " " else char
        width = sum(advance(c) for c in line)
    if line.strip():
        lines.append(line.strip())
    return lines
