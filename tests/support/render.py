"""Sample label documents for the renderer tests: the sample buyers with a fixed order, time and return address."""

from __future__ import annotations

from datetime import UTC, datetime

from render.interfaces import LabelDocument, ReturnAddress
from tests.support.buyers import SEATTLE
from vault.records import LabelRecord

PRINTED_AT = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
ORDER_REF = "503-1234567-7654321"

RETURN_ADDRESS = ReturnAddress(
    name="Shenzhen Bright Trading Co.",
    lines=("Bldg 5, 88 Keji Rd", "Nanshan, Shenzhen 518057"),
    country_code="CN",
)


def document(ship_to: LabelRecord = SEATTLE, *, order_ref: str = ORDER_REF, **changes: object) -> LabelDocument:
    """A label document for ``ship_to`` with the sample order, time and return address."""
    values: dict[str, object] = {
        "order_ref": order_ref,
        "marketplace": "amazon",
        "ship_to": ship_to,
        "printed_at": PRINTED_AT,
        "return_address": RETURN_ADDRESS,
    }
    values.update(changes)
    return LabelDocument(**values)  # type: ignore[arg-type]
