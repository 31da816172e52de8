"""The connectors' contract: what a marketplace connector gives the sync engine, and how it fails.

A connector pulls the orders that changed since a :class:`SyncCursor` and hands them over already minimised
(docs/architecture.md, "Minimise at the boundary"): non-PII :class:`~vault.records.OrderFacts` plus at most one
:class:`~vault.records.LabelRecord`. Buyer e-mail, tax data, items and prices never leave the connector.
Nothing a connector logs or puts in an exception message carries PII, credentials or tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from vault.records import LabelRecord, OrderFacts


class ConnectorError(Exception):
    """Root of every error a connector (or the sync engine) raises. Messages never carry PII or secrets."""


class AuthRefused(ConnectorError):
    """The marketplace refused the account's credentials or tokens (revoked, wrong, not authorised).

    Not retried: an operator has to fix the account's credentials.
    """


class ConsentExpired(AuthRefused):
    """The seller's grant to labelvault ran out or was withdrawn (eBay's refresh token after ~18 months, a
    TikTok Shop authorisation revoked): nothing syncs until the seller consents again, which the dashboard
    offers as a link. Not retried."""


class ThrottledOut(ConnectorError):
    """The marketplace kept throttling (HTTP 429) through every retry; sync later."""


class MarketplaceUnavailable(ConnectorError):
    """The marketplace kept failing (5xx, timeouts, connection errors) through every retry; sync later."""


class BadResponse(ConnectorError):
    """The marketplace answered with something the connector can't use: a 4xx it won't retry, bad JSON,
    a missing required field. Retrying won't help."""


@dataclass(frozen=True, slots=True)
class SyncCursor:
    """Where an account's sync stands: a low-water mark plus, mid-window, where to resume paging.

    ``updated_after``: every change up to this time is stored (``None``: never synced).
    ``window_end`` and ``page_token``: set while a window is being paged through, so a crashed run resumes
    on the next page instead of the first; both ``None`` between windows.
    """

    updated_after: datetime | None = None
    window_end: datetime | None = None
    page_token: str | None = None

    @property
    def mid_window(self) -> bool:
        """Whether a window is half paged through."""
        return self.window_end is not None and self.page_token is not None


@dataclass(frozen=True, slots=True)
class OrderPage:
    """One page of changed orders and the cursor to store once (and only once) they are stored.

    ``orders`` pairs each order's facts with its label record, or ``None`` when the marketplace served no
    address (pending or cancelled orders, or a label the connector could not build).
    """

    orders: Sequence[tuple[OrderFacts, LabelRecord | None]] = field(repr=False)
    cursor: SyncCursor
    last: bool = False
    #: How far through the current window this page reaches (0..1), where the connector can tell.
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class ConnectorStats:
    """Counters of one connector instance, for the sync summary and metrics."""

    calls: int = 0
    throttled: int = 0
    retries: int = 0
    token_refreshes: int = 0
    per_operation: dict[str, int] = field(default_factory=dict)
    #: Non-PII notice codes for the seller, e.g. ``"protected-data-redacted"`` (the platform withheld buyer
    #: fields the app isn't approved for); the sync stores them with the account's last sync.
    notices: tuple[str, ...] = ()


@runtime_checkable
class Connector(Protocol):
    """Pulls one marketplace account's changed orders, minimised, page by page.

    Contract (checked by the shared conformance tests in ``tests/connectors``):

    - :meth:`pull` yields pages in order; the last one has ``last=True``. Storing a page's orders and then
      its ``cursor`` in one transaction, and calling :meth:`pull` again with the stored cursor after a
      crash, loses no change: windows overlap a little, so some orders come twice (upserts make that
      harmless).
    - Every order is yielded with facts; the label is ``None`` when there is no address to keep.
    - Failures are :class:`ConnectorError` subclasses, raised only after the connector's own bounded
      retries; a page is never half yielded.
    - No network call blocks longer than the connector's configured timeouts.
    """

    #: The marketplace's short name as stored in ``Order.marketplace`` ("amazon").
    marketplace: str

    def pull(self, cursor: SyncCursor) -> Iterator[OrderPage]:
        """Yield the pages of orders changed since ``cursor``, each with the cursor that covers it."""
        ...

    def stats(self) -> ConnectorStats:
        """Calls made, throttled responses and retries so far."""
        ...

    def close(self) -> None:
        """Release network resources (idempotent)."""
        ...
