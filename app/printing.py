"""What gets printed for a release: the label document (ship-to plus the seller's return address) and its
renderer, in one place for every way a label is printed or shown.

The label API (one order, a batch), the dashboard's print run and its label preview all build their
documents here, so the preview is the document the API would print: same renderer, same return address,
same profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from render import LabelDocument, LabelRenderer, RenderError, ReturnAddress, make_renderer
from vault.clients import LabelProfile
from vault.errors import LabelNotRendered
from vault.release import PreparedLabel, PreviewedLabel, ReleasedLabel


def return_address(stored: dict[str, Any] | None) -> ReturnAddress | None:
    """The tenant's stored return address (``Tenant.return_address``) as the renderers print it."""
    if stored is None:
        return None
    return ReturnAddress(stored["name"], tuple(stored["lines"]), stored["country_code"])


def label_document(
    label: PreparedLabel | ReleasedLabel | PreviewedLabel, sender: dict[str, Any] | None, now: datetime
) -> LabelDocument:
    """What gets printed for one label: the ship-to block (already cut to the profile) and the return address."""
    return LabelDocument(
        order_ref=label.order_id,
        marketplace=label.marketplace,
        ship_to=label.label,
        printed_at=now,
        return_address=return_address(sender),
    )


def renderer_for(fmt: str, profile: LabelProfile, options: dict[str, Any] | None = None) -> LabelRenderer:
    """The renderer of a format and options plus the profile's own: for ZPL, its printers' font."""
    options = dict(options or {})
    if fmt == "zpl" and profile.printer_font is not None:
        options["printer_font"] = profile.printer_font
    try:
        return make_renderer(fmt, **options)
    except RenderError as exc:  # e.g. no installed font covers the labels' scripts
        raise LabelNotRendered() from exc


def render(renderer: LabelRenderer, documents: Sequence[LabelDocument]) -> bytes:
    """The documents rendered; a render failure becomes the label API's problem (nothing is released)."""
    try:
        return renderer.render(documents)
    except RenderError as exc:
        raise LabelNotRendered() from exc
