"""The label-rendering contract: one released label in, printer-ready bytes out.

Renderers are pure (no HTTP, no database, no flask): the label API, batch endpoints and background
workers call them the same way. Every implementation passes the conformance tests in tests/render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from vault.records import LabelRecord


class RenderError(Exception):
    """A label can't be rendered as asked (no PII in the message)."""


class FontCoverageError(RenderError):
    """The configured font lacks glyphs for some characters of the label (never print boxes instead)."""


@dataclass(frozen=True, slots=True)
class ReturnAddress:
    """The seller's return address (a tenant setting; not buyer PII)."""

    name: str
    lines: tuple[str, ...]
    country_code: str


@dataclass(frozen=True, slots=True)
class LabelDocument:
    """Everything printed on one label. ``ship_to`` holds only the fields the client's profile releases."""

    order_ref: str  # the marketplace order id, printed as text and as a Code 128 barcode
    marketplace: str
    ship_to: LabelRecord = field(repr=False)
    printed_at: datetime
    return_address: ReturnAddress | None = None


@runtime_checkable
class LabelRenderer(Protocol):
    """Turns label documents into one printable payload (one label, or a batch: multi-label stream/pages)."""

    #: The response media type, e.g. "application/json", "application/zpl", "application/pdf", "image/png".
    media_type: str
    #: Whether one payload can hold several labels (a ZPL stream, PDF pages); a PNG image holds one.
    multi_label: bool

    def render(self, documents: Sequence[LabelDocument]) -> bytes:
        """Render the documents, in order, into one payload (one document only unless ``multi_label``).
        Raises :class:`RenderError`."""
        ...
