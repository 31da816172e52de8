"""The one query a sync sends: changed orders by ``updated_at``, only the fields a label needs.

What is asked for, and why (docs/marketplaces/shopify.md): the order's ids and dates, its cancellation,
closing and fulfilment state with its fulfillment orders' statuses (which say whether a label may still
be printed), and the shipping address's label fields. Never the buyer's e-mail, the customer record, the
billing address, line items or prices: what isn't asked for can't be stored or leak.
"""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.shopify.pacing import SINGLE_QUERY_MAX_COST

OPERATION = "LabelvaultOrders"
#: Fulfillment orders read per order: one per location that ships a share of it; more than a few is rare,
#: and only their statuses are read (see mapping.status_of).
FULFILLMENT_ORDERS = 5
#: The label fields of ``MailingAddress``; name, address1, address2, zip (and phone) are protected data.
ADDRESS_FIELDS = (
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "provinceCode",
    "zip",
    "countryCodeV2",
    "phone",
)

ORDERS_QUERY = (
    f"query {OPERATION}($first: Int!, $after: String, $query: String!) {{\n"
    "  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {\n"
    "    pageInfo { hasNextPage endCursor }\n"
    "    nodes {\n"
    "      id\n"
    "      legacyResourceId\n"
    "      createdAt\n"
    "      updatedAt\n"
    "      cancelledAt\n"
    "      closed\n"
    "      displayFulfillmentStatus\n"
    f"      fulfillmentOrders(first: {FULFILLMENT_ORDERS}) {{ nodes {{ status }} }}\n"
    f"      shippingAddress {{ {' '.join(ADDRESS_FIELDS)} }}\n"
    "    }\n"
    "  }\n"
    "}\n"
)

#: Shopify's cost of one order node (shopify.dev, "calculated query cost"): the node 1, its address 1, its
#: fulfillment-order connection 2 plus one per node asked for; scalars and enums cost nothing.
NODE_COST = 1 + 1 + 2 + FULFILLMENT_ORDERS
#: The largest page whose requested cost stays within Shopify's single-query maximum (the orders
#: connection's own 2 included), and Shopify's page maximum of 250.
MAX_PAGE_SIZE = min(250, (SINGLE_QUERY_MAX_COST - 2) // NODE_COST)


def requested_cost(page_size: int) -> int:
    """The requested cost of :data:`ORDERS_QUERY` for ``page_size`` orders."""
    return 2 + page_size * NODE_COST


def iso(t: datetime) -> str:
    """Shopify's search timestamp, to the second, in UTC."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def search(after: datetime, before: datetime) -> str:
    """The ``query:`` argument for orders updated in ``[after, before)``. GraphQL's ``orders`` serves every
    status (open, closed, cancelled) unless a ``status:`` term narrows it, so none is given."""
    return f"updated_at:>='{iso(after)}' AND updated_at:<'{iso(before)}'"
