"""TikTok's own shipping label for a platform-shipped order, fetched at label time and never stored.

A TikTok-shipped order (``shipping_type = TIKTOK``) reaches the vault without an address: TikTok
desensitises the recipient and issues the label itself. When the warehouse asks the label API for such an
order, the vault fetches that label with the account's token: the order's detail (Order 202309) names its
package, the Fulfillment API's package shipping documents (``document_type=SHIPPING_LABEL``) hand out a
pre-signed document URL, and the PDF behind it goes straight to the label API's response. The address on it
is TikTok's business and the warehouse's: labelvault passes the bytes on and keeps none of them.

The document URL must be on TikTok's own file hosts (or, for a fake or sandbox, on the account's allowed
API origin): the vault fetches from inside its network and follows nowhere else (connectors/tiktok/endpoints.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy.orm import Session

from connectors.interfaces import BadResponse
from connectors.platform import DocumentUnavailable, StoredOrder
from connectors.tiktok import client_for_account, settle_tokens
from connectors.tiktok.client import RequestRefused, RetryPolicy
from connectors.tiktok.endpoints import document_url_allowed
from connectors.tiktok.mapping import platform_shipped
from vault.keys import KeyManager
from vault.models import MarketplaceAccount

DETAIL_PATH = "/order/202309/orders"
DOCUMENT_PATH = "/fulfillment/202309/packages/{package_id}/shipping_documents"
#: A warehouse client waits for this: few, short attempts.
DOCUMENT_RETRY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=2.0, connect_timeout=5.0, read_timeout=15.0)
#: The largest document accepted (a 4x6 label is a few tens of kilobytes).
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024


def _package_id(data: Mapping[str, Any], order_id: str) -> str:
    orders = data.get("orders")
    found = (
        [o for o in orders if isinstance(o, Mapping) and o.get("id") == order_id] if isinstance(orders, list) else []
    )
    if not found:
        raise DocumentUnavailable("TikTok does not list the order any more")
    order = found[0]
    if not platform_shipped(order) or order.get("fulfillment_type") == "FULFILLMENT_BY_TIKTOK":
        raise DocumentUnavailable("TikTok issues no shipping label for this order (it is not TikTok-shipped)")
    packages = order.get("packages")
    listed_ids = [p.get("id") for p in packages if isinstance(p, Mapping)] if isinstance(packages, list) else []
    ids: list[str] = [i for i in listed_ids if isinstance(i, str) and i.isdigit()]
    if not ids:
        raise DocumentUnavailable("the order has no package yet: arrange its shipment in TikTok Shop first")
    if len(ids) > 1:
        raise DocumentUnavailable(f"the order ships in {len(ids)} packages: print their labels in TikTok Shop")
    return ids[0]


def fetch_shipping_document(
    session: Session,
    keys: KeyManager,
    account: MarketplaceAccount,
    order: StoredOrder,
    *,
    endpoint_overrides: Collection[str] = (),
) -> bytes:
    """TikTok's shipping label (PDF bytes) for a TikTok-shipped ``order`` of ``account``; nothing is stored.

    Three calls: the order's detail (its package), the package's shipping document (a URL), the document.
    Raises :class:`~connectors.platform.DocumentUnavailable` when TikTok has none for the order now (an
    order in several packages included), and the client's errors (:class:`~connectors.interfaces.AuthRefused`,
    ``MarketplaceUnavailable``, ``BadResponse``) otherwise.
    Tokens TikTok renewed meanwhile are sealed and committed in ``session`` (so call it before the
    release's own writes).
    """
    cipher = order.marketplace_id
    if not cipher or cipher not in account.marketplace_ids:
        raise DocumentUnavailable("the order's shop is not one of the account's shops")
    client = client_for_account(
        session,
        keys=keys,
        account=account,
        retry=DOCUMENT_RETRY,
        endpoint_overrides=endpoint_overrides,
    )
    try:
        detail = client.call(
            "orders.detail",
            "GET",
            DETAIL_PATH,
            params={"ids": order.external_order_id, "shop_cipher": cipher},
            scope=cipher,
        )
        package_id = _package_id(detail, order.external_order_id)
        try:
            document = client.call(
                "shipping_document",
                "GET",
                DOCUMENT_PATH.format(package_id=package_id),
                params={"document_type": "SHIPPING_LABEL", "shop_cipher": cipher},
                scope=cipher,
            )
        except RequestRefused as refused:
            raise DocumentUnavailable(
                f"TikTok has no shipping label for the package now (code {refused.code})"
            ) from None
        url = document.get("doc_url")
        if not isinstance(url, str) or not url:
            raise BadResponse("shipping_document: response has no doc_url")
        if not document_url_allowed(url, api_base=client.base_url, overrides=endpoint_overrides):
            raise BadResponse("shipping_document: the document URL is not on TikTok's hosts; not followed")
        pdf = client.fetch_document(url, max_bytes=MAX_DOCUMENT_BYTES)
    finally:
        client.close()
    settle_tokens(client)  # renewed tokens, sealed and committed before the release writes anything
    if not pdf.startswith(b"%PDF-"):
        raise BadResponse("shipping_document: the document is not a PDF")
    return pdf
