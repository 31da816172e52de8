"""The marketplace platforms labelvault syncs from, by code: the one place a new platform is added.

Everything that handles an account or an order of some platform (the sync engine's callers, the worker,
the CLI, retention, the label API, the dashboard, the demo) asks here instead of naming a platform: a
platform's :class:`~connectors.platform.Platform` (``connectors/<code>/platform.py``) says how to build its
connector and what its credentials, statuses, limits, order ids and retention rule are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from connectors.amazon.platform import PLATFORM as AMAZON
from connectors.ebay.platform import PLATFORM as EBAY
from connectors.interfaces import Connector, ConnectorError
from connectors.platform import Platform
from connectors.shopify.platform import PLATFORM as SHOPIFY
from connectors.tiktok.platform import PLATFORM as TIKTOK
from connectors.walmart.platform import PLATFORM as WALMART
from vault.keys import KeyManager
from vault.models import MarketplaceAccount
from vault.retention import RetentionRule

#: Every registered platform by code, in the order the CLI and the dashboard list them.
PLATFORMS: Mapping[str, Platform] = MappingProxyType({p.code: p for p in (AMAZON, SHOPIFY, EBAY, TIKTOK, WALMART)})


class UnknownMarketplace(ConnectorError):
    """A marketplace code no registered platform has (an account or order from a removed integration)."""


def get(code: str) -> Platform:
    """The platform registered as ``code``; :class:`UnknownMarketplace` otherwise."""
    try:
        return PLATFORMS[code]
    except KeyError:
        raise UnknownMarketplace(f"no marketplace platform is registered as {code[:40]!r}") from None


def name_of(code: str) -> str:
    """A platform's name for people ("Shopify"), or the code itself for one no longer registered."""
    platform = PLATFORMS.get(code)
    return platform.name if platform is not None else code


def is_order_ref(code: str, order_id: str) -> bool:
    """Whether ``order_id`` can be an order of the platform ``code`` (the label API's first, cheap check)."""
    platform = PLATFORMS.get(code)
    return platform is not None and platform.order_id.fullmatch(order_id) is not None


class NoticeOrdersRejected(ValueError):
    """A notice's order ids that can't be taken: how many are wrong and where the first is (never a value: a
    mistyped field may hold anything); ``platform`` is None when the marketplace itself is unknown."""

    def __init__(self, message: str, *, platform: str | None, bad: int = 0, total: int = 0, first: int = 0) -> None:
        super().__init__(message)
        self.platform, self.bad, self.total, self.first = platform, bad, total, first


def notice_order_ids(code: str, order_ids: Iterable[str]) -> list[str]:
    """The order ids of a marketplace's own notice (an Amazon deletion notice, say), each checked against the
    platform's order id format, duplicates dropped; :class:`NoticeOrdersRejected` otherwise."""
    platform = PLATFORMS.get(code)
    if platform is None:
        raise NoticeOrdersRejected(f"no marketplace platform is registered as {code[:40]!r}", platform=None)
    ids = list(dict.fromkeys(i.strip() for i in order_ids if i.strip()))
    bad = [n for n, i in enumerate(ids, 1) if platform.order_id.fullmatch(i) is None]
    if bad:
        raise NoticeOrdersRejected(
            f"{len(bad)} of the {len(ids)} order ids are not {platform.name} order ids (the first is number {bad[0]})",
            platform=platform.name, bad=len(bad), total=len(ids), first=bad[0],
        )  # fmt: skip
    if not ids:
        raise NoticeOrdersRejected(f"the notice names no {platform.name} order ids", platform=platform.name)
    return ids


def retention_rules() -> tuple[RetentionRule, ...]:
    """Each platform's retention rule (its days after delivery), for :func:`vault.retention.configure`."""
    return tuple(RetentionRule(p.code, days_after_delivery=p.days_after_delivery) for p in PLATFORMS.values())


def connector_for_account(
    session: Session, *, keys: KeyManager, account: MarketplaceAccount, **options: Any
) -> Connector:
    """The connector of ``account``'s platform for that account (see :class:`~connectors.platform.ConnectorFactory`
    for the options every platform takes)."""
    if account.removed_at is not None:
        raise ConnectorError(f"account {account.id} has been removed")
    return get(account.marketplace).connector(session, keys=keys, account=account, **options)
