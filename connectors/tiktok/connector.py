"""The TikTok Shop connector: incremental, paged order pulls through Order 202309's search, shop by shop.

Windows: each pull asks every shop of the account for orders with ``update_time`` in
``[cursor - overlap, now - margin)``, sorted by ``update_time`` ascending, 100 a page. The search answer
already holds each order's ``recipient_address`` (the schema's list type carries it), so no per-order
detail call is needed; the detail endpoint serves the label-time document path instead
(connectors/tiktok/documents.py).

The cursor's ``page_token`` is ``<shop index>:<TikTok page token>`` (an empty token: that shop's first
page), so a crash mid-window resumes in the right shop on the next page. A page token TikTok no longer
knows (it expired, or a resumed one outlived its search) restarts that shop's part of the window in the
same run, which upserts make harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.interfaces import BadResponse, ConnectorError, ConnectorStats, OrderPage, SyncCursor
from connectors.prefetch import Prefetcher
from connectors.tiktok.client import RequestRefused, TikTokClient
from connectors.tiktok.mapping import MARKETPLACE, from_order
from vault.records import LabelRecord, OrderFacts

log = logging.getLogger(__name__)

SEARCH_PATH = "/order/202309/orders/search"
PAGE_SIZE = 100
#: TikTok's answer to a page token it doesn't know (the fake's choice of code, see connectors/fake_tiktok).
CODE_BAD_PARAM = 36009003

Page = tuple[list[tuple[OrderFacts, LabelRecord | None]], str | None]


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadResponse("an order in the response is not an object")
    return value


class TikTokConnector:
    """Pulls one TikTok Shop account's changed orders, minimised (see :class:`connectors.interfaces.Connector`)."""

    marketplace = MARKETPLACE

    def __init__(
        self,
        *,
        client: TikTokClient,
        shop_ciphers: Sequence[str],
        page_size: int = PAGE_SIZE,
        overlap: timedelta = timedelta(minutes=2),
        initial_lookback: timedelta = timedelta(days=30),
        settle_margin: timedelta = timedelta(seconds=5),
        clock: Callable[[], datetime] | None = None,
        prefetch: bool = True,
        settle_tokens: Callable[[], None] | None = None,
    ) -> None:
        if not shop_ciphers:
            raise ConnectorError("a TikTok Shop account needs at least one shop cipher")
        if not 1 <= page_size <= PAGE_SIZE:
            raise ConnectorError(f"page_size must be between 1 and {PAGE_SIZE}")
        self.client = client
        self.shop_ciphers = tuple(shop_ciphers)
        self.page_size = page_size
        self.overlap = overlap
        self.initial_lookback = initial_lookback
        self.settle_margin = settle_margin
        self.prefetch = prefetch
        #: Seals tokens TikTok renewed meanwhile; called between pages, from the thread that pulls.
        self._settle_tokens = settle_tokens
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- Connector --------------------------------------------------------------------------------------

    def stats(self) -> ConnectorStats:
        """Calls, throttles and retries so far."""
        return self.client.stats()

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def window_end(self) -> datetime:
        """Where a window opened now ends: now less a margin for updates TikTok commits late, to the second."""
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

    def _resume_point(self, cursor: SyncCursor) -> tuple[int, str | None]:
        if not cursor.page_token:
            return 0, None
        index, _, token = cursor.page_token.partition(":")
        if not index.isdigit() or int(index) >= len(self.shop_ciphers):
            return 0, None  # a token of another shop list (the account's shops changed): start the window over
        return int(index), token or None

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
        shop, token = self._resume_point(cursor)
        shops = len(self.shop_ciphers)
        # The next page is fetched (waiting for its rate-limit token) while the caller stores this one; only
        # a stored page's cursor is handed out, so a crash just drops the prefetched page.
        pool = Prefetcher(enabled=self.prefetch, name="tiktok-prefetch")
        restarted: set[int] = set()
        try:
            ahead: Future[Page] | None = None
            while True:
                cipher = self.shop_ciphers[shop]
                try:
                    orders, next_token = ahead.result() if ahead else self._fetch(cipher, after, before, token)
                except RequestRefused as refused:
                    if token is None or refused.code != CODE_BAD_PARAM or shop in restarted:
                        raise
                    log.info("page token refused (code %s); restarting the shop's window", refused.code)
                    restarted.add(shop)
                    token, ahead = None, None
                    continue
                if next_token:
                    token = next_token
                elif shop + 1 < shops:
                    shop, token = shop + 1, None
                else:
                    token = None
                    shop = shops
                done = shop >= shops
                ahead = pool.ahead(self._fetch, self.shop_ciphers[shop], after, before, token) if not done else None
                if done:
                    next_cursor, progress = SyncCursor(updated_after=before), 1.0
                else:
                    next_cursor = SyncCursor(
                        updated_after=cursor.updated_after, window_end=before, page_token=f"{shop}:{token or ''}"
                    )
                    progress = shop / shops
                if self._settle_tokens is not None:
                    self._settle_tokens()
                yield OrderPage(orders=orders, cursor=next_cursor, last=done, progress=progress)
                if done:
                    return
        finally:
            pool.close()

    def _fetch(self, cipher: str, after: datetime, before: datetime, token: str | None) -> Page:
        params = {
            "shop_cipher": cipher,
            "page_size": str(self.page_size),
            "sort_field": "update_time",
            "sort_order": "ASC",
        }
        if token:
            params["page_token"] = token
        body = {"update_time_ge": int(after.timestamp()), "update_time_lt": int(before.timestamp())}
        data = self.client.call("orders.search", "POST", SEARCH_PATH, params=params, json_body=body, scope=cipher)
        orders = data.get("orders", [])
        if not isinstance(orders, list):
            raise BadResponse("orders.search: response has no orders list")
        next_token = data.get("next_page_token")
        return (
            [from_order(_object(o), shop_cipher=cipher) for o in orders],
            next_token if isinstance(next_token, str) and next_token else None,
        )
