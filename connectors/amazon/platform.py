"""Amazon as a registered platform (connectors.registry): Selling Partner API, Orders v2026-01-01 or v0."""

from __future__ import annotations

import re

from connectors.amazon import connector_for_account
from connectors.amazon.fulfillment import confirm_shipment
from connectors.amazon.mapping import MARKETPLACE, STATUS_V0, STATUS_V2026
from connectors.amazon.marketplaces import label
from connectors.platform import CredentialField, Platform
from vault.models import MarketplaceAccount


def _markets(account: MarketplaceAccount) -> str:
    return ", ".join(label(m) for m in account.marketplace_ids)


PLATFORM = Platform(
    code=MARKETPLACE,
    name="Amazon",
    connector=connector_for_account,
    credentials=(
        CredentialField("client_id", "LWA client ID", "LABELVAULT_AMAZON_CLIENT_ID"),
        CredentialField("client_secret", "LWA client secret", "LABELVAULT_AMAZON_CLIENT_SECRET"),
        CredentialField("refresh_token", "LWA refresh token", "LABELVAULT_AMAZON_REFRESH_TOKEN"),
    ),
    statuses={**STATUS_V2026, **STATUS_V0},
    # Amazon's order ids read 3-7-7 digits ("503-1234567-1234567"); its sandbox cases and older tools use
    # other letters-digits-dashes ids, which the label API must still find.
    order_id=re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}"),
    order_id_example="503-1234567-1234567",
    rate_limits="a token bucket per operation and selling partner (SP-API usage plans: searchOrders 0.0056/s, "
    "burst 20); 429 answers are retried after the bucket refills",
    # Amazon's Data Protection Policy: PII kept no longer than 30 days after the order's delivery.
    days_after_delivery=30,
    markets=_markets,
    # confirmShipment (Orders v0) with the tracking (connectors/amazon/fulfillment.py).
    confirm_shipment=confirm_shipment,
)
