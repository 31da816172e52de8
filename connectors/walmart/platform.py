"""Walmart Marketplace (US) as a registered platform (connectors.registry): the Orders API v3."""

from __future__ import annotations

import re

from connectors.platform import CredentialField, Platform
from connectors.walmart import connector_for_account
from connectors.walmart.fulfillment import confirm_shipment
from connectors.walmart.mapping import LINE_STATUS, MARKETPLACE
from vault.models import MarketplaceAccount


def _markets(account: MarketplaceAccount) -> str:
    return "Walmart.com (US)"


PLATFORM = Platform(
    code=MARKETPLACE,
    name="Walmart",
    connector=connector_for_account,
    credentials=(
        CredentialField("client_id", "Client ID", "LABELVAULT_WALMART_CLIENT_ID"),
        CredentialField("client_secret", "Client secret", "LABELVAULT_WALMART_CLIENT_SECRET"),
    ),
    # Walmart's order-line statuses; an order with lines in several is combined (mapping.order_status).
    statuses=LINE_STATUS,
    # Purchase order ids are digits ("1796277083022" in Walmart's examples, 13 to 15 in practice).
    order_id=re.compile(r"[0-9]{6,20}"),
    order_id_example="1796277083022",
    rate_limits="a token bucket per API and seller, refilled continuously (All orders: 5000 requests a minute); "
    "429 answers are retried after a backoff",
    # Walmart's seller terms set no shorter period; labelvault keeps label data 30 days after delivery.
    days_after_delivery=30,
    markets=_markets,
    # shippingUpdates (Ship Order Lines) with the tracking (connectors/walmart/fulfillment.py).
    confirm_shipment=confirm_shipment,
)
