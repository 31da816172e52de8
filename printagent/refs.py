"""Order references as a packing station produces them: typed, scanned from a marketplace's packing slip, or
scanned from the Code 128 barcode of a label labelvault printed.

A label's barcode carries the marketplace order id alone (render/zpl.py encodes ``order_ref``), so a bare id
is read as an order of the station's default marketplace; ``amazon:503-...`` (or ``amazon/503-...``) names
the marketplace explicitly. What a reference may look like is the label API's own rule
(app/api/request_checks.py), so a scan the vault would refuse as malformed is refused here, before any
request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MARKETPLACE = re.compile(r"[a-z][a-z0-9-]{0,39}")
_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class BadReference(ValueError):
    """A scan that is not an order reference; the message never repeats the scanned text."""


@dataclass(frozen=True, slots=True, order=True)
class OrderRef:
    """One order: the marketplace's short name (``amazon``) and its order id."""

    marketplace: str
    order_id: str

    def __str__(self) -> str:
        return f"{self.marketplace}:{self.order_id}"

    @property
    def path(self) -> str:
        """The label API's path of this order (both parts are URL-safe by construction)."""
        return f"/v1/labels/{self.marketplace}/{self.order_id}"


def parse_ref(scan: str, default_marketplace: str) -> OrderRef:
    """A scanned or typed line as an order reference; surrounding whitespace (a scanner's CR) is dropped."""
    text = scan.strip()
    marketplace, sep, order_id = text.replace("/", ":", 1).partition(":")
    if not sep:
        marketplace, order_id = default_marketplace, text
    if not text:
        raise BadReference("empty scan")
    if not _MARKETPLACE.fullmatch(marketplace):
        raise BadReference("not an order reference: the marketplace must be a short lowercase name like amazon")
    if not _ORDER_ID.fullmatch(order_id):
        raise BadReference(
            "not an order reference: expected an order id (letters, digits, '.', '_', '-') or marketplace:order-id"
        )
    return OrderRef(marketplace, order_id)
