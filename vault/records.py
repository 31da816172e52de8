"""Plain values that cross the vault's boundary: the sealed label record, the non-PII order facts, and the
names of printer fonts a client's label profile may ask for (the renderers read them too).

A connector produces both (docs/architecture.md, "Minimise at the boundary"); the vault seals the first and stores the
second in clear. Every PII field is ``repr=False`` so a traceback or a log line can't print an address.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

#: A lone UTF-16 surrogate (half of a pair): no UTF-8 encoding exists, so such text can't be sealed.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Line-breaking and tabulating controls: they separate words, so each run becomes one space.
_BREAKS = re.compile("[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]+")
#: Every other C0 and C1 control character and DEL: invisible on a label, and unsafe in a label language.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")


def repair_text(value: str) -> str:
    """Text a marketplace served, made fit to seal and print: the one repair every connector applies.

    A lone surrogate (a truncated emoji, say) becomes U+FFFD, the replacement character, so the seller sees
    where a character was lost; a run of line or tab controls becomes one space; other control characters
    are removed. Anything else is left as served. Without this, one order with such a name would fail every
    sync of its account (its record can't be encoded) and none of the account's orders would be stored.
    """
    if value.isprintable():  # the common case: no controls, no surrogates
        return value
    return _CONTROLS.sub("", _BREAKS.sub(" ", _SURROGATE.sub("\ufffd", value)))


#: :attr:`OrderFacts.label_withheld`: the platform redacted the buyer fields the app is not approved for.
WITHHELD_REDACTED = "redacted"
#: :attr:`OrderFacts.label_withheld`: the platform ships the order itself; the seller never gets the address.
WITHHELD_PLATFORM_SHIPPED = "platform-shipped"
LABEL_WITHHELD = frozenset({WITHHELD_REDACTED, WITHHELD_PLATFORM_SHIPPED})

#: Version of the label record's field set. Bound into each record's AAD; bump it when fields change.
LABEL_SCHEMA_VERSION = 1


class OrderStatus(enum.StrEnum):
    """A marketplace order's fulfilment status, normalised across marketplaces."""

    PENDING = "pending"
    UNSHIPPED = "unshipped"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    UNFULFILLABLE = "unfulfillable"

    @property
    def labels_allowed(self) -> bool:
        """Whether a shipping label may still be issued for an order in this state."""
        return self in (OrderStatus.UNSHIPPED, OrderStatus.PARTIALLY_SHIPPED)


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """The buyer's ship-to data for one order: the only PII labelvault keeps, and only sealed."""

    name: str = field(repr=False)
    address_line1: str = field(repr=False)
    city: str = field(repr=False)
    country_code: str
    postal_code: str | None = field(default=None, repr=False)
    state_or_region: str | None = field(default=None, repr=False)
    address_line2: str | None = field(default=None, repr=False)
    address_line3: str | None = field(default=None, repr=False)
    district_or_county: str | None = field(default=None, repr=False)
    municipality: str | None = field(default=None, repr=False)
    company: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    address_type: str | None = None

    def to_bytes(self) -> bytes:
        """Canonical, compact encoding (the plaintext that gets sealed); empty fields are left out."""
        present = {k: v for k, v in self.as_dict().items() if v is not None}
        return json.dumps(present, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LabelRecord:
        """Inverse of :meth:`to_bytes`."""
        return cls(**json.loads(data))

    @classmethod
    @functools.cache
    def field_names(cls) -> tuple[str, ...]:
        """Names of every field, in declaration order."""
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """All fields as a dict, ``None`` included (callers decide what to release)."""
        return {name: getattr(self, name) for name in self.field_names()}  # flat strings: no deep copy needed


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """Non-PII metadata of one marketplace order, stored in clear."""

    marketplace: str
    external_order_id: str
    status: OrderStatus
    purchased_at: datetime
    last_updated_at: datetime
    marketplace_id: str | None = None
    fulfillment_channel: str | None = None
    ship_by: datetime | None = None
    latest_delivery_at: datetime | None = None
    delivered_at: datetime | None = None
    #: The connector had to repair the label's text (:func:`repair_text`): the seller should check it.
    text_repaired: bool = False
    #: Why a live order comes without a label record: :data:`WITHHELD_REDACTED` (the platform withheld the
    #: protected buyer fields: stored as no address, never as an empty one) or :data:`WITHHELD_PLATFORM_SHIPPED`
    #: (the platform ships it and never gives the seller the address). ``None``: nothing withheld.
    label_withheld: str | None = None


# A font stored on a Zebra printer, as ^A@ names it (drive:NAME.TTF), or a one-character ^CW alias.
_PRINTER_FONT_NAME = re.compile(r"[REBA]:[A-Z0-9_-]{1,16}\.(TTF|TTE|FNT)", re.IGNORECASE)
_PRINTER_FONT_ALIAS = re.compile(r"[A-Z0-9]")


def valid_printer_font(name: str) -> bool:
    """Whether ``name`` is a stored printer font (``E:ANMDJ.TTF``) or a one-character ``^CW`` alias."""
    return bool(_PRINTER_FONT_NAME.fullmatch(name) or _PRINTER_FONT_ALIAS.fullmatch(name))


@dataclass(frozen=True, slots=True)
class ShipFrom:
    """Where the parcel leaves from: the seller's warehouse, configured with the carrier account
    (vault/carrier_accounts.py) and sent to the carrier with each quote.

    Not buyer data (it is the seller's business address and is printed on every label), but kept out of
    ``repr`` all the same: a sole trader's warehouse is their home.
    """

    name: str = field(repr=False)
    street1: str = field(repr=False)
    city: str = field(repr=False)
    postal_code: str = field(repr=False)
    country_code: str
    state: str | None = field(default=None, repr=False)
    street2: str | None = field(default=None, repr=False)
    company: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)
