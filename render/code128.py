"""Code 128 (ISO/IEC 15417) encoding of an order reference, for renderers that draw their own bars (PDF).

Code set B carries printable ASCII; runs of digits switch to code set C (two digits a symbol), which keeps
Amazon's ``123-1234567-1234567`` short enough to scan from a 4-inch label. ZPL printers encode ``^BC``
themselves and don't need this.
"""

from __future__ import annotations

from render.interfaces import RenderError

# Bar/space widths (in modules) of symbol values 0..105; 106 is the stop pattern (with its final bar).
# fmt: off
_PATTERNS = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
)
# fmt: on
_CODE_C, _CODE_B, _START_B, _START_C, _STOP = 99, 100, 104, 105, 106
#: Quiet zone each side, in modules (the standard asks for at least 10).
QUIET_ZONE = 10


def _digit_run(data: str, start: int) -> int:
    end = start
    while end < len(data) and data[end].isascii() and data[end].isdigit():
        end += 1
    return end - start


def encode(data: str) -> list[int]:
    """Symbol values for ``data`` (start code, data, checksum, stop). Printable ASCII only."""
    if not data or any(not 32 <= ord(c) <= 126 for c in data):
        raise RenderError("order reference must be 1+ printable ASCII characters for its Code 128 barcode")
    values: list[int] = []
    index = 0
    leading = _digit_run(data, 0)
    code_c = (leading >= 4 and leading % 2 == 0) or (leading == len(data) and leading % 2 == 0)
    values.append(_START_C if code_c else _START_B)
    while index < len(data):
        run = _digit_run(data, index)
        at_end = index + run == len(data)
        if code_c:
            if run >= 2:
                values.append(int(data[index : index + 2]))
                index += 2
                continue
            values.append(_CODE_B)
            code_c = False
        # Code set C pays off from 6 digits in the middle, 4 at the end; an odd run sends its first digit in B.
        if run >= 6 or (at_end and run >= 4):
            if run % 2:
                values.append(ord(data[index]) - 32)
                index += 1
            values.append(_CODE_C)
            code_c = True
            continue
        values.append(ord(data[index]) - 32)
        index += 1
    checksum = (values[0] + sum(position * value for position, value in enumerate(values[1:], 1))) % 103
    return [*values, checksum, _STOP]


def modules(data: str) -> list[tuple[bool, int]]:
    """The barcode as alternating (is_bar, width in modules) runs, without quiet zones."""
    runs: list[tuple[bool, int]] = []
    for value in encode(data):
        for position, width in enumerate(_PATTERNS[value]):
            runs.append((position % 2 == 0, int(width)))
    return runs


def width_in_modules(data: str) -> int:
    """Total width of the bars and spaces, without quiet zones."""
    return sum(width for _, width in modules(data))
