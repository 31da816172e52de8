"""The Amazon SP-API connector: incremental, paged order pulls through Orders v2026-01-01 or legacy v0.

Windows: each pull asks for orders last updated in ``[cursor - overlap, now - 2 min - margin]`` (Amazon
refuses a ``...Before`` later than two minutes before now, and late-committed updates land within the
overlap). Paging state rides in the cursor, so a crash mid-window resumes on the next page; an expired or
unknown page token, whether a resumed one or one that died mid-run, restarts its window in the same run,
which upserts make harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.amazon.client import RequestRefused, RestrictedResource, SpApiClient
from connectors.amazon.endpoints import API_V0, API_V2026, API_VERSIONS
from connectors.amazon.mapping import MARKETPLACE, from_v0, from_v2026
from connectors.interfaces import BadResponse, ConnectorError, ConnectorStats, OrderPage, SyncCursor
from connectors.prefetch import Prefetcher
from vault.records import LabelRecord, OrderFacts

log = logging.getLogger(__name__)

#: Amazon: "...Before must be at least two minutes before the time of the request".
SETTLE_TIME = timedelta(minutes=2)
#: v2026 datasets the connector asks for: the address (RECIPIENT), the status and dates (FULFILLMENT), and
#: the packages (PACKAGES), whose status says when an order was delivered (retention counts from then).
INCLUDED_DATA = ("RECIPIENT", "FULFILLMENT", "PACKAGES")
#: The one restricted resource v0 needs: the order list, with shipping addresses.
V0_ORDERS_RDT = RestrictedResource(method="GET", path="/orders/v0/orders", data_elements=("shippingAddress",))


def iso(t: datetime) -> str:
    """Amazon's timestamp form, to the second (truncating keeps a ``...Before`` on the safe side)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AmazonConnector:
    """Pulls one Amazon account's changed orders, minimised (see :class:`connectors.interfaces.Connector`)."""

    marketplace = MARKETPLACE

    def __init__(
        self,
        *,
        client: SpApiClient,
        marketplace_ids: Sequence[str],
        api_version: str = API_V2026,
        page_size: int = 100,
        overlap: timedelta = timedelta(minutes=2),
        initial_lookback: timedelta = timedelta(days=30),
        settle_margin: timedelta = timedelta(seconds=5),
        clock: Callable[[], datetime] | None = None,
        prefetch: bool = True,
    ) -> None:
        if api_version not in API_VERSIONS:
            raise ConnectorError(f"unknown Orders API version {api_version!r} (expected {' or '.join(API_VERSIONS)})")
        if not marketplace_ids:
            raise ConnectorError("an Amazon account needs at least one marketplace id")
        if not 1 <= page_size <= 100:
            raise ConnectorError("page_size must be between 1 and 100")
        self.client = client
        self.marketplace_ids = tuple(marketplace_ids)
        self.api_version = api_version
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

    def window_end(self) -> datetime:
        """The latest ``...Before`` Amazon accepts now, less a safety margin, to the second."""
        return (self._clock() - SETTLE_TIME - self.settle_margin).replace(microsecond=0)

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        """Yield the pages of orders changed since ``cursor``; the last page's cursor closes the window.

        A half-paged window (a crashed run's) is finished first, then a fresh window up to now follows, so
        one run always catches up completely.
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
        if before < after:
            yield OrderPage(orders=(), cursor=cursor, last=True)
            return
        token = cursor.page_token
        span = max((before - after).total_seconds(), 1.0)
        # The next page is fetched (waiting for its rate-limit token) while the caller stores this one: a
        # sync then takes as long as the slower of the two, not their sum. Only a stored page's cursor is
        # ever handed out, so a crash just drops the prefetched page.
        pool = Prefetcher(enabled=self.prefetch, name="sp-api-prefetch")
        restarted = False
        try:
            ahead: Future[Any] | None = None  # the first page inline: a one-page sync starts no thread
            while True:
                try:
                    orders, next_token = ahead.result() if ahead else self._fetch(after, before, token)
                except RequestRefused as refused:
                    # Page tokens die (Amazon: after 24 h, or when it forgets them): a 400 for a page asked
                    # for by token restarts the window, once, in this run; the upserts absorb the repeats.
                    if token is None or refused.status != 400 or restarted:
                        raise
                    log.info("page token refused (%s); restarting the window", refused.code)
                    restarted, token, ahead = True, None, None
                    continue
                token = next_token
                ahead = pool.ahead(self._fetch, after, before, token) if token else None
                if token:
                    next_cursor = SyncCursor(updated_after=cursor.updated_after, window_end=before, page_token=token)
                    # Amazon pages in last-updated order, so the page's newest change says how far we are.
                    newest = max((facts.last_updated_at for facts, _ in orders), default=after)
                    progress = min(1.0, max(0.0, (newest - after).total_seconds() / span))
                else:
                    next_cursor, progress = SyncCursor(updated_after=before), 1.0
                yield OrderPage(orders=orders, cursor=next_cursor, last=token is None, progress=progress)
                if token is None:
                    return
        finally:
            pool.close()

    def _fetch(
        self, after: datetime, before: datetime, token: str | None
    ) -> tuple[list[tuple[OrderFacts, LabelRecord | None]], str | None]:
        if self.api_version == API_V0:
            return self._fetch_v0(after, before, token)
        return self._fetch_v2026(after, before, token)

    def _fetch_v2026(
        self, after: datetime, before: datetime, token: str | None
    ) -> tuple[list[tuple[OrderFacts, LabelRecord | None]], str | None]:
        params: dict[str, str | Sequence[str]] = {
            "lastUpdatedAfter": iso(after),
            "lastUpdatedBefore": iso(before),
            "marketplaceIds": self.marketplace_ids,
            "includedData": INCLUDED_DATA,
            "maxResultsPerPage": str(self.page_size),
        }
        if token:
            params["paginationToken"] = token
        body = self.client.call("searchOrders", "GET", "/orders/2026-01-01/orders", params=params)
        orders = body.get("orders")
        if not isinstance(orders, list):
            raise BadResponse("searchOrders: response has no orders list")
        pagination = body.get("pagination")
        next_token = pagination.get("nextToken") if isinstance(pagination, Mapping) else None
        return [from_v2026(_object(o)) for o in orders], (next_token or None) if isinstance(next_token, str) else None

    def _fetch_v0(
        self, after: datetime, before: datetime, token: str | None
    ) -> tuple[list[tuple[OrderFacts, LabelRecord | None]], str | None]:
        params: dict[str, str | Sequence[str]] = {
            "MarketplaceIds": self.marketplace_ids,
            "LastUpdatedAfter": iso(after),
            "LastUpdatedBefore": iso(before),
            "MaxResultsPerPage": str(self.page_size),
        }
        if token:
            params["NextToken"] = token
        body = self.client.call("getOrders", "GET", "/orders/v0/orders", params=params, restricted=V0_ORDERS_RDT)
        payload = body.get("payload")
        orders = payload.get("Orders") if isinstance(payload, Mapping) else None
        if not isinstance(orders, list):
            raise BadResponse("getOrders: response has no Orders list")
        assert isinstance(payload, Mapping)
        next_token = payload.get("NextToken")
        return [from_v0(_object(o)) for o in orders], (next_token or None) if isinstance(next_token, str) else None


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadResponse("an order in the response is not an object")
    return value
