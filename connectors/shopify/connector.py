"""The Shopify connector: incremental, cursor-paged order pulls through the Admin GraphQL API 2026-07.

Windows: each pull asks for orders updated in ``[cursor - overlap, now - margin)``, sorted by
``UPDATED_AT``, in pages of at most :data:`~connectors.shopify.query.MAX_PAGE_SIZE` (the largest whose
requested cost Shopify accepts in one query). The GraphQL ``endCursor`` rides in
``SyncCursor.page_token``, so a crash mid-window resumes on the next page; a cursor Shopify no longer
accepts restarts its window once in the same run, which upserts make harmless. An order updated while the
window is paged through leaves the window (its ``updatedAt`` is past the window's end) and comes with the
next one, which starts ``overlap`` before this one ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.interfaces import AuthRefused, BadResponse, ConnectorError, ConnectorStats, OrderPage, SyncCursor
from connectors.prefetch import Prefetcher
from connectors.shopify.client import QueryRefused, ShopifyClient, TokenRejected, error_codes
from connectors.shopify.mapping import MARKETPLACE, Mapped, from_order
from connectors.shopify.query import MAX_PAGE_SIZE, OPERATION, ORDERS_QUERY, requested_cost, search
from vault.records import LabelRecord, OrderFacts

log = logging.getLogger(__name__)

#: Notice for the seller: Shopify withheld protected customer data (the app isn't approved for it).
NOTICE_REDACTED = "protected-data-redacted"
#: Notice: Shopify withheld buyers' phone numbers (labels are printed without).
NOTICE_PHONE_WITHHELD = "protected-phone-withheld"


def withheld_fields(body: Mapping[str, Any]) -> dict[int, set[str]]:
    """From an answer's ``errors``: per order index, the ``shippingAddress`` fields refused as ACCESS_DENIED
    (``"*"``: the whole address). Any other error with data is a :class:`BadResponse`."""
    out: dict[int, set[str]] = {}
    errors = body.get("errors")
    if not isinstance(errors, list):
        return out
    for error, code in zip(errors, error_codes(body), strict=True):
        path = error.get("path") if isinstance(error, Mapping) else None
        if (
            code == "ACCESS_DENIED"
            and isinstance(path, list)
            and len(path) >= 4
            and path[:2] == ["orders", "nodes"]
            and isinstance(path[2], int)
            and path[3] == "shippingAddress"
        ):
            out.setdefault(path[2], set()).add(str(path[4]) if len(path) > 4 else "*")
            continue
        raise BadResponse(f"{OPERATION}: Shopify answered with an error ({code})")
    return out


class ShopifyConnector:
    """Pulls one Shopify shop's changed orders, minimised (see :class:`connectors.interfaces.Connector`)."""

    marketplace = MARKETPLACE

    def __init__(
        self,
        *,
        client: ShopifyClient,
        page_size: int = MAX_PAGE_SIZE,
        overlap: timedelta = timedelta(minutes=2),
        initial_lookback: timedelta = timedelta(days=30),
        settle_margin: timedelta = timedelta(seconds=5),
        clock: Callable[[], datetime] | None = None,
        prefetch: bool = True,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConnectorError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        self.client = client
        self.page_size = page_size
        self.overlap = overlap
        self.initial_lookback = initial_lookback
        self.settle_margin = settle_margin
        self.prefetch = prefetch
        self._clock = clock or (lambda: datetime.now(UTC))
        self._notices: set[str] = set()

    # -- Connector --------------------------------------------------------------------------------------

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far, and the notices for the seller."""
        return replace(self.client.stats(), notices=tuple(sorted(self._notices)))

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def window_end(self) -> datetime:
        """The end of a new window: now less a margin for updates Shopify has yet to index, to the second."""
        return (self._clock() - self.settle_margin).replace(microsecond=0)

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        """Yield the pages of orders changed since ``cursor``; the last page's cursor closes the window.

        A half-paged window (a crashed run's) is finished first, then a fresh window up to now follows.
        """
        if cursor.mid_window:
            for page in self._pages(cursor):
                cursor = page.cursor
                yield replace(page, last=False) if page.last else page
        yield from self._pages(cursor)

    # -- paging -----------------------------------------------------------------------------------------

    def _pages(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        after = (
            cursor.updated_after - self.overlap
            if cursor.updated_after is not None
            else self._clock() - self.initial_lookback
        ).replace(microsecond=0)
        before = cursor.window_end if cursor.window_end is not None else self.window_end()
        if before <= after:
            yield OrderPage(orders=(), cursor=cursor, last=True)
            return
        token = cursor.page_token
        span = max((before - after).total_seconds(), 1.0)
        # The next page is fetched (waiting for its cost in the bucket) while the caller stores this one.
        pool = Prefetcher(enabled=self.prefetch, name="shopify-prefetch")
        restarted, renewals = False, 0
        try:
            ahead: Any = None  # the first page inline: a one-page sync starts no thread
            while True:
                try:
                    orders, next_token = ahead.result() if ahead else self._fetch(after, before, token)
                except TokenRejected as rejected:
                    # Renewed here, in the caller's thread: the renewed pair is sealed before it is used.
                    renewals += 1
                    if renewals > 2 or not self.client.tokens.rejected(rejected.token):
                        raise
                    ahead = None
                    continue
                except QueryRefused as refused:
                    # A cursor Shopify no longer takes ("Invalid cursor", BAD_REQUEST) restarts the window, once.
                    if token is None or refused.code != "BAD_REQUEST" or restarted:
                        raise
                    log.info("page cursor refused (%s); restarting the window", refused.code)
                    restarted, token, ahead = True, None, None
                    continue
                token = next_token
                ahead = self._ahead(pool, after, before, token) if token else None
                if token:
                    next_cursor = SyncCursor(updated_after=cursor.updated_after, window_end=before, page_token=token)
                    newest = max((facts.last_updated_at for facts, _ in orders), default=after)
                    progress = min(1.0, max(0.0, (newest - after).total_seconds() / span))
                else:
                    next_cursor, progress = SyncCursor(updated_after=before), 1.0
                yield OrderPage(orders=orders, cursor=next_cursor, last=token is None, progress=progress)
                if token is None:
                    return
        finally:
            pool.close()

    def _ahead(self, pool: Prefetcher, after: datetime, before: datetime, token: str | None) -> Any:
        """Start fetching the next page in the prefetch thread, its access token renewed here first if it
        is about to end (renewing writes the sealed pair: the caller's thread does that, never the pool)."""
        if not pool.enabled:
            return None
        self.client.tokens.current()
        return pool.ahead(self._fetch, after, before, token, renew=False)

    def _fetch(
        self, after: datetime, before: datetime, token: str | None, *, renew: bool = True
    ) -> tuple[list[tuple[OrderFacts, LabelRecord | None]], str | None]:
        variables = {"first": self.page_size, "after": token, "query": search(after, before)}
        body = self.client.query(OPERATION, ORDERS_QUERY, variables, cost=requested_cost(self.page_size), renew=renew)
        data = body.get("data")
        connection = data.get("orders") if isinstance(data, Mapping) else None
        if not isinstance(connection, Mapping):
            if "ACCESS_DENIED" in error_codes(body):
                raise AuthRefused(f"{OPERATION}: the app may not read orders (ACCESS_DENIED): check its scopes")
            raise BadResponse(f"{OPERATION}: the answer has no orders")
        nodes = connection.get("nodes")
        if not isinstance(nodes, list):
            raise BadResponse(f"{OPERATION}: the answer has no order list")
        withheld = withheld_fields(body)
        mapped: list[Mapped] = []
        for i, node in enumerate(nodes):
            if not isinstance(node, Mapping):
                raise BadResponse(f"{OPERATION}: an order in the answer is not an object")
            mapped.append(from_order(node, withheld=withheld.get(i, ())))
        if any(m.redacted for m in mapped):
            self._notices.add(NOTICE_REDACTED)
        if any(m.phone_withheld for m in mapped):
            self._notices.add(NOTICE_PHONE_WITHHELD)
        page_info = connection.get("pageInfo")
        more = isinstance(page_info, Mapping) and page_info.get("hasNextPage") is True
        end = page_info.get("endCursor") if isinstance(page_info, Mapping) else None
        if more and not (isinstance(end, str) and end):
            raise BadResponse(f"{OPERATION}: the answer has a next page but no endCursor")
        return [(m.facts, m.label) for m in mapped], (end if more else None)
