"""The fields the carriers' JSON APIs have in common, read and written once for every client.

Reading: a string the answer must have (:func:`required_str`, a :class:`CarrierBadResponse` naming the field,
never its value) and a timestamp it may have (:func:`timestamp`, ISO 8601 with ``Z`` or an offset; a bad one
is no timestamp rather than a failed purchase). Writing: the sender's address in the ``street1``/``zip``
shape Shippo and EasyPost share (:func:`street_address`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.carriers.interfaces import CarrierBadResponse, ShipFrom

__all__ = ["required_str", "street_address", "timestamp"]


def required_str(raw: dict[str, Any], key: str) -> str:
    """``raw[key]``, a non-empty string, or :class:`CarrierBadResponse`."""
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise CarrierBadResponse(f"the carrier's answer lacks {key}")
    return value


def timestamp(value: object) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (UTC when it has no offset); ``None`` when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def street_address(origin: ShipFrom) -> dict[str, Any]:
    """The sender as Shippo's and EasyPost's address objects take it, empty fields left out."""
    out = {
        "name": origin.name,
        "company": origin.company,
        "street1": origin.street1,
        "street2": origin.street2,
        "city": origin.city,
        "state": origin.state,
        "zip": origin.postal_code,
        "country": origin.country_code,
        "phone": origin.phone,
        "email": origin.email,
    }
    return {k: v for k, v in out.items() if v}
