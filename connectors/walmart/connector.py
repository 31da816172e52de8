"""The Walmart Marketplace connector: incremental, paged pulls of ``GET /v3/orders`` by last-modified date.

Windows: each pull asks for purchase orders modified in ``[cursor - overlap, now - margin]``
(``lastModifiedStartDate`` / ``lastModifiedEndDate``), ``limit`` orders a page. Walmart pages with
``meta.nextCursor``, a query string to append to ``/v3/orders`` that carries the window and an *offset*: an
order modified while a window is paged leaves it (its new date is past the window's end), and every order
after it moves up one place, so the next offset would skip one. ``meta.totalCount`` tells: the connector
remembers the first page's count and, when a later page reports another, pages the window again from its
start (the upserts make the repeats harmless; the order that left is in the next window). The page token
stored in the cursor is ``"<count>|<nextCursor>"``, so a crashed run resumes on the next page and still
knows the count to check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.interfaces import (
    BadResponse,
    ConnectorError,
    ConnectorStats,
    MarketplaceUnavailable,
    OrderPage,
    SyncCursor,
)
from connectors.prefetch import Prefetcher
from connectors.walmart.client import RequestRefused, WalmartClient
from connectors.walmart.mapping import MARKETPLACE, from_order
from vault.records import LabelRecord, OrderFacts

log = logging.getLogger(__name__)

ORDERS_PATH = "/v3/orders"
#: Walmart: "The number of orders to be returned. Cannot be larger than 200."
MAX_PAGE_SIZE = 200
#: One fetched page: the window's order count, the page's orders, the next page's cursor.
_Fetched = tuple[int, list[tuple[OrderFacts, LabelRecord | None]], str | None]
#: Times one window is paged again because orders changed under it, before the sync gives up for now.
MAX_RESTARTS = 3


def iso(t: datetime) -> str:
    """A Walmart date parameter (``2020-03-16T10:30:15Z``), to the second."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WalmartConnector:
    """Pulls one Walmart seller's changed purchase orders, minimised (see :class:`connectors.interfaces.Connector`)."""

    marketplace = MARKETPLACE

    def __init__(
        self,
        *,
        client: WalmartClient,
        page_size: int = MAX_PAGE_SIZE,
        overlap: timedelta = timedelta(minutes=2),
        initial_lookback: timedelta = timedelta(days=30),
        settle_margin: timedelta = timedelta(seconds=5),
        clock: Callable[[], datetime] | None = None,
        prefetch: bool = True,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConnectorError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if initial_lookback > timedelta(days=180):
            raise ConnectorError("Walmart serves orders of the last 180 days only")
        self.client = client
        self.page_size = page_size
        self.overlap = overlap
        self.initial_lookback = initial_lookback
        self.settle_margin = settle_margin
        self.prefetch = prefetch
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- Connector --------------------------------------------------------------------------------------

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far."""
        return self.client.stats()

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

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

    def _window(self, cursor: SyncCursor) -> tuple[datetime, datetime]:
        after = (
            cursor.updated_after - self.overlap
            if cursor.updated_after is not None
            else self._clock() - self.initial_lookback
        ).replace(microsecond=0)
        before = cursor.window_end or (self._clock() - self.settle_margin).replace(microsecond=0)
        return after, before

    def _pages(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        after, before = self._window(cursor)
        if before < after:
            yield OrderPage(orders=(), cursor=cursor, last=True)
            return
        expected, next_cursor = _split_token(cursor.page_token)
        restarts = served = 0
        # The next page is fetched while the caller stores this one, so a sync takes as long as the slower of
        # the two, not their sum. Only a stored page's cursor is ever handed out: a crash drops the prefetch.
        pool = Prefetcher(enabled=self.prefetch, name="walmart-prefetch")
        ahead: Future[_Fetched] | None = None
        try:
            while True:
                try:
                    total, orders, following = ahead.result() if ahead else self._fetch(after, before, next_cursor)
                except RequestRefused as refused:
                    # A cursor Walmart no longer takes (a resumed one, say): page the window again, once.
                    if next_cursor is None or refused.status != 400 or restarts:
                        raise
                    log.info("cursor refused (%s); paging the window again", refused.code)
                    restarts, expected, next_cursor, served, ahead = restarts + 1, None, None, 0, None
                    continue
                ahead = None
                if expected is not None and total != expected:
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        raise MarketplaceUnavailable("orders keep changing while their window is paged; sync later")
                    log.info("the window's order count moved (%d -> %d); paging it again", expected, total)
                    expected, next_cursor, served = None, None, 0
                    continue
                expected = total
                served += len(orders)
                if following is not None:
                    ahead = pool.ahead(self._fetch, after, before, following)
                    page_cursor = SyncCursor(
                        updated_after=cursor.updated_after, window_end=before, page_token=f"{total}|{following}"
                    )
                    progress = min(1.0, served / total) if total else 1.0
                else:
                    page_cursor, progress = SyncCursor(updated_after=before), 1.0
                yield OrderPage(orders=orders, cursor=page_cursor, last=following is None, progress=progress)
                if following is None:
                    return
                next_cursor = following
        finally:
            pool.close()

    def _fetch(self, after: datetime, before: datetime, next_cursor: str | None) -> _Fetched:
        """One page: the window's order count, its orders mapped, and the cursor of the next page (or None)."""
        if next_cursor is None:
            params = {
                "lastModifiedStartDate": iso(after),
                "lastModifiedEndDate": iso(before),
                "limit": str(self.page_size),
            }
            body = self.client.get("getAllOrders", ORDERS_PATH, params=params)
        else:
            body = self.client.get("getAllOrders", ORDERS_PATH + next_cursor)
        listing = _dict(body.get("list"))
        meta = _dict(listing.get("meta"))
        orders = _dict(listing.get("elements")).get("order", [])
        if not isinstance(orders, list):
            raise BadResponse("getAllOrders: response has no order list")
        total = meta.get("totalCount", len(orders))
        if not isinstance(total, int) or isinstance(total, bool):
            raise BadResponse("getAllOrders: totalCount is not a number")
        following = meta.get("nextCursor")
        return total, [from_order(_object(o)) for o in orders], _checked_cursor(following)


def _split_token(token: str | None) -> tuple[int | None, str | None]:
    """A stored page token's order count and Walmart cursor (``None``s between windows)."""
    if not token:
        return None, None
    count, sep, cursor = token.partition("|")
    if not sep or not count.isdigit():
        raise ConnectorError("the stored page token is not a Walmart one")
    return int(count), _checked_cursor(cursor)


def _checked_cursor(value: Any) -> str | None:
    """Walmart's ``nextCursor``: a query string (``?limit=...``) appended to the path, nothing else."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith("?") or any(c in value for c in "#/\\ \r\n"):
        raise BadResponse("getAllOrders: nextCursor is not a query string")
    return value


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadResponse("an order in the response is not an object")
    return value
