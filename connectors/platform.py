"""What labelvault knows of a marketplace platform, declared once per platform in ``connectors/<code>/platform.py``.

A :class:`Platform` names everything the rest of the product needs to take a platform without a special
case: the connector that syncs an account (the sync engine, worker and CLI call it through
:func:`connectors.registry.connector_for_account`), the shape of the account's sealed credentials, the
retention rule, how the platform's order states map to labelvault's, its rate-limit model, what its order
ids look like (the label API answers any other id as a missing order) and how an account's markets read.
Connecting an account stays the platform's own audited function (``connectors/<code>/accounts.py``): what a
form must hold differs too much between an Amazon region, a Shopify shop and an eBay consent to share one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from connectors.interfaces import Connector, ConnectorError
from connectors.ratelimit import RedisBuckets
from vault.keys import KeyManager
from vault.models import MarketplaceAccount
from vault.records import OrderStatus


@dataclass(frozen=True, slots=True)
class CredentialField:
    """One value of an account's sealed credentials, as the CLI prompts for it and the dashboard asks."""

    #: The key in the sealed secrets mapping.
    name: str
    #: The prompt or form label ("Admin API access token").
    label: str
    #: The environment variable the CLI reads before prompting (never a command-line flag: `ps` shows those).
    env: str | None = None


class ConnectorFactory(Protocol):
    """Builds a :class:`~connectors.interfaces.Connector` for a stored account.

    It unseals the account's credentials and checks the stored endpoints against the platform's own hosts
    and the operator's ``endpoint_overrides`` before anything is sent (an account stored before a rule, or
    whose override was withdrawn, is a :class:`~connectors.interfaces.ConnectorError`). ``speedup`` scales
    the platform's documented limits and the retry backoff, for the fakes only; ``shared_buckets`` is where
    limits that are the application's, not one seller's (eBay's daily quotas), keep their buckets so every
    process draws on the same ones (a platform whose limits are per seller ignores it: the account lease keeps
    one account's sync in one process); ``options`` are the connector's own (page size, overlap, look-back).
    """

    def __call__(
        self,
        session: Session,
        *,
        keys: KeyManager,
        account: MarketplaceAccount,
        speedup: float = 1.0,
        endpoint_overrides: Collection[str] = (),
        clock: Callable[[], datetime] | None = None,
        shared_buckets: RedisBuckets | None = None,
        **options: Any,
    ) -> Connector: ...


class DocumentUnavailable(ConnectorError):
    """The platform has no shipping document for the order now (not platform-shipped, not arranged yet,
    already collected); the message says which, without PII. The label API refuses the order as having
    no label data."""


class StoredOrder(Protocol):
    """What a document fetch needs of a stored order: its id at the platform and its market or shop id."""

    @property
    def external_order_id(self) -> str: ...

    @property
    def marketplace_id(self) -> str | None: ...


class ShippingDocumentFetcher(Protocol):
    """Fetches the platform's own shipping label (PDF bytes) for a platform-shipped order, at label time.

    The bytes go to the label API's response and nowhere else: never stored, never logged. Raises
    :class:`DocumentUnavailable` when there is none now, the connector's errors otherwise. Tokens the
    platform renewed meanwhile are sealed and committed in ``session``.
    """

    def __call__(
        self,
        session: Session,
        keys: KeyManager,
        account: MarketplaceAccount,
        order: StoredOrder,
        *,
        endpoint_overrides: Collection[str] = (),
    ) -> bytes: ...


class ConfirmationError(ConnectorError):
    """The platform did not take a shipment confirmation. ``code`` is a short code of ours for the
    confirmation's ``last_error`` (never text from the platform, which may quote the order or the buyer)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code[:40]


class ConfirmationRetry(ConfirmationError):
    """Transient: the platform was down, slow, throttling, or the order isn't ready yet; tried again later
    with backoff and jitter (connectors/confirmations.py)."""


class ConfirmationRefused(ConfirmationError):
    """Permanent: the platform refused the confirmation (order cancelled, no open line items, the grant lacks
    the write scope). The confirmation is ``failed`` and shown on the order page; an operator retries it."""


class ShipmentConfirmer(Protocol):
    """Tells the platform that one of an account's orders shipped, with the carrier and tracking number.

    ``connector`` is the account's connector as :attr:`Platform.connector` built it (its client holds the
    account's opened credentials). ``provider``: the carrier that carries the parcel ("USPS", "DHL Express"),
    ``service`` its service, ``shipped_at`` the label's purchase time. Idempotent: an order the platform shows
    shipped with this tracking number already (an earlier answer lost) is success, not an error. Raises
    :class:`ConfirmationRetry` or :class:`ConfirmationRefused`; any other
    :class:`~connectors.interfaces.ConnectorError` is sorted by its kind (unavailable, throttled: retried;
    refused credentials, bad answers: failed).
    """

    def __call__(
        self,
        connector: Connector,
        *,
        order_id: str,
        provider: str,
        service: str,
        tracking_number: str,
        shipped_at: datetime,
    ) -> None: ...


def _listed_ids(account: MarketplaceAccount) -> str:
    return ", ".join(account.marketplace_ids)


@dataclass(frozen=True, slots=True)
class Platform:
    """One marketplace platform labelvault syncs orders from (a registry entry)."""

    #: Short name: ``Order.marketplace``, ``MarketplaceAccount.marketplace``, the label API's
    #: ``/v1/labels/{code}/{order_id}`` and the CLI's ``accounts add {code}``.
    code: str
    #: The platform's name as people write it ("Amazon", "Shopify").
    name: str
    connector: ConnectorFactory
    #: The values of an account's sealed credentials.
    credentials: tuple[CredentialField, ...]
    #: The platform's own order states, as its API spells them, and the labelvault state each becomes.
    statuses: Mapping[str, OrderStatus]
    #: What the platform's order ids look like; the label API answers any other id as a missing order.
    order_id: re.Pattern[str]
    #: An order id of the platform, for help texts ("503-1234567-1234567").
    order_id_example: str
    #: How the platform limits calls, in one line (the docs and the dashboard's account page show it).
    rate_limits: str
    #: Retention: an order's label data is kept at most this many days after delivery (a tenant may shorten it).
    days_after_delivery: int = 30
    #: How an account's markets read in the CLI and dashboard ("Amazon.co.jp, Amazon.com.au").
    markets: Callable[[MarketplaceAccount], str] = _listed_ids
    #: For platforms that ship some orders themselves and issue the label (TikTok Shop): how the label API
    #: fetches that label for an order stored with ``label_withheld = "platform-shipped"``.
    shipping_document: ShippingDocumentFetcher | None = None
    #: How the platform is told an order shipped (carrier, tracking) once labelvault bought its label;
    #: None: the platform has no such call, and no confirmation is queued for its orders.
    confirm_shipment: ShipmentConfirmer | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9]{1,19}", self.code):
            raise ValueError(f"a marketplace code is 2-20 lower-case letters and digits, not {self.code!r}")
        if not self.order_id.fullmatch(self.order_id_example):
            raise ValueError(f"{self.code}: the order id example does not match the order id pattern")
