"""The shipping label the fake TikTok Shop serves behind a document URL: a small, valid one-page PDF.

TikTok's own label carries the recipient's full address (that is why the seller never needs it): so does
this one, so a test can see the recipient's strings reach the warehouse and nowhere else. Text the PDF's
standard font can't encode is written as a UTF-16 hex string: a viewer may not draw it, but the bytes are
there and the file stays valid.
"""

from __future__ import annotations

from collections.abc import Sequence

#: 4 x 6 inches, in points.
WIDTH, HEIGHT = 288, 432


def _pdf_string(text: str) -> bytes:
    try:
        latin = text.encode("latin-1")
    except UnicodeEncodeError:
        return b"<FEFF" + text.encode("utf-16-be", "surrogatepass").hex().upper().encode() + b">"
    escaped = latin.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def shipping_label_pdf(lines: Sequence[str]) -> bytes:
    """A one-page 4x6 PDF with ``lines`` top to bottom (the first one larger)."""
    ops = [b"BT", b"/F1 14 Tf", b"18 400 Td"]
    for i, line in enumerate(lines):
        if i == 1:
            ops.append(b"/F1 10 Tf")
        ops.append(_pdf_string(line) + b" Tj")
        ops.append(b"0 -16 Td")
    ops.append(b"ET")
    content = b"\n".join(ops)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
        % (WIDTH, HEIGHT),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
