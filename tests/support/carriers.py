"""Carrier test data: the seller's ship-from address, parcels, and a Shippo client on a fake Shippo."""

from __future__ import annotations

from typing import Any

from connectors.carriers.interfaces import Parcel
from connectors.carriers.shippo.client import ShippoCarrier, ShippoCredentials, ShippoPolicy
from connectors.fake_shippo import DEFAULT_TOKEN, FakeShippo
from vault.records import ShipFrom

#: The sample seller's warehouse, as a carrier account stores it.
SHIP_FROM_VALUES: dict[str, Any] = {
    "name": "Test Seller Dispatch",
    "company": "Test Seller Ltd",
    "street1": "215 Clayton St.",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94117",
    "country_code": "US",
    "phone": "+1 555 341 9393",
}
SHIP_FROM = ShipFrom(**SHIP_FROM_VALUES)
PARCEL = Parcel(weight_g=850, length_mm=300, width_mm=200, height_mm=120)
#: A quick policy for tests: a short read timeout (a lost purchase costs ``read_timeout``), fast retries.
FAST = ShippoPolicy(attempts=3, base_delay=0.01, max_delay=0.05, connect_timeout=2.0, read_timeout=1.0)


def shippo_client(fake: FakeShippo, policy: ShippoPolicy = FAST) -> ShippoCarrier:
    """A Shippo client with the fake's token, on the fake."""
    return ShippoCarrier(ShippoCredentials(DEFAULT_TOKEN), api_base=fake.base_url, policy=policy)
