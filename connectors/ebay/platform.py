"""eBay as a registered platform (connectors.registry): Sell Fulfillment API v1, OAuth consent."""

from __future__ import annotations

import re

from connectors.ebay import connector_for_account
from connectors.ebay.fulfillment import confirm_shipment
from connectors.ebay.mapping import MARKETPLACE, STATUSES
from connectors.platform import CredentialField, Platform
from vault.models import MarketplaceAccount

#: eBay's marketplaces by id (the ``MarketplaceIdEnum`` values a seller lists on), as sellers know them.
MARKETPLACE_NAMES: dict[str, str] = {
    "EBAY_US": "eBay.com",
    "EBAY_GB": "eBay.co.uk",
    "EBAY_DE": "eBay.de",
    "EBAY_AU": "eBay.com.au",
    "EBAY_CA": "eBay.ca",
    "EBAY_FR": "eBay.fr",
    "EBAY_IT": "eBay.it",
    "EBAY_ES": "eBay.es",
}


def _markets(account: MarketplaceAccount) -> str:
    return ", ".join(MARKETPLACE_NAMES.get(m, m) for m in account.marketplace_ids)


PLATFORM = Platform(
    code=MARKETPLACE,
    name="eBay",
    connector=connector_for_account,
    credentials=(
        CredentialField("client_id", "App ID (client ID)", "LABELVAULT_EBAY_CLIENT_ID"),
        CredentialField("client_secret", "Cert ID (client secret)", "LABELVAULT_EBAY_CLIENT_SECRET"),
        CredentialField("ru_name", "RuName (redirect URL name)", "LABELVAULT_EBAY_RU_NAME"),
        # Not typed by anyone: the consent flow's code exchange gives it (connectors/ebay/accounts.py).
        CredentialField("refresh_token", "Refresh token (from the seller's consent)"),
    ),
    statuses=STATUSES,
    # eBay's order ids: two, five and five digits ("01-03955-36441", the Fulfillment API's own example).
    order_id=re.compile(r"\d{2}-\d{5}-\d{5}"),
    order_id_example="01-03955-36441",
    rate_limits="a daily call quota per application (Fulfillment API, 100,000 calls/day by default; OAuth "
    "refresh grants 50,000/day); paced by a bucket of an hour's share refilled at the rest of the day's",
    # The documents used here state no retention period for buyer addresses: labelvault's default applies,
    # counted from the latest estimated delivery (getOrders reports no delivery).
    days_after_delivery=30,
    markets=_markets,
    # createShippingFulfillment with the tracking (connectors/ebay/fulfillment.py).
    confirm_shipment=confirm_shipment,
)
