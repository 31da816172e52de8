"""The fake carrier's label documents: a 4×6 in label in PDF, ZPL II or PNG with the service, the tracking
number (as a Code 128 barcode in ZPL) and the ship-to, so a test can check that the vault handed the
warehouse the carrier's label for the right parcel. Built with the standard library and Pillow only."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw


def zpl_label(*, service: str, tracking: str, lines: Sequence[str], dpi: int = 203) -> bytes:
    """A 4×6 in ZPL II label for a printer of ``dpi`` (203: 812 × 1218 dots; 300: 1200 × 1800), every
    position and size in that printer's dots."""
    if dpi not in (203, 300):
        raise ValueError("ZPL labels are drawn at 203 or 300 dpi")

    def d(dots_at_203: int) -> int:
        return round(dots_at_203 * dpi / 203)

    out = [f"^XA^CI28^PW{4 * dpi}^LL{6 * dpi}", f"^FO{d(40)},{d(40)}^A0N,{d(48)},{d(48)}^FD{_zpl(service)}^FS"]
    out.append(f"^FO{d(40)},{d(130)}^BY{3 if dpi == 203 else 4}^BCN,{d(160)},Y,N,N^FD{_zpl(tracking)}^FS")
    for n, line in enumerate(lines):
        out.append(f"^FO{d(40)},{d(400 + 50 * n)}^A0N,{d(40)},{d(40)}^FD{_zpl(line)}^FS")
    out.append("^XZ")
    return "\n".join(out).encode()


def _zpl(text: str) -> str:
    # ^ and ~ start commands; the fake's labels only need them gone.
    return text.replace("^", " ").replace("~", " ")


def pdf_label(*, service: str, tracking: str, lines: Sequence[str]) -> bytes:
    """A one-page 4×6 in PDF (288 × 432 pt) in Helvetica, text in WinAnsi (other characters become ``?``)."""
    texts = [(24, 400, 18, service), (24, 370, 14, f"TRACKING {tracking}")]
    texts += [(24, 320 - 18 * n, 12, line) for n, line in enumerate(lines)]
    lines_pdf = (f"BT /F1 {size} Tf {x} {y} Td ({_pdf(text)}) Tj ET\n" for x, y, size, text in texts)
    content = "".join(lines_pdf).encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 288 432] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    body = io.BytesIO()
    body.write(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(body.tell())
        body.write(b"%d 0 obj\n" % n + obj + b"\nendobj\n")
    xref = body.tell()
    body.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        body.write(b"%010d 00000 n \n" % offset)
    body.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return body.getvalue()


def _pdf(text: str) -> str:
    safe = text.encode("cp1252", "replace").decode("cp1252")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def png_label(*, service: str, tracking: str, lines: Sequence[str], dpi: int = 203) -> bytes:
    """A 4×6 in PNG at ``dpi`` (203: 812 × 1218 pixels; 300: 1200 × 1800), black on white, in Pillow's
    default font, its resolution recorded in the file."""
    if dpi not in (203, 300):
        raise ValueError("PNG labels are drawn at 203 or 300 dpi")
    scale = dpi / 203
    image = Image.new("1", (4 * dpi, 6 * dpi), 1)
    draw = ImageDraw.Draw(image)
    for n, text in enumerate([service, f"TRACKING {tracking}", "", *lines]):
        draw.text((round(40 * scale), round((40 + 44 * n) * scale)), text, fill=0, font_size=round(32 * scale))
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()
