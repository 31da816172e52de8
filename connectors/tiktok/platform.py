"""TikTok Shop as a registered platform (connectors.registry): Order API 202309, one app for every market."""

from __future__ import annotations

import re

from connectors.platform import CredentialField, Platform
from connectors.tiktok import connector_for_account
from connectors.tiktok.documents import fetch_shipping_document
from connectors.tiktok.mapping import MARKETPLACE, STATUSES
from vault.models import MarketplaceAccount


def _markets(account: MarketplaceAccount) -> str:
    count = len(account.marketplace_ids)
    return f"{count} shop" if count == 1 else f"{count} shops"


PLATFORM = Platform(
    code=MARKETPLACE,
    name="TikTok Shop",
    connector=connector_for_account,
    # What is sealed: the app's key and secret and the refresh token the seller's authorisation yielded
    # (the one-time auth code is spent at connect, connectors/tiktok/accounts.py, and TikTok renews the
    # tokens; the current access token and the expiries are sealed beside them).
    credentials=(
        CredentialField("app_key", "TikTok Shop app key", "LABELVAULT_TIKTOK_APP_KEY"),
        CredentialField("app_secret", "TikTok Shop app secret", "LABELVAULT_TIKTOK_APP_SECRET"),
        CredentialField("refresh_token", "TikTok Shop refresh token", "LABELVAULT_TIKTOK_REFRESH_TOKEN"),
    ),
    statuses=STATUSES,
    # TikTok Shop order ids are numeric strings (18 digits today: "576461413038785752").
    order_id=re.compile(r"[0-9]{6,32}"),
    order_id_example="576461413038785752",
    rate_limits="requests per second per shop and endpoint (orders/search 10/s, burst 10); signed requests; "
    "429 answers are retried with backoff",
    # TikTok Shop's data terms: seller-held buyer data deleted once no longer needed for fulfilment; the
    # vault keeps label data at most 30 days after delivery, as for Amazon.
    days_after_delivery=30,
    markets=_markets,
    # TikTok-shipped orders print on TikTok's own label, fetched at label time (connectors/tiktok/documents.py).
    shipping_document=fetch_shipping_document,
)
