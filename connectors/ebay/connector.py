"""The eBay connector: incremental, offset-paged pulls of a seller's orders through Sell Fulfillment v1.

Windows: each pull asks ``getOrders`` for ``filter=lastmodifieddate:[after..before]`` with ``after`` the
cursor less an overlap and ``before`` a little in the past (eBay refuses a date in the future, and a window
that has ended can only lose orders, never gain them: a change moves an order's ``lastModifiedDate`` past
``before``).

Offsets: eBay pages with ``limit``/``offset`` over a result set it evaluates afresh on every call. When an
order of the window changes while we page, it leaves the set and every order behind it moves up one place,
so plain offset paging would skip one order nobody changed. ``total`` tells: when it shrinks by ``d``
between two pages, at most ``d`` unread orders moved into offsets already read, so the next page starts
``d`` earlier (re-reading a few orders is harmless: the vault upserts). The page token is
``"<offset>:<total>"``, stored with each page, so a crashed run resumes on the next page with the same check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.ebay.client import EbayClient, RequestRefused
from connectors.ebay.endpoints import ORDERS_PATH
from connectors.ebay.mapping import MARKETPLACE, from_order
from connectors.interfaces import BadResponse, ConnectorError, ConnectorStats, OrderPage, SyncCursor
from connectors.prefetch import Prefetcher
from vault.records import LabelRecord, OrderFacts

log = logging.getLogger(__name__)

MAX_LIMIT = 200


def iso(t: datetime) -> str:
    """eBay's timestamp form, to the millisecond, in UTC."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def page_token(offset: int, total: int) -> str:
    """The cursor's page token: where the next page starts and how many orders the window held then."""
    return f"{offset}:{total}"


def parse_page_token(token: str) -> tuple[int, int]:
    """Inverse of :func:`page_token`; a token of another shape is a :class:`ConnectorError`."""
    offset, sep, total = token.partition(":")
    if not (sep and offset.isdigit() and total.isdigit()):
        raise ConnectorError("the stored eBay page token is not <offset>:<total>")
    return int(offset), int(total)


class EbayConnector:
    """Pulls one eBay seller's changed orders, minimised (see :class:`connectors.interfaces.Connector`)."""

    marketplace = MARKETPLACE

    def __init__(
        self,
        *,
        client: EbayClient,
        page_size: int = MAX_LIMIT,
        overlap: timedelta = timedelta(minutes=2),
        initial_lookback: timedelta = timedelta(days=30),
        settle_margin: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] | None = None,
        prefetch: bool = True,
    ) -> None:
        if not 1 <= page_size <= MAX_LIMIT:
            raise ConnectorError(f"page_size must be between 1 and {MAX_LIMIT}")
        self.client = client
        self.page_size = page_size
        self.overlap = overlap
        self.initial_lookback = initial_lookback
        self.settle_margin = settle_margin
        self.prefetch = prefetch
        self._clock = clock or (lambda: datetime.now(UTC))

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far."""
        return self.client.stats()

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def window_end(self) -> datetime:
        """The end of a new window: now less the settle margin, to the millisecond."""
        end = self._clock() - self.settle_margin
        return end.replace(microsecond=end.microsecond // 1000 * 1000)

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        """Yield the pages of orders changed since ``cursor``; the last page's cursor closes the window.

        A half-paged window (a crashed run's) is finished first, then a fresh window up to now follows.
        """
        if cursor.mid_window:
            for page in self._pages(cursor):
                cursor = page.cursor
                yield replace(page, last=False) if page.last else page
        yield from self._pages(cursor)

    def _pages(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        after = (
            cursor.updated_after - self.overlap
            if cursor.updated_after is not None
            else self._clock() - self.initial_lookback
        )
        before = cursor.window_end if cursor.window_end is not None else self.window_end()
        if before < after:
            yield OrderPage(orders=(), cursor=cursor, last=True)
            return
        offset, expected = parse_page_token(cursor.page_token) if cursor.page_token else (0, None)
        restarted = False
        # The next page is fetched (waiting for its share of the quota) while the caller stores this one: a
        # sync then takes as long as the slower of the two, not their sum. Only a stored page's cursor is
        # ever handed out, so a crash just drops the prefetched page.
        pool = Prefetcher(enabled=self.prefetch, name="ebay-prefetch")
        try:
            ahead: Future[Any] | None = None  # the first page inline: a one-page sync starts no thread
            while True:
                try:
                    orders, total, has_next = ahead.result() if ahead else self._fetch(after, before, offset)
                except RequestRefused as refused:
                    # An offset past the end (the window shrank while we were away) is a 400: restart the
                    # window once in this run; the upserts absorb the repeats.
                    if offset == 0 or refused.status != 400 or restarted:
                        raise
                    log.info("offset refused (%s); restarting the window", refused.error_id)
                    restarted, offset, expected, ahead = True, 0, None, None
                    continue
                shrunk = expected - total if expected is not None and total < expected else 0
                if shrunk:
                    log.info("the window lost %d orders while paging; stepping back", shrunk)
                read_to = offset + len(orders)
                next_offset = max(0, offset - shrunk) if shrunk else read_to
                done = not shrunk and (not has_next or read_to >= total)
                ahead = pool.ahead(self._fetch, after, before, next_offset) if not done else None
                if done:
                    next_cursor, progress = SyncCursor(updated_after=before), 1.0
                else:
                    token = page_token(next_offset, total)
                    next_cursor = SyncCursor(updated_after=cursor.updated_after, window_end=before, page_token=token)
                    progress = min(1.0, read_to / total) if total else 1.0
                yield OrderPage(orders=orders, cursor=next_cursor, last=done, progress=progress)
                if done:
                    return
                offset, expected = next_offset, total
        finally:
            pool.close()

    def _fetch(
        self, after: datetime, before: datetime, offset: int
    ) -> tuple[list[tuple[OrderFacts, LabelRecord | None]], int, bool]:
        body = self.client.get(
            "getOrders",
            ORDERS_PATH,
            params={
                "filter": f"lastmodifieddate:[{iso(after)}..{iso(before)}]",
                "limit": str(self.page_size),
                "offset": str(offset),
            },
        )
        orders = body.get("orders", [])
        total = body.get("total")
        if not isinstance(orders, list) or not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise BadResponse("getOrders: response lacks an orders list or a total")
        return [from_order(_object(o)) for o in orders], total, isinstance(body.get("next"), str)


def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise BadResponse("an order in the response is not an object")
    return value
