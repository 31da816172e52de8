"""Shopify as a registered platform (connectors.registry): Admin GraphQL API 2026-07."""

from __future__ import annotations

import re

from connectors.platform import CredentialField, Platform
from connectors.shopify import connector_for_account
from connectors.shopify.fulfillment import confirm_shipment
from connectors.shopify.mapping import MARKETPLACE, STATUSES

PLATFORM = Platform(
    code=MARKETPLACE,
    name="Shopify",
    connector=connector_for_account,
    credentials=(CredentialField("access_token", "Admin API access token", "LABELVAULT_SHOPIFY_TOKEN"),),
    statuses=STATUSES,
    # The order's numeric id (legacyResourceId: the admin's /orders/<id>, the privacy webhooks' ids).
    order_id=re.compile(r"[1-9][0-9]{0,19}"),
    order_id_example="5123456789012",
    rate_limits="a leaky bucket of query-cost points per app and shop (standard plans: 2,000 points, restored "
    "at 100/s; Plus 1,000/s); queries wait until the bucket covers their requested cost, THROTTLED is retried",
    # Shopify's protected-customer-data terms ask for a retention period, not a number; labelvault's default.
    days_after_delivery=30,
    # fulfillmentCreate on the order's open fulfillment orders (connectors/shopify/fulfillment.py).
    confirm_shipment=confirm_shipment,
)
